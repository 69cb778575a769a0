"""Every paper value comes from the family's recipe (issue 26): drop layers, late layer, presets, lambda, Stage-I
blocks and Stage II's window temperature (Qwen2.5-Omni T = 0.1, Qwen3-Omni T = 0.3, SEATS_SPEC §9)."""

from __future__ import annotations

import math

import pytest
import torch

from seats_core import method as M
from seats_core.method import PRESETS, PRESETS_QWEN3
from seats_core.models.family import Qwen3OmniAdapter, Qwen25OmniAdapter, get_adapter
from seats_core.prune.attach import Pruner
from seats_core.prune.config import SeatsConfig
from tests.helpers import mini, mini_qwen3, random_inputs


@pytest.mark.parametrize(
    "family,temperature,drops,late,presets",
    [
        (Qwen25OmniAdapter, 0.1, (16, 18, 20), 24, PRESETS),
        (Qwen3OmniAdapter, 0.3, (27, 31, 35), 40, PRESETS_QWEN3),
    ],
)
def test_resolving_reads_every_paper_value_from_the_family(family, temperature, drops, late, presets):
    cfg = SeatsConfig.make("seats", "R10")
    assert cfg.temperature is None and cfg.encoder_scale is None and not cfg.resolved  # nothing chosen yet
    r = cfg.resolve(family.paper)
    assert r.temperature == temperature and r.drop_layers == drops and r.late_layer == late
    assert r.encoder_scale == 1.4 and r.retention == presets["R10"] and r.resolved
    assert r.to_dict()["temperature"] == temperature  # saved with every result
    assert (family.paper.video_block_grids, family.paper.audio_block_tokens) == (2, 50)
    # a user's explicit values still win
    mine = SeatsConfig.make("seats", "R10", temperature=0.5, encoder_scale=1.2).resolve(family.paper)
    assert (mine.temperature, mine.encoder_scale) == (0.5, 1.2)


def test_qwen3_depths_other_than_48_scale_qwen3s_own_fractions():
    r = Qwen3OmniAdapter.paper.for_depth(24)  # 27/48, 31/48, 35/48, 40/48 of 24 = 13.5, 15.5, 17.5, 20
    assert (r.drop_layers, r.late_layer, r.derived) == ((14, 16, 18), 20, True)
    assert Qwen25OmniAdapter.paper.for_depth(24).drop_layers == (
        14,
        15,
        17,
    )  # 16/28 ... of 24: 13.7, 15.4, 17.1


def _budget_case():
    """Two Stage-II windows of 4 video + 2 audio tokens; video scores 0.3 in window 0, 0.15 in window 1; audio 0.1.

    keep 0.5 of each: K_v = 4, K_a = 2, B = 6; the audio weights are (1/2, 1/2). Video weight of window 0:
      T = 0.1: w_v0 = 1 / (1 + e^(-0.15 / 0.1)) = 0.8176;  B_0 = round(6 * (0.8176 + 0.5) / 2) = round(3.953) = 4
      T = 0.3: w_v0 = 1 / (1 + e^(-0.15 / 0.3)) = 0.6225;  B_0 = round(6 * (0.6225 + 0.5) / 2) = round(3.367) = 3
    Inside window 0 (frac = w_v K_v / (w_v K_v + w_a K_a)):
      T = 0.1: frac = 3.270 / 4.270 = 0.766, b_v = round(4 * 0.766) = 3;  window 1 (B_1 = 2): frac = 0.730 / 1.730,
               b_v = round(0.844) = 1  -> video kept per window (3, 1)
      T = 0.3: frac = 2.490 / 3.490 = 0.713, b_v = round(2.14) = 2;      window 1 (B_1 = 3): frac = 1.510 / 2.510,
               b_v = round(1.805) = 2  -> video kept per window (2, 2)
    """
    scores = torch.tensor([0.3] * 4 + [0.1] * 2 + [0.15] * 4 + [0.1] * 2)
    is_video = torch.tensor([True] * 4 + [False] * 2 + [True] * 4 + [False] * 2)
    window = torch.tensor([0] * 6 + [1] * 6)
    return scores, is_video, window


@pytest.mark.parametrize("temperature,video_per_window", [(0.1, [3, 1]), (0.3, [2, 2])])
def test_the_temperature_changes_the_stage2_keep_counts_by_hand(temperature, video_per_window):
    scores, is_video, window = _budget_case()
    w = 1 / (1 + math.exp(-0.15 / temperature))
    assert (
        round(6 * (w + 0.5) / 2) == video_per_window[0] + 1
    )  # B_0: the window's video plus its one audio token
    keep, _ = M.window_budget(scores, is_video, window, 2, 0.5, 0.5, temperature)
    kept_video = [int((keep & is_video & (window == t)).sum()) for t in (0, 1)]
    assert kept_video == video_per_window
    assert int((keep & ~is_video).sum()) == 2


@pytest.mark.parametrize("thinker,temperature", [(mini, 0.1), (mini_qwen3, 0.3)])
def test_the_pruner_uses_its_familys_temperature(monkeypatch, thinker, temperature):
    """On a Qwen3 thinker every Stage-II budget is computed with T = 0.3 (0.1 on Qwen2.5), and the trace says so."""
    model, proc = thinker()
    seen = []
    real = M.window_budget

    def spy(*args):
        seen.append(args[6])  # temperature, as the registry's Stage II passes it
        return real(*args)

    monkeypatch.setattr(M, "window_budget", spy)
    inputs = random_inputs(proc, seconds=4, side=get_adapter(model).media_layout.token_block_px * 4)
    with Pruner(model, SeatsConfig.make("seats", "R10")) as pruner, torch.no_grad():
        model(**inputs, use_audio_in_video=True)
    assert pruner.config.temperature == temperature
    assert seen == [temperature] * len(pruner.config.drop_layers)
