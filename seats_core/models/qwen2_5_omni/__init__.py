"""Qwen2.5-Omni: the adapter, the real shapes, the miniature, the batched-window vision encoder."""
