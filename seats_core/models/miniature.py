"""What the built-in miniatures of every family share: a tokenizer over a tiny BPE trained on a fixed corpus (no
download; the same ids on every machine), the chat template made from a family's media token names, and the stock
processor assembled from default sub-processors."""

from __future__ import annotations

import json

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


def chat_template(media: dict[str, str]) -> str:
    """Qwen's chat template with a family's media tokens (`media`: the processor's names -> token strings)."""
    video = media["vision_bos_token"] + media["video_token"] + media["vision_eos_token"]
    audio = media["audio_bos_token"] + media["audio_token"] + media["audio_eos_token"]
    image = media["vision_bos_token"] + media["image_token"] + media["vision_eos_token"]
    return (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for part in message['content'] %}"
        f"{{% if part['type'] == 'video' %}}{video}"
        f"{{% elif part['type'] == 'audio' %}}{audio}"
        f"{{% elif part['type'] == 'image' %}}{image}"
        "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def stock_processor(processor_class, tokenizer, template: str, patch_size: int | None = None):
    """A family's stock processor from default image / video processors (at `patch_size` when given) and Whisper
    features (128 mel bins), with the miniature's tokenizer and chat template."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor, WhisperFeatureExtractor

    patch = {} if patch_size is None else {"patch_size": patch_size}
    return processor_class(
        image_processor=Qwen2VLImageProcessor(**patch),
        video_processor=Qwen2VLVideoProcessor(**patch),
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
        chat_template=template,
    )
