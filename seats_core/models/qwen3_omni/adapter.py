"""Qwen3-Omni (`Qwen3OmniMoeThinkerForConditionalGeneration`): the second family; only what differs from the base.

- DeepStack: vision blocks 8 / 16 / 24 go through their own mergers and the text model adds them to the visual
  positions after decoder layers 0, 1, 2 (`deepstack_visual_embeds`, `visual_pos_masks`). The adapter takes them
  off the text model's call (`take_decoder_extras`) so the hooks add the rows of the visual tokens still alive.
- q_norm / k_norm per head before RoPE (the relevance score re-applies them).
- Vision: fused `attn.qkv`, attention per frame pair, rows already in raster order (merge units contiguous).
- Audio: 13 tokens per second (a module-level length function), no pooling (encoder rows = audio tokens),
  `cu_seqlens` passed positionally to the audio layers.
- Interleave per temporal grid (frame pair) by position (`position_id_per_seconds`, 13 on the real checkpoints).
- Sparse MoE MLP: FLOPs count the router and the k active experts only.
"""

from __future__ import annotations

import torch

from ...method import PRESETS_QWEN3, Recipe
from ..base import FamilyAdapter, apply_rope

KW_DEEPSTACK = "deepstack_visual_embeds"
KW_VISUAL_MASK = "visual_pos_masks"
# Stage II's window softmax temperature in the authors' Qwen3-Omni code (their Qwen2.5 code uses 0.1; SEATS_SPEC §9)
WINDOW_TEMPERATURE = 0.3


class Qwen3OmniAdapter(FamilyAdapter):
    family = "qwen3_omni"
    display_name = "Qwen3-Omni"
    model_types = ("qwen3_omni_moe_thinker",)
    thinker_class_name = "Qwen3OmniMoeThinkerForConditionalGeneration"
    checkpoint_types = ("qwen3_omni_moe",)  # model_type of the full checkpoint (thinker + talker)
    name_tags = ("qwen3-omni", "qwen3_omni")  # how hub ids of this family are spelled
    processor_class_name = "Qwen3OmniMoeProcessor"
    # Qwen3-Omni-30B-A3B (SEATS_SPEC §0, §9): 48 layers, drops after 27 / 31 / 35, text only from 40, T = 0.3;
    # lambda 1.4 and Stage-I blocks of 2 temporal grids / 50 audio tokens as on Qwen2.5 (the Recipe defaults)
    paper = Recipe("qwen3_omni", 48, (27, 31, 35), 40, presets=PRESETS_QWEN3, temperature=WINDOW_TEMPERATURE)
    audio_pool = 1
    has_deepstack = True

    def audio_output_length(self, mel_frames: int) -> int:
        """Audio tokens from `mel_frames` feature frames (1 s chunks of 100 frames -> 13 tokens each)."""
        from transformers.models.qwen3_omni_moe import modeling_qwen3_omni_moe as mq

        n = mq._get_feat_extract_output_lengths(torch.tensor([mel_frames]), self.config.audio_config.n_window)
        return int(n[0])

    # ---- DeepStack ---------------------------------------------------------------------------------------
    @property
    def deepstack_layers(self) -> int:
        """Decoder layers after which DeepStack features are added (one per vision DeepStack index)."""
        return len(self.config.vision_config.deepstack_visual_indexes)

    def take_decoder_extras(self, kwargs: dict) -> tuple[dict, dict | None]:
        embeds, mask = kwargs.get(KW_DEEPSTACK), kwargs.get(KW_VISUAL_MASK)
        if embeds is None or mask is None:
            return kwargs, None
        return {**kwargs, KW_DEEPSTACK: None, KW_VISUAL_MASK: None}, {"embeds": list(embeds), "mask": mask}

    @staticmethod
    def add_deepstack(hidden: torch.Tensor, rows: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """hidden (1, S, D) with DeepStack features added at positions `rows`, as the text model does.

        rows: (n,) positions in the current sequence; embeds: (n, D) their DeepStack features. Same arithmetic
        as the stock `_deepstack_process` (a clone, then an add in the hidden dtype), so keep-all is exact.
        """
        hidden = hidden.clone()
        hidden[0, rows] = hidden[0, rows] + embeds.to(hidden.device, hidden.dtype)  # (n, D)
        return hidden

    # ---- attention projections with q_norm / k_norm -------------------------------------------------------
    def _q(self, attn, x: torch.Tensor) -> torch.Tensor:
        B, S = x.shape[:2]
        return attn.q_norm(attn.q_proj(x).view(B, S, -1, attn.head_dim)).transpose(1, 2)  # (B, H, S, d)

    def _k(self, attn, x: torch.Tensor) -> torch.Tensor:
        B, S = x.shape[:2]
        return attn.k_norm(attn.k_proj(x).view(B, S, -1, attn.head_dim)).transpose(1, 2)  # (B, H_kv, S, d)

    # ---- encoders ------------------------------------------------------------------------------------------
    def vision_qk(self, block_args: tuple, block_kwargs: dict):
        """q, k (H, N, d) of the last vision block from its input (rows in raster order), and its scale."""
        block = self.vision_last_block
        h = block_args[0] if block_args else block_kwargs["hidden_states"]  # (N, C)
        cos, sin = block_kwargs["position_embeddings"]  # (N, d)
        attn = block.attn
        x = block.norm1(h)
        N = x.shape[0]
        q, k, _ = attn.qkv(x).reshape(N, 3, attn.num_heads, -1).float().unbind(1)  # (N, H, d) each
        cos, sin = cos.unsqueeze(-2).float(), sin.unsqueeze(-2).float()
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q.transpose(0, 1), k.transpose(0, 1), attn.scaling
