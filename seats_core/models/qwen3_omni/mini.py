"""The built-in Qwen3-Omni miniature ("mini-qwen3"): the real Qwen3OmniMoe thinker classes, tiny widths.

Depth (48 decoder layers), DeepStack after vision blocks 8 / 16 / 24 (injected after decoder layers 0-2), a
sparse MoE MLP (8 experts, top 2), q_norm / k_norm, interleaved M-RoPE, patch 16 with a 2 x 2 merge (one LLM token
per 32 x 32 px per frame pair), 13 audio tokens per second and the per-frame-pair interleave are those of
Qwen3-Omni-30B-A3B, so SEATS' stage boundaries (27 / 31 / 35, text only from 40) and every index computation run
as on the real model. The weights are a seeded random init: its answers mean nothing (the CLI and the explorer
say so); it exists to exercise the code paths offline and deterministically.

The tokenizer is the Qwen2.5 miniature's byte-level BPE (built offline from a fixed corpus) with Qwen3-Omni's
special-token names.
"""

from __future__ import annotations

import torch

from ..miniature import chat_template, offline_tokenizer, stock_processor

NAME = "mini-qwen3"

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<|audio_pad|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

MEDIA_TOKENS = {
    "image_token": "<|image_pad|>",
    "audio_token": "<|audio_pad|>",
    "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
    "audio_bos_token": "<|audio_start|>",
    "audio_eos_token": "<|audio_end|>",
}
CHAT_TEMPLATE = chat_template(MEDIA_TOKENS)


def build_tokenizer():
    """A Qwen2 tokenizer over the miniature's BPE with Qwen3-Omni's special tokens and a chat template."""
    return offline_tokenizer(SPECIAL_TOKENS, MEDIA_TOKENS, CHAT_TEMPLATE)


def build_processor(tokenizer=None):
    """The stock Qwen3-Omni processor from default sub-processors at patch 16 (no download)."""
    from transformers import Qwen3OmniMoeProcessor

    return stock_processor(
        Qwen3OmniMoeProcessor, tokenizer or build_tokenizer(), CHAT_TEMPLATE, patch_size=16
    )


def token_ids(tokenizer) -> dict:
    """Thinker-config token-id fields from the tokenizer (the config class defaults are Qwen2.5 leftovers)."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return dict(
        audio_token_id=ids["<|audio_pad|>"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        audio_start_token_id=ids["<|audio_start|>"],
        audio_end_token_id=ids["<|audio_end|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        eos=ids["<|im_end|>"],
        pad=ids["<|endoftext|>"],
    )


def build_config(tokenizer, *, hidden_size: int = 64, heads: int = 4, kv_heads: int = 2, head_dim: int = 32):
    """Qwen3-Omni-30B-A3B's depth, DeepStack, MoE routing and token layout with tiny widths.

    heads * head_dim (128) != hidden (64), as in the 30B (32 x 128 vs 2048).
    """
    from transformers import Qwen3OmniMoeThinkerConfig

    ids = token_ids(tokenizer)
    half = head_dim // 2  # M-RoPE sections over head_dim/2 frequencies in the 30B's 24:20:20 proportions
    mrope = [half * 24 // 64, half * 20 // 64]
    mrope.append(half - sum(mrope))
    special = {k: v for k, v in ids.items() if k not in ("eos", "pad")}
    cfg = Qwen3OmniMoeThinkerConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=2 * hidden_size,
            num_hidden_layers=48,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            norm_topk_prob=True,
            decoder_sparse_step=1,
            max_position_embeddings=32768,
            rope_parameters=dict(
                rope_type="default",
                rope_theta=1000000.0,
                mrope_section=mrope,
                interleaved=True,
                mrope_interleaved=True,
            ),
            tie_word_embeddings=False,
            eos_token_id=ids["eos"],
            pad_token_id=ids["pad"],
        ),
        vision_config=dict(
            depth=27,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=hidden_size,
            num_position_embeddings=64,
            deepstack_visual_indexes=[8, 16, 24],
        ),
        audio_config=dict(
            num_mel_bins=128,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=64,
            d_model=32,
            max_source_positions=1500,
            n_window=50,
            n_window_infer=400,
            downsample_hidden_size=16,
            output_dim=hidden_size,
        ),
        position_id_per_seconds=13,  # the processor's value; the class default 25 mis-positions audio
        **{k: v for k, v in special.items() if k in ("audio_token_id", "image_token_id", "video_token_id")},
        audio_start_token_id=special["audio_start_token_id"],
    )
    # Read by get_rope_index and the adapter; not constructor fields of the thinker config.
    for name in ("audio_end_token_id", "vision_start_token_id", "vision_end_token_id"):
        setattr(cfg, name, special[name])
    return cfg


def thinker_config():
    """The miniature's thinker config (no weights)."""
    return build_config(build_tokenizer())


def build_model(seed: int = 0, attn_implementation: str = "sdpa"):
    """(thinker, processor) of the miniature with a seeded random init, in float32, in eval mode."""
    from transformers import Qwen3OmniMoeThinkerForConditionalGeneration

    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    config._attn_implementation = attn_implementation
    for sub in (config.text_config, config.vision_config, config.audio_config):
        sub._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3OmniMoeThinkerForConditionalGeneration(config)
    model.to(torch.float32)
    return model.eval(), build_processor(tokenizer)
