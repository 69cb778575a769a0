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


def _mini_dir() -> Path:
    """The miniature's files: the copy installed with the package (seats_core/_assets/mini, see setup.py) if
    present, else assets/mini of a source checkout (where scripts/train_mini.py writes them)."""
    here = Path(__file__).resolve()
    installed = here.parents[2] / "_assets" / "mini"
    return installed if installed.is_dir() else here.parents[3] / "assets" / "mini"


MINI_DIR = _mini_dir()
# Frame budget, (min, max) LLM tokens per frame pair: the miniature is trained on 112 x 112 frames (16 tokens per
# frame pair; at least 9), not the 7B's 128-144 (its entry in loader.BUILTINS).
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

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif part['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS_WORDS = (
    "what which who when where why how is are was were the a an of in on at to from by with and or not "
    "video audio sound tone tones beep beeps music speech voice noise silence loud quiet high low pitch "
    "colour color red green blue yellow white black orange purple shape shapes square circle triangle bar "
    "left right up down moves move moving appears appear disappears first second third last before after "
    "during while screen frame clip scene answer option options question yes no one two three four five "
    "six seven eight nine ten how many count number time seconds begin end start middle which way direction "
    "you are a helpful assistant watch listen carefully choose the best letter A B C D E "
    "system user assistant "
    "what colour is the shape on screen when the high tone sounds "
    "what colour is the shape on screen during the first second third tone "
    "which way does the shape move when the low tone sounds "
    "which way does the shape move during the first second third tone "
    "how many tones are there how many high tones are there zero "
    "what colour is the circle which way does the red green blue yellow shape move "
    "(A) red (B) green (C) blue (D) yellow (A) left (B) right (C) up (D) down "
    "(A) one (B) two (C) three (D) four (A) zero (B) one (C) two (D) three"
).split()


def _train_bpe(vocab_size: int = 600):
    """Byte-level BPE trained on a fixed corpus: same vocab and merges on every machine."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    corpus = [" ".join(_CORPUS_WORDS[i:] + _CORPUS_WORDS[:i]) for i in range(0, len(_CORPUS_WORDS), 7)]
    corpus += [w.capitalize() + "?" for w in _CORPUS_WORDS] + [f"({c})" for c in "ABCDE"]
    tok.train_from_iterator(corpus, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def offline_tokenizer(special_tokens: list[str], media_tokens: dict[str, str], chat_template: str):
    """A Qwen2 tokenizer over the fixed-corpus BPE with a family's special tokens (no download).

    special_tokens: appended to the vocabulary in order (the first is the end-of-text token); media_tokens: the
    processor's names (image_token, audio_token, video_token, vision/audio bos/eos) -> token strings.
    """
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_bpe()
    vocab = dict(vocab)
    for tok in special_tokens:
        vocab.setdefault(tok, len(vocab))
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, extra_special_tokens=dict(media_tokens))
    tokenizer.add_special_tokens({"additional_special_tokens": special_tokens[1:]})
    tokenizer.chat_template = chat_template
    return tokenizer


def build_tokenizer():
    """A Qwen2 tokenizer over a tiny BPE, with the Qwen2.5-Omni special tokens and chat template."""
    media = {
        "image_token": "<|IMAGE|>",
        "audio_token": "<|AUDIO|>",
        "video_token": "<|VIDEO|>",
        "vision_bos_token": "<|vision_bos|>",
        "vision_eos_token": "<|vision_eos|>",
        "audio_bos_token": "<|audio_bos|>",
        "audio_eos_token": "<|audio_eos|>",
    }
    return offline_tokenizer(SPECIAL_TOKENS, media, CHAT_TEMPLATE)


def build_processor(tokenizer=None):
    """The stock Qwen2.5-Omni processor assembled from default sub-processors (no download)."""
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    tokenizer = tokenizer or build_tokenizer()
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(),
        video_processor=Qwen2VLVideoProcessor(),
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


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
