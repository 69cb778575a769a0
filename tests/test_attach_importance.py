"""The blocked Stage-I statistic and the one-loop greedy inside the hooks: the same decisions as the references.

References, swapped in one at a time: `selection.received_attention` window by window (the whole (H, n, n) matrix
per window) for `windowed_received_attention`, and the previous greedy (tests/reference_greedy.py) window by
window for `select_windows` (the video and audio windows of one Stage-I drop in one loop), and the scalar
transcription of §9 (tests/test_method_budget.py) for the tensor Stage-II budget. Every run must keep exactly the same tokens at every
drop.
"""

from __future__ import annotations

import pytest
import torch

import seats_core.method as M
from seats_core.prune.attach import Pruner
from seats_core.prune.config import SeatsConfig
from seats_core.run.pipeline import Engine
from tests import reference_greedy
from tests.helpers import mini, random_inputs
from tests.test_method_budget import reference_budget
from tests.test_method_importance import reference

_window_budget = M.window_budget


def _prefill(model, inputs, method, retention, has_audio=True):
    with torch.inference_mode(), Pruner(model, SeatsConfig.make(method, retention)) as pruner:
        model(**inputs, use_audio_in_video=has_audio, use_cache=True)
    return pruner.trace


def _reference_statistic(q, k, lengths, scale=None):
    return reference(q, k, list(lengths), scale)


def _reference_window_budget(scores, is_video, window, num_windows, keep_v, keep_a, temperature, rounding):
    keep, parts = _window_budget(scores, is_video, window, num_windows, keep_v, keep_a, temperature, rounding)
    ref = torch.zeros_like(keep)
    ref[reference_budget(scores, is_video, window, keep_v, keep_a, temperature)] = True
    return ref, parts


def _check_same(model, inputs, monkeypatch, has_audio=True):
    runs = [("seats", "R10"), ("seats", "R25"), ("visionzip-om", "R10")]
    new = [_prefill(model, inputs, m, r, has_audio) for m, r in runs]
    with monkeypatch.context() as mp:
        mp.setattr(M, "windowed_received_attention", _reference_statistic)
        ref = [_prefill(model, inputs, m, r, has_audio) for m, r in runs]
    with monkeypatch.context() as mp:
        mp.setattr(M, "select_windows", reference_greedy.select_windows)
        greedy = [_prefill(model, inputs, m, r, has_audio) for m, r in runs]
    with monkeypatch.context() as mp:
        mp.setattr(M, "window_budget", _reference_window_budget)
        budget = [_prefill(model, inputs, m, r, has_audio) for m, r in runs]
    for (m, r), a, b, c, d in zip(runs, new, ref, greedy, budget):
        nontext = a.layout.nontext
        torch.testing.assert_close(a.importance[nontext], b.importance[nontext], rtol=1e-5, atol=0)
        assert torch.equal(a.survives_to, b.survives_to), (m, r)  # Stage I, II and III decisions
        assert torch.equal(a.survives_to, c.survives_to), (m, r)
        assert torch.equal(a.survives_to, d.survives_to), (m, r)
        assert a.importance_ms > 0 and a.selection_ms > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_random_clip_decisions_unchanged(seed, monkeypatch):
    model, proc = mini("sdpa")
    _check_same(model, random_inputs(proc, seed=seed), monkeypatch)


@pytest.mark.parametrize("clip", ["clip_short_av", "clip_silent"])
def test_test_clips_decisions_unchanged(clip, request, monkeypatch):
    engine = Engine("mini", device="cpu")
    prep = engine.prepare(request.getfixturevalue(clip), "What happens?")
    _check_same(engine.model.thinker, prep.inputs, monkeypatch, has_audio=prep.clip.has_audio)
