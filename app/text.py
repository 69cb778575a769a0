"""Numbers and sentences for the page: FLOPs, bytes and ratios formatted for people, why a FLOPs ratio differs
from the paper's, and the frequency ticks of the spectrogram. Plain functions of numbers and run dicts (the
result dicts of seats_core.run.pipeline.Engine.run, or the explorer's compact view runs: both carry `layers`,
`flops`, `clip` and `model`).
"""

from __future__ import annotations

import math

FLOP_UNITS = ("FLOPs", "kFLOPs", "MFLOPs", "GFLOPs", "TFLOPs", "PFLOPs", "EFLOPs")
BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
# The paper's headline at R10: ~96% of the full model's accuracy with about 9x fewer LLM prefill FLOPs (Qwen2.5-Omni
# 7B on its benchmarks' clips; see the About tab).
PAPER_FLOPS_RATIO = 9.0
CLOSE_TO_PAPER = 0.8  # a ratio within this fraction of the paper's needs no excuse
SMALL_TEXT_SHARE = 0.05  # text share of the prompt below which text does not cap the cut
MINI = "mini"  # seats_core.models.loader.MINI
SPEC_TICKS_HZ = (250, 500, 1000, 2000, 4000, 8000)


def _scaled(x: float, units: tuple[str, ...], base: float) -> str:
    """x in the largest unit that keeps it >= 1: 3 significant digits from 10 up, 2 below (1.2, 20.7, 207)."""
    x = float(x)
    if not math.isfinite(x):
        return f"{x} {units[0]}"
    if x == 0:
        return f"0 {units[0]}"
    sign = "-" if x < 0 else ""
    x = abs(x)
    i = 0
    while x >= base and i < len(units) - 1:
        x, i = x / base, i + 1
    text = f"{x:.0f}" if x >= 100 else (f"{x:.1f}" if x >= 10 else f"{x:.2g}")
    if float(text) >= base and i < len(units) - 1:  # 999.7 rounds to 1000: say 1.0 of the next unit
        return _scaled(float(sign + "1") * base ** (i + 1), units, base)
    if i > 0 and x < 10 and "." not in text and "e" not in text:
        text = f"{x:.1f}"  # 2 -> "2.0": keep the digit that says the number was rounded
    return f"{sign}{text} {units[i]}"


def format_flops(x: float) -> str:
    """FLOPs for people: 206964864 -> '207 MFLOPs', 1.2e12 -> '1.2 TFLOPs', 8.01e-05 T -> never a bare 8.01e-05."""
    return _scaled(x, FLOP_UNITS, 1000.0)


def format_bytes(n: float) -> str:
    """Bytes in binary units: 1536 -> '1.5 KiB', 3 * 2**20 -> '3.0 MiB'."""
    return _scaled(n, BYTE_UNITS, 1024.0)


def format_ratio(x: float) -> str:
    """A 'times fewer' factor: 3.588 -> '3.6x', 12.4 -> '12x'."""
    return f"{x:.0f}x" if x >= 10 else f"{x:.1f}x"


def prompt_tokens(run: dict) -> dict[str, int]:
    """Tokens per modality the prompt holds before any selection (the first decoder layer of the full run)."""
    first = run["layers"][0]
    return {m: int(first.get(m, 0)) for m in ("text", "video", "audio")}


def flops_ratio(full: dict, run: dict) -> float:
    """How many times fewer LLM prefill FLOPs `run` needs than `full` (same clip, question and model)."""
    return full["flops"]["prefill"] / max(run["flops"]["prefill"], 1)


def flops_ratio_head(full: dict, run: dict) -> str:
    """The short form of `flops_ratio_note` for cards and the tour: '3.6x fewer LLM prefill FLOPs'."""
    return f"{format_ratio(flops_ratio(full, run))} fewer LLM prefill FLOPs"


def flops_ratio_note(full: dict, run: dict, paper_ratio: float = PAPER_FLOPS_RATIO) -> str:
    """One line: this run's FLOPs ratio and why it differs from the paper's ~9x (clip length, the share of text
    tokens, which are never pruned, and the miniature's widths), from the run's own numbers.

    full: the unpruned run of the same clip and question (its first layer counts every prompt token)."""
    ratio = flops_ratio(full, run)
    tokens = prompt_tokens(full)
    total = sum(tokens.values())
    media = tokens["video"] + tokens["audio"]
    text = tokens["text"]
    seconds = (full.get("clip") or {}).get("duration_s")
    head = f"{format_ratio(ratio)} fewer LLM prefill FLOPs"
    if ratio >= CLOSE_TO_PAPER * paper_ratio:
        return f"{head}, close to the paper's ~{paper_ratio:g}x (Qwen2.5-Omni-7B at R10)."
    clip = f"this {seconds:g} s clip" if seconds else "this clip"
    reasons = [f"{clip} has {media} video and audio tokens"]
    share = text / max(total, 1)
    if share > SMALL_TEXT_SHARE:
        reasons[0] += (
            f" beside {text} text tokens that are never pruned ({share:.0%} of the prompt; even dropping every "
            f"video and audio token before layer 1 leaves {text} of {total}, at most ~{format_ratio(total / max(text, 1))} "
            "fewer tokens per layer)"
        )
    if full.get("model") == MINI:
        reasons.append(
            "the miniature's tiny widths weigh attention, MLP and output layer differently from the 7B's"
        )
    return f"{head}, not the paper's ~{paper_ratio:g}x (the 7B on long clips): " + "; ".join(reasons) + "."


def mel_ticks(
    sample_rate: int,
    n_mels: int,
    height_px: int,
    freqs_hz: tuple[float, ...] = SPEC_TICKS_HZ,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> list[tuple[int, str]]:
    """(y pixel from the top, label) of frequencies on a mel spectrogram image drawn low-frequencies-at-the-bottom.

    Matches seats_core.run.media.log_mel (librosa's Slaney mel filters, fmin 0, fmax = Nyquist) resized to
    `height_px` rows: band b (0 = lowest) fills rows [(n_mels - 1 - b) / n_mels, (n_mels - b) / n_mels) of the
    height. Frequencies outside the bands' centres are left out."""
    import librosa
    import numpy as np

    fmax = sample_rate / 2 if fmax is None else fmax
    centres = librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=fmax)[1:-1]  # (n_mels,) Hz
    out = []
    for f in freqs_hz:
        if not centres[0] <= f <= centres[-1]:
            continue
        # fractional band index (0 = lowest), linear in mel between the bands' centres
        band = float(np.interp(librosa.hz_to_mel(f), librosa.hz_to_mel(centres), np.arange(n_mels)))
        y = (n_mels - 1 - band + 0.5) * height_px / n_mels
        out.append((int(round(y)), f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"))
    return out
