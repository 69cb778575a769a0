"""app/text.py against hand computations: FLOPs, bytes and ratios for people, the FLOPs-ratio note, and the
spectrogram's frequency ticks (against the Slaney mel formula written out here, not librosa)."""

from __future__ import annotations

import math

import pytest

from app import text as T


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (206_964_864, "207 MFLOPs"),  # the shipped example's SEATS prefill
        (742_543_488, "743 MFLOPs"),
        (207e9, "207 GFLOPs"),
        (1.2e12, "1.2 TFLOPs"),
        (1.23e12, "1.2 TFLOPs"),  # two significant digits below 10
        (20.74e9, "20.7 GFLOPs"),
        (2e9, "2.0 GFLOPs"),
        (999.7e9, "1.0 TFLOPs"),  # rounding to 1000 moves up a unit
        (600e6, "600 MFLOPs"),  # was "600µ" TFLOPs
        (80.1e6, "80.1 MFLOPs"),  # was 8.01e-05 TFLOPs
        (512, "512 FLOPs"),
        (0, "0 FLOPs"),
    ],
)
def test_format_flops(x, expected):
    assert T.format_flops(x) == expected


def test_format_bytes_and_ratio():
    assert T.format_bytes(1536) == "1.5 KiB"
    assert T.format_bytes(3 * 2**20) == "3.0 MiB"
    assert T.format_bytes(2_160_000) == "2.1 MiB"  # 2.06 MiB
    assert T.format_ratio(742_543_488 / 206_964_864) == "3.6x"
    assert T.format_ratio(12.4) == "12x"


def _run(text, video, audio, prefill, model="mini", seconds=6.0):
    return {
        "layers": [{"text": text, "video": video, "audio": audio}],
        "flops": {"prefill": prefill},
        "clip": {"duration_s": seconds},
        "model": model,
    }


def test_flops_ratio_note_names_clip_text_share_and_widths():
    full = _run(56, 96, 150, 742_543_488)
    seats = _run(56, 9, 72, 206_964_864)
    note = T.flops_ratio_note(full, seats)
    assert note.startswith("3.6x fewer LLM prefill FLOPs, not the paper's ~9x")
    assert "this 6 s clip has 246 video and audio tokens" in note  # 96 + 150
    assert "56 text tokens" in note and "19% of the prompt" in note  # 56 / 302 = 18.5%
    assert "leaves 56 of 302" in note and "~5.4x" in note  # 302 / 56 = 5.39
    assert "miniature" in note
    assert "\n" not in note


def test_flops_ratio_note_on_a_long_clip_of_the_7b():
    full = _run(40, 9000, 3000, 9.0e14, model="Qwen/Qwen2.5-Omni-7B", seconds=120)
    note = T.flops_ratio_note(full, _run(40, 500, 900, 1.0e14, model="Qwen/Qwen2.5-Omni-7B"))
    assert note == "9.0x fewer LLM prefill FLOPs, close to the paper's ~9x (Qwen2.5-Omni-7B at R10)."
    note = T.flops_ratio_note(full, _run(40, 500, 900, 3.0e14, model="Qwen/Qwen2.5-Omni-7B"))
    assert "this 120 s clip has 12000 video and audio tokens." in note  # text 0.3%: not a reason
    assert "text tokens" not in note and "miniature" not in note


def _slaney_mel(f: float) -> float:
    """Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic (27 mels per factor 6.4) above."""
    return f / (200 / 3) if f < 1000 else 15 + math.log(f / 1000) * 27 / math.log(6.4)


def test_mel_ticks_match_the_mel_formula():
    sr, n_mels, height = 16000, 64, 150
    ticks = dict((label, y) for y, label in T.mel_ticks(sr, n_mels, height))
    top = _slaney_mel(sr / 2)
    for label, f in (("500 Hz", 500), ("1 kHz", 1000), ("4 kHz", 4000)):
        band = _slaney_mel(f) * (n_mels + 1) / top - 1  # centres at top * (i + 1) / (n_mels + 1)
        y = (n_mels - 1 - band + 0.5) * height / n_mels
        assert abs(ticks[label] - y) <= 1, (label, ticks[label], y)
    ys = [y for y, _ in T.mel_ticks(sr, n_mels, height)]
    assert ys == sorted(ys, reverse=True)  # higher frequencies nearer the top
    assert "8 kHz" not in ticks  # above the highest band's centre
