"""Qwen2.5-Omni's benchmark rules: which vision blocks keep full attention when the encoder is cut, how widths
narrow with head dims kept (see models/tooling.py)."""

from __future__ import annotations

from ..tooling import Tooling


class Qwen25Tooling(Tooling):
    family = "qwen2_5_omni"
    fullatt_period = 8  # the 7B has a full-attention vision block every 8 blocks (7, 15, 23, 31)

    @classmethod
    def reduce_vision(cls, vc, depth: int) -> None:
        kept = [i for i in vc.fullatt_block_indexes if i < depth]
        vc.depth = depth
        vc.fullatt_block_indexes = kept or [
            i for i in range(depth) if i % cls.fullatt_period == cls.fullatt_period - 1
        ]

    @classmethod
    def narrow(cls, cfg, width: int) -> str:
        """Text heads and kv heads (at least 1), hidden and MLP; vision and audio heads, hidden and MLP divided by
        `width`, every head dim kept (the M-RoPE sections stay valid); projections follow."""
        tc, vc, ac = cfg.text_config, cfg.vision_config, cfg.audio_config
        before = (tc.hidden_size, tc.num_attention_heads, tc.num_key_value_heads, tc.intermediate_size)
        head_dim = tc.hidden_size // tc.num_attention_heads
        tc.num_attention_heads = max(1, tc.num_attention_heads // width)
        tc.num_key_value_heads = max(1, tc.num_key_value_heads // width)
        tc.hidden_size = tc.num_attention_heads * head_dim
        tc.intermediate_size //= width
        tc.head_dim = head_dim
        vision_head = vc.hidden_size // vc.num_heads
        vc.num_heads = max(1, vc.num_heads // width)
        vc.hidden_size, vc.intermediate_size = vc.num_heads * vision_head, vc.intermediate_size // width
        vc.out_hidden_size = tc.hidden_size
        audio_head = ac.d_model // ac.encoder_attention_heads
        ac.encoder_attention_heads = max(1, ac.encoder_attention_heads // width)
        ac.d_model, ac.encoder_ffn_dim = ac.encoder_attention_heads * audio_head, ac.encoder_ffn_dim // width
        ac.output_dim = tc.hidden_size
        after = (tc.hidden_size, tc.num_attention_heads, tc.num_key_value_heads, tc.intermediate_size)
        return (
            f"widths / {width}: text hidden/heads/kv/MLP {'/'.join(map(str, before))} -> "
            f"{'/'.join(map(str, after))}, vision hidden {vc.hidden_size}, audio d_model {ac.d_model}"
        )


TOOLING = Qwen25Tooling
