"""Thinker configs at the published Qwen3-Omni-30B-A3B shape (and the mini-qwen3 miniature), for FLOP counts and
random-weight timing. Only config objects are built here; nothing downloads.

Dimensions (thinker only) from QWEN_OMNI_NOTES.md (read from the released config of
Qwen/Qwen3-Omni-30B-A3B-Instruct; not re-downloaded here, no hub access):

| part   | field                          | 30B-A3B                         |
|--------|--------------------------------|---------------------------------|
| text   | hidden / layers                | 2048 / 48                       |
| text   | heads / kv heads / head_dim    | 32 / 4 / 128 (q width 4096)     |
| text   | experts / active / expert width| 128 / 8 / 768, every layer MoE  |
| text   | vocab / rope theta / mrope     | 152064 / 1e6 / [24, 20, 20] interleaved |
| vision | depth / hidden / heads / MLP   | 27 / 1152 / 16 / 4304, DeepStack (8, 16, 24) |
| audio  | layers / d_model / heads / ffn | 32 / 1280 / 20 / 5120           |

`intermediate_size` (the dense MLP width) is unused when every layer is sparse and left at the class default.
"""

from __future__ import annotations

AUDIO_TOKEN_ID = 151675  # <|audio_pad|>
AUDIO_START_TOKEN_ID = 151669
AUDIO_END_TOKEN_ID = 151670
VISION_START_TOKEN_ID = 151652
VISION_END_TOKEN_ID = 151653
IMAGE_TOKEN_ID = 151655
VIDEO_TOKEN_ID = 151656
EOS_TOKEN_ID = 151645  # <|im_end|>
PAD_TOKEN_ID = 151643  # <|endoftext|>
POSITION_ID_PER_SECONDS = 13  # the processor's value (the config class default, 25, is a Qwen2.5 leftover)

SHAPE = dict(
    text=dict(
        vocab_size=152064,
        hidden_size=2048,
        num_hidden_layers=48,
        num_attention_heads=32,
        num_key_value_heads=4,
        head_dim=128,
        num_experts=128,
        num_experts_per_tok=8,
        moe_intermediate_size=768,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        max_position_embeddings=65536,
        rope_parameters=dict(
            rope_type="default",
            rope_theta=1000000.0,
            mrope_section=[24, 20, 20],
            interleaved=True,
            mrope_interleaved=True,
        ),
        tie_word_embeddings=False,
        eos_token_id=EOS_TOKEN_ID,
        pad_token_id=PAD_TOKEN_ID,
    ),
    vision=dict(
        depth=27,
        hidden_size=1152,
        intermediate_size=4304,
        num_heads=16,
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
        out_hidden_size=2048,
        deepstack_visual_indexes=[8, 16, 24],
    ),
    audio=dict(
        num_mel_bins=128,
        encoder_layers=32,
        encoder_attention_heads=20,
        encoder_ffn_dim=5120,
        d_model=1280,
        max_source_positions=1500,
        n_window=50,
        output_dim=2048,
    ),
)


def thinker_config(shape: str, vocab_size: int | None = None):
    """A `Qwen3OmniMoeThinkerConfig` for shape "30b-a3b" or "mini-qwen3" (the miniature's own config)."""
    if shape == "mini-qwen3":
        from .mini import build_config, build_tokenizer

        cfg = build_config(build_tokenizer())
        if vocab_size is not None:
            cfg.text_config.vocab_size = vocab_size
        return cfg
    if shape != "30b-a3b":
        raise ValueError(f"unknown Qwen3-Omni shape {shape!r}; expected 30b-a3b or mini-qwen3")
    from transformers import Qwen3OmniMoeThinkerConfig

    text = dict(SHAPE["text"], vocab_size=vocab_size or SHAPE["text"]["vocab_size"])
    cfg = Qwen3OmniMoeThinkerConfig(
        text_config=text,
        vision_config=dict(SHAPE["vision"]),
        audio_config=dict(SHAPE["audio"]),
        position_id_per_seconds=POSITION_ID_PER_SECONDS,
        audio_token_id=AUDIO_TOKEN_ID,
        image_token_id=IMAGE_TOKEN_ID,
        video_token_id=VIDEO_TOKEN_ID,
        audio_start_token_id=AUDIO_START_TOKEN_ID,
    )
    cfg.audio_end_token_id = AUDIO_END_TOKEN_ID
    cfg.vision_start_token_id = VISION_START_TOKEN_ID
    cfg.vision_end_token_id = VISION_END_TOKEN_ID
    return cfg
