"""The built-in miniature Qwen2.5-Omni thinker: real architecture classes and token layout, tiny widths.

Depth (28 decoder layers), patch 14, 2x2 merge, temporal patch 2, 25 audio tokens/s and the 2-second windows are
those of Qwen2.5-Omni-7B, so SEATS' stage boundaries and every index computation are exercised exactly as on the
real model. Widths are tiny so it runs on a CPU in well under a second per clip.

Everything here is deterministic and needs no download: the tokenizer is a byte-level BPE trained on a fixed
built-in corpus, and the weights come from a seeded init (or from `assets/mini/` when a trained copy is shipped).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..miniature import chat_template, offline_tokenizer, stock_processor


def _mini_dir() -> Path:
    """The miniature's files: the copy installed with the package (seats_core/_assets/mini, see setup.py) if
    present, else assets/mini of a source checkout (where scripts/train_mini.py writes them)."""
    here = Path(__file__).resolve()
    installed = here.parents[2] / "_assets" / "mini"
    return installed if installed.is_dir() else here.parents[3] / "assets" / "mini"


MINI_DIR = _mini_dir()
METADATA_FILE = "training.json"  # recipe, seed, data sizes, accuracy and media budget of the shipped weights

# Special tokens in the order of the real Qwen2.5-Omni vocabulary (their ids differ: they follow the tiny BPE).
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
    "<|vision_bos|>",
    "<|vision_eos|>",
    "<|IMAGE|>",
    "<|VIDEO|>",
]

# The processor's media token names -> this family's strings (the chat template and the tokenizer are made from them).
MEDIA_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
CHAT_TEMPLATE = chat_template(MEDIA_TOKENS)


def build_tokenizer():
    """A Qwen2 tokenizer over a tiny BPE, with the Qwen2.5-Omni special tokens and chat template."""
    return offline_tokenizer(SPECIAL_TOKENS, MEDIA_TOKENS, CHAT_TEMPLATE)


def build_processor(tokenizer=None):
    """The stock Qwen2.5-Omni processor assembled from default sub-processors (no download)."""
    from transformers import Qwen2_5OmniProcessor

    return stock_processor(Qwen2_5OmniProcessor, tokenizer or build_tokenizer(), CHAT_TEMPLATE)


def build_config(
    tokenizer,
    *,
    hidden_size: int = 64,
    vision_hidden: int = 64,
    audio_d_model: int = 64,
    heads: int = 2,
    kv_heads: int = 1,
    mlp_ratio: int = 3,
):
    """Qwen2.5-Omni-7B's depth and token layout with tiny widths. Token ids come from the tokenizer.

    Defaults are the shipped trained miniature's (head_dim 32 so the temporal M-RoPE section has 4 frequencies;
    grouped-query attention with 2 query heads per KV head, as in the 7B).
    """
    from transformers import Qwen2_5OmniThinkerConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = hidden_size // heads
    # M-RoPE sections (t, h, w) over head_dim/2 frequencies, in the 7B's proportions 16:24:24.
    half = head_dim // 2
    mrope = [half // 4, (half - half // 4) // 2]
    mrope.append(half - sum(mrope))
    cfg = Qwen2_5OmniThinkerConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=mlp_ratio * hidden_size,
            num_hidden_layers=28,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=32768,
            rope_parameters=dict(rope_type="default", rope_theta=1000000.0, mrope_section=mrope),
            tie_word_embeddings=False,
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=4,
            hidden_size=vision_hidden,
            intermediate_size=2 * vision_hidden,
            num_heads=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            out_hidden_size=hidden_size,
            fullatt_block_indexes=[1, 3],
        ),
        audio_config=dict(
            num_mel_bins=128,
            encoder_layers=2,
            encoder_attention_heads=2,
            encoder_ffn_dim=2 * audio_d_model,
            d_model=audio_d_model,
            max_source_positions=1500,
            n_window=100,
            output_dim=hidden_size,
        ),
        audio_token_index=ids["<|AUDIO|>"],
        image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"],
        user_token_id=tokenizer.convert_tokens_to_ids("user") if "user" in tokenizer.get_vocab() else 0,
    )
    # Attributes get_rope_index reads from the thinker config (not all are constructor fields).
    cfg.vision_start_token_id = ids["<|vision_bos|>"]
    cfg.vision_end_token_id = ids["<|vision_eos|>"]
    return cfg


def thinker_config():
    """The miniature's thinker config (no weights): the shipped one when present, else the code's."""
    if (MINI_DIR / "config.json").exists():
        from transformers import Qwen2_5OmniThinkerConfig

        return Qwen2_5OmniThinkerConfig.from_pretrained(MINI_DIR)
    return build_config(_load_or_build_tokenizer())


def build_model(seed: int = 0, attn_implementation: str = "sdpa"):
    """(thinker, processor) for the miniature: trained weights from assets/mini when present, else seeded init."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    weights = MINI_DIR / "model.safetensors"
    if weights.exists() and (MINI_DIR / "config.json").exists():
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # 7 MB load: a progress bar is only noise on stderr
        try:
            model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
                MINI_DIR, attn_implementation=attn_implementation, dtype=torch.float32
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        processor = build_processor(_load_or_build_tokenizer())
        return model.eval(), processor
    tokenizer = _load_or_build_tokenizer()
    config = build_config(tokenizer)
    config._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.to(torch.float32)
    return model.eval(), build_processor(tokenizer)


def metadata() -> dict:
    """The shipped miniature's training record (recipe, seed, data sizes, accuracy, media budget), or {}."""
    path = MINI_DIR / METADATA_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _load_or_build_tokenizer():
    from transformers import Qwen2Tokenizer

    if (MINI_DIR / "tokenizer.json").exists():
        tok = Qwen2Tokenizer.from_pretrained(MINI_DIR)
        tok.chat_template = CHAT_TEMPLATE
        return tok
    return build_tokenizer()
