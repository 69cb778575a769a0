"""Qwen3-Omni: the adapter, the real shapes, the miniature."""
