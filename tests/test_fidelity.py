"""The authors' decisions (SEATS_SPEC §9) end to end on the miniature: counts computed by hand from the layout."""

from __future__ import annotations

import numpy as np
import torch

from seats_core.models.adapter import OmniAdapter
from seats_core.prune.attach import Pruner
from seats_core.prune.config import SeatsConfig
from seats_core.prune.layout import AUDIO, VIDEO
from tests.helpers import mini


def _inputs(proc, video_seconds=6, audio_seconds=6.0):
    """A random clip at 2 fps (112 px) whose audio track may outlast or stop before the video."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2 * video_seconds, 112, 112, 3), dtype=np.uint8)
    wave = (rng.standard_normal(int(16000 * audio_seconds)) * 0.1).astype(np.float32)
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What colour?"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return dict(OmniAdapter.processor_inputs(proc, text, frames, 2.0, wave, 16000))


def _prefill(config, audio_seconds=6.0):
    model, proc = mini()
    inputs = _inputs(proc, audio_seconds=audio_seconds)
    with Pruner(model, config) as pruner, torch.inference_mode():
        model.generate(**inputs, use_audio_in_video=True, max_new_tokens=1, do_sample=False)
    return pruner


def _runs(modalities: list[int]) -> int:
    """Number of Stage-II windows: max(#video runs, #audio runs) in a sequence of modality ids, by hand."""
    count = {VIDEO: 0, AUDIO: 0}
    for i, m in enumerate(modalities):
        if m in count and (i == 0 or modalities[i - 1] != m):
            count[m] += 1
    return max(count.values())


def test_r25_stage1_audio_blocks_round_half_to_even_and_stage2_from_runs():
    pruner = _prefill(SeatsConfig.make("seats", "R25"))
    lay, trace = pruner.trace.layout, pruner.trace
    n_audio = int((lay.modality == AUDIO).sum())
    assert n_audio >= 100  # at least two full 50-token blocks
    # Stage I audio: blocks of 50 tokens, 0.55 * 1.4 * 50 = 38.5 -> 38 per full block (half to even)
    full_blocks, rest = divmod(n_audio, 50)
    expected = 38 * full_blocks + (max(1, round(0.77 * rest)) if rest else 0)
    stage1 = next(e for e in trace.events if e["stage"] == "stage1")
    assert stage1["after"]["audio"] == expected

    # The first drop (after layer 16): K = round(0.9298 * n) per modality, windows = runs of the current sequence.
    drop = next(e for e in trace.events if e["stage"] == "stage2")
    assert drop["layer"] == 16 and drop["keep_video"] == 0.9298
    n_v, n_a = drop["before"]["video"], drop["before"]["audio"]
    assert drop["info"]["video_budget"] == max(1, round(0.9298 * n_v))
    assert drop["info"]["audio_budget"] == max(1, round(drop["keep_audio"] * n_a))
    alive = (trace.survives_to >= 16).nonzero().squeeze(1)  # tokens entering layer 17, in sequence order
    assert len(drop["info"]["window_budget"]) == _runs(lay.modality[alive].tolist())


def test_alternatives_are_named_and_recorded():
    authors = _prefill(SeatsConfig.make("seats", "R25"))
    legacy = _prefill(SeatsConfig.make("seats", "R25", rounding="half_up", window_rule="time"))
    assert authors.config.to_dict()["rounding"] == "half_even"
    assert legacy.config.to_dict()["rounding"] == "half_up"
    assert legacy.config.to_dict()["window_rule"] == "time"
    n_audio = int((legacy.trace.layout.modality == AUDIO).sum())
    stage1 = next(e for e in legacy.trace.events if e["stage"] == "stage1")
    # 2-second windows of 50 audio tokens at 25/s, half up: 38.5 -> 39 per full window
    full, rest = divmod(n_audio, 50)
    assert stage1["after"]["audio"] == 39 * full + (max(1, int(0.77 * rest + 0.5)) if rest else 0)
    # time windows: Stage II sees the layout's 2-second windows, not the runs
    drop = next(e for e in legacy.trace.events if e["stage"] == "stage2")
    assert len(drop["info"]["window_budget"]) == legacy.trace.layout.num_windows


def test_audio_outlasting_the_video_joins_the_last_window():
    # 6 s of video (3 windows), 7 s of audio: the 4th audio chunk follows the 3rd with no video between.
    pruner = _prefill(SeatsConfig.make("seats", "R25"), audio_seconds=7.0)
    lay = pruner.trace.layout
    assert lay.num_windows == 4  # by time: an audio-only 4th window
    drop = next(e for e in pruner.trace.events if e["stage"] == "stage2")
    assert len(drop["info"]["window_budget"]) == 3  # by runs (§9): it joins the last one
    legacy = _prefill(SeatsConfig.make("seats", "R25", window_rule="time"), audio_seconds=7.0)
    assert len(next(e for e in legacy.trace.events if e["stage"] == "stage2")["info"]["window_budget"]) == 4
