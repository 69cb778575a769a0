"""Thinker configs at the published Qwen2.5-Omni shapes, for FLOP counts and random-weight timing.

Only config objects are built here; nothing downloads and nothing instantiates real-size weights.

Dimensions (thinker only), taken from the `config.json` of Qwen/Qwen2.5-Omni-7B and Qwen/Qwen2.5-Omni-3B as
published on the Hugging Face hub, cross-checked against the 7B defaults of transformers 5.23's
`Qwen2_5OmniTextConfig` / `Qwen2_5OmniVisionEncoderConfig` / `Qwen2_5OmniAudioEncoderConfig` and, for the 3B
text tower, against Qwen2.5-3B's `config.json` (same LLM shape):

| part   | field                     | 7B                 | 3B                 |
|--------|---------------------------|--------------------|--------------------|
| text   | hidden / layers           | 3584 / 28          | 2048 / 36          |
| text   | heads / kv heads          | 28 / 4 (hd 128)    | 16 / 2 (hd 128)    |
| text   | intermediate / vocab      | 18944 / 152064     | 11008 / 151936     |
| text   | rope theta, mrope section | 1e6, [16, 24, 24]  | 1e6, [16, 24, 24]  |
| vision | depth / hidden / heads    | 32 / 1280 / 16     | same               |
| vision | intermediate / out_hidden | 3420 / 3584        | 3420 / 2048        |
| vision | fullatt blocks / window   | (7,15,23,31) / 112 | same               |
| audio  | d_model / layers / heads  | 1280 / 32 / 20     | same               |
| audio  | ffn / output_dim          | 5120 / 3584        | 5120 / 2048        |

Verified from memory of the published files plus the library defaults; not re-downloaded here (no hub access).
`tie_word_embeddings` of the 3B thinker is not verified and left False: it changes neither shapes nor FLOPs.
Special-token ids are those of the real vocabulary (see QWEN_OMNI_NOTES.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# Real Qwen2.5-Omni special-token ids (shared by 3B and 7B).
AUDIO_TOKEN_ID = 151646
AUDIO_BOS_TOKEN_ID = 151647
AUDIO_EOS_TOKEN_ID = 151648
VISION_BOS_TOKEN_ID = 151652
VISION_EOS_TOKEN_ID = 151653
IMAGE_TOKEN_ID = 151655
VIDEO_TOKEN_ID = 151656
USER_TOKEN_ID = 872
EOS_TOKEN_ID = 151645  # <|im_end|>
PAD_TOKEN_ID = 151643  # <|endoftext|>

TEXT_ROPE_THETA = 1_000_000.0
MROPE_SECTION = [16, 24, 24]  # (t, h, w) over head_dim/2 = 64 frequencies
MAX_POSITIONS = 32768


@dataclass(frozen=True)
class _Shape:
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_intermediate: int
    vocab_size: int
    vision_depth: int = 32
    vision_hidden: int = 1280
    vision_heads: int = 16
    vision_intermediate: int = 3420
    vision_fullatt: tuple[int, ...] = (7, 15, 23, 31)
    vision_window: int = 112
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    audio_d_model: int = 1280
    audio_layers: int = 32
    audio_heads: int = 20
    audio_ffn: int = 5120
    audio_mel_bins: int = 128
    audio_max_source_positions: int = 1500
    audio_n_window: int = 100


SHAPES = {
    "7b": _Shape(
        text_hidden=3584,
        text_layers=28,
        text_heads=28,
        text_kv_heads=4,
        text_intermediate=18944,
        vocab_size=152064,
    ),
    "3b": _Shape(
        text_hidden=2048,
        text_layers=36,
        text_heads=16,
        text_kv_heads=2,
        text_intermediate=11008,
        vocab_size=151936,
    ),
}


QWEN3_SHAPES = ("mini-qwen3", "30b-a3b")


def thinker_config(shape: str, vocab_size: int | None = None):
    """A `Qwen2_5OmniThinkerConfig` for `shape` in {"mini", "3b", "7b"} (Qwen3-Omni's: see shapes_qwen3).

    "mini" delegates to `seats_core.models.qwen2_5_omni.mini.build_config` (tiny widths, miniature tokenizer ids);
    `vocab_size` overrides the text vocabulary (e.g. a smaller one for random-weight timing).
    """
    if shape in QWEN3_SHAPES:  # the second family's shapes live beside its adapter's facts
        from ..qwen3_omni.shapes import thinker_config as qwen3_config

        return qwen3_config(shape, vocab_size)
    if shape == "mini":
        from .mini import _load_or_build_tokenizer, build_config

        cfg = build_config(_load_or_build_tokenizer())
        if vocab_size is not None:
            cfg.text_config.vocab_size = vocab_size
        return cfg
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {['mini', *SHAPES, *QWEN3_SHAPES]}")
    s = SHAPES[shape]
    from transformers import Qwen2_5OmniThinkerConfig

    cfg = Qwen2_5OmniThinkerConfig(
        text_config=dict(
            vocab_size=vocab_size or s.vocab_size,
            hidden_size=s.text_hidden,
            intermediate_size=s.text_intermediate,
            num_hidden_layers=s.text_layers,
            num_attention_heads=s.text_heads,
            num_key_value_heads=s.text_kv_heads,
            max_position_embeddings=MAX_POSITIONS,
            rope_parameters=dict(
                rope_type="default", rope_theta=TEXT_ROPE_THETA, mrope_section=MROPE_SECTION
            ),
            tie_word_embeddings=False,
            eos_token_id=EOS_TOKEN_ID,
            pad_token_id=PAD_TOKEN_ID,
        ),
        vision_config=dict(
            depth=s.vision_depth,
            hidden_size=s.vision_hidden,
            intermediate_size=s.vision_intermediate,
            num_heads=s.vision_heads,
            patch_size=s.patch_size,
            spatial_merge_size=s.spatial_merge_size,
            temporal_patch_size=s.temporal_patch_size,
            window_size=s.vision_window,
            out_hidden_size=s.text_hidden,
            fullatt_block_indexes=list(s.vision_fullatt),
        ),
        audio_config=dict(
            num_mel_bins=s.audio_mel_bins,
            encoder_layers=s.audio_layers,
            encoder_attention_heads=s.audio_heads,
            encoder_ffn_dim=s.audio_ffn,
            d_model=s.audio_d_model,
            max_source_positions=s.audio_max_source_positions,
            n_window=s.audio_n_window,
            output_dim=s.text_hidden,
        ),
        audio_token_index=AUDIO_TOKEN_ID,
        image_token_index=IMAGE_TOKEN_ID,
        video_token_index=VIDEO_TOKEN_ID,
        audio_start_token_id=AUDIO_BOS_TOKEN_ID,
        audio_end_token_id=AUDIO_EOS_TOKEN_ID,
        user_token_id=USER_TOKEN_ID,
    )
    # get_rope_index reads these from the thinker config; they are not constructor fields.
    cfg.vision_start_token_id = VISION_BOS_TOKEN_ID
    cfg.vision_end_token_id = VISION_EOS_TOKEN_ID
    return cfg
