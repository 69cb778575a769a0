"""Qwen2.5-Omni (`Qwen2_5OmniThinkerForConditionalGeneration`): the first family.

Separate q / k projections in the vision blocks with window attention (rows in window-permuted order), audio
pooled 2:1 after the encoder (25 tokens/s), video and audio interleaved in `seconds_per_chunk` (2 s) chunks,
dense SwiGLU MLP, and the batched-window fast vision encoder.
"""

from __future__ import annotations

import torch

from ...method import PRESETS, Recipe
from ...method.budget import WINDOW_TEMPERATURE
from ..base import FamilyAdapter, apply_rope


class Qwen25OmniAdapter(FamilyAdapter):
    family = "qwen2_5_omni"
    display_name = "Qwen2.5-Omni"
    model_types = ("qwen2_5_omni_thinker",)
    thinker_class_name = "Qwen2_5OmniThinkerForConditionalGeneration"
    checkpoint_types = ("qwen2_5_omni",)  # model_type of the full checkpoint (thinker + talker)
    name_tags = ("qwen2.5-omni", "qwen2_5_omni")  # how hub ids of this family are spelled
    processor_class_name = "Qwen2_5OmniProcessor"
    # Qwen2.5-Omni-7B (SEATS_SPEC §0-§3): 28 layers, drops after 16 / 18 / 20, text only from 24, T = 0.1
    paper = Recipe("qwen2_5_omni", 28, (16, 18, 20), 24, presets=PRESETS, temperature=WINDOW_TEMPERATURE)
    audio_pool = 2  # the audio tower average-pools pairs of encoder rows (stride 2) after its last layer

    special_id_fields = (
        "audio_token_index",
        "image_token_index",
        "video_token_index",
        "audio_start_token_id",
        "audio_end_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
    )

    @staticmethod
    def vision_encoder_class():
        from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniVisionEncoder

        return Qwen2_5OmniVisionEncoder

    def _seconds_per_chunk(self) -> float | None:
        return float(self.config.seconds_per_chunk)

    def stage1_video_grids(self, seconds_per_grid: float) -> int:
        return max(1, round(self._seconds_per_chunk() / seconds_per_grid))

    def audio_output_length(self, mel_frames: int) -> int:
        """Audio tokens from `mel_frames` feature frames (conv stride 2, then pool 2)."""
        _, out = self.audio_tower._get_feat_extract_output_lengths(torch.tensor([mel_frames]))
        return int(out[0])

    def vision_qk(self, block_args: tuple, block_kwargs: dict):
        """q, k (H, N, d) of the last vision block, from its input, in the encoder's window-permuted order."""
        block = self.vision_last_block
        h = block_args[0] if block_args else block_kwargs["hidden_states"]  # (N, C)
        cos, sin = block_kwargs["position_embeddings"]  # (N, d)
        attn = block.attn
        x = block.norm1(h)
        N = x.shape[0]
        q = attn.q(x).reshape(N, attn.num_heads, -1).float()  # (N, H, d)
        k = attn.k(x).reshape(N, attn.num_heads, -1).float()
        cos, sin = cos.unsqueeze(-2).float(), sin.unsqueeze(-2).float()
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q.transpose(0, 1), k.transpose(0, 1), attn.scaling

    def vision_raster_order(self, grid_thw: torch.Tensor) -> torch.Tensor:
        """Index that maps the encoder's window-permuted merge units back to (t, h, w) raster order."""
        from transformers.vision_utils import get_vision_window_index

        v = self.visual
        window_index, _ = get_vision_window_index(
            grid_thw,
            spatial_merge_size=v.spatial_merge_size,
            window_size=v.window_size,
            patch_size=v.patch_size,
        )
        return torch.argsort(window_index.to(grid_thw.device))

    def fast_encoder(self):
        from .fast_vision import fast_vision

        return fast_vision(self.visual)

    @property
    def has_fast_encoder(self) -> bool:
        return True
