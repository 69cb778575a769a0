"""The explorer's handlers and renderers, called as plain functions on the miniature model.

References are independent of the code under test: hand-built frames and hand-computed pixels for the overlays,
the pruner's own before/after counts at each drop for the layer explorer, a direct Engine.run for the API
answer, and the precomputed files for the examples.
"""

from __future__ import annotations

import json
import shutil
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from app import examples, handlers, present, render
from app import view as V
from seats_core import scenes, synth
from seats_core.config import SeatsConfig
from seats_core.media import load_clip

QUESTION = "What shape appears when the tone plays?"
NEW_TOKENS = 3


@pytest.fixture(scope="module")
def live(clip_short_av):
    """One real run (full + seats + random) on the short clip, through the Run handler."""
    return handlers.run_clip(clip_short_av, QUESTION, "mini", "seats", "R10", "random", NEW_TOKENS, {})


# ---------------------------------------------------------------------------------------------------------------
# Rendering (hand references)


def test_colormap_ends_and_missing():
    rgb = render.colormap(np.array([0.0, 1.0, np.nan]))
    assert tuple(rgb[0]) == tuple(render.COLORMAP[0].astype(int))
    assert tuple(rgb[1]) == tuple(render.COLORMAP[-1].astype(int))
    assert tuple(rgb[2]) == render.NO_SCORE_COLOR


def test_rank_normalise_by_hand():
    score = np.array([3.0, 1.0, 2.0, np.nan, 5.0, 2.0])
    alive = np.array([True, True, True, True, False, True])
    out = render.rank_normalise(score, alive)
    # alive with a score: 3, 1, 2, 2 -> ranks 3, 0, 1.5, 1.5 of 0..3
    np.testing.assert_allclose(out[[0, 1, 2, 5]], [1.0, 0.0, 0.5, 0.5])
    assert np.isnan(out[3]) and np.isnan(out[4])


def test_frame_grid_dims_pruned_and_outlines_kept():
    block = 28
    frames = np.full((2, 2 * block, 2 * block, 3), 200, np.uint8)  # one temporal grid of 2x2 tokens
    t, row, col = np.zeros(4, int), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    alive = np.array([True, False, True, True])
    score = np.array([1.0, np.nan, 0.0, np.nan])
    img = render.frame_grid(frames, t, row, col, alive, score, block)
    bp = min(block, (render.MAX_GRID_WIDTH - 2 * render.GAP_PX) // 2)  # block_px for one column of 2 blocks
    assert bp == block
    y0, x0 = render.GAP_PX + render.LABEL_PX, render.GAP_PX
    thumb = img[y0 : y0 + 2 * bp, x0 : x0 + 2 * bp].astype(int)
    interior = slice(2, bp - 2)
    # pruned token (0, 1): dimmed everywhere
    assert np.abs(thumb[interior, bp + 2 : 2 * bp - 2] - round(200 * render.DIM)).max() <= 1
    # kept token (0, 0): interior untouched, outline in the top colour
    assert np.abs(thumb[interior, interior] - 200).max() <= 1
    assert tuple(thumb[0, 0]) == tuple(render.COLORMAP[-1].astype(int))
    assert tuple(thumb[bp, 0]) == tuple(render.COLORMAP[0].astype(int))  # kept (1, 0), lowest score
    assert tuple(thumb[bp, bp]) == render.NO_SCORE_COLOR  # kept (1, 1) without a score


def test_audio_strip_dims_exactly_the_pruned_tokens():
    sr, dur = 16000, 1.0
    audio = (0.5 * np.sin(2 * np.pi * 440 * np.arange(int(sr * dur)) / sr)).astype(np.float32)
    start = np.arange(25) * 0.04
    end = start + 0.04
    alive = np.ones(25, bool)
    width = 1000  # 40 px per token
    full = render.audio_strip(audio, sr, start, end, alive, np.full(25, np.nan), dur, width=width).astype(
        float
    )
    alive[10:15] = False  # 0.40-0.60 s -> px 400-600
    part = render.audio_strip(audio, sr, start, end, alive, np.full(25, np.nan), dur, width=width).astype(
        float
    )
    body = slice(render.TOKEN_BAR_PX, render.TOKEN_BAR_PX + render.AUDIO_PLOT_PX)
    np.testing.assert_allclose(part[body, 405:595], np.round(full[body, 405:595] * render.DIM), atol=1)
    np.testing.assert_array_equal(part[body, :395], full[body, :395])
    none = render.audio_strip(None, sr, start, end, alive, np.full(25, np.nan), dur, width=width)
    assert none.shape[1] == width


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def test_make_configs_and_advanced_fields():
    cfgs = handlers.make_configs("seats", "0.3,0.6", "fastv", {"drop_layers": "15, 17,19", "late_layer": 23})
    assert cfgs["method"]["retention"] == [0.3, 0.6]
    assert cfgs["method"]["drop_layers"] == [15, 17, 19] and cfgs["method"]["late_layer"] == 23
    checked = handlers.check_plans(cfgs, num_layers=28)
    assert checked["method"] == cfgs["method"]
    assert isinstance(checked["baseline"], str) and "audio" in checked["baseline"]  # fastv keeps all audio
    with pytest.raises(gr.Error, match="fastv"):
        handlers.check_plans({"method": handlers.make_configs("fastv-om", "R10", "none")["method"]}, 28)
    assert set(handlers.ADVANCED_FIELDS) == set(SeatsConfig().to_dict()) - {"method", "retention", "extra"}
    with pytest.raises(gr.Error, match="retention"):
        handlers.make_configs("seats", "R99", "none")
    with pytest.raises(gr.Error, match="temperature"):
        handlers.make_configs("seats", "R10", "none", {"temperature": 0})


@pytest.mark.parametrize(
    "name, message",
    [
        ("corrupt", "cannot be decoded"),
        ("truncated", "truncated"),
        ("empty", "empty"),
        ("text", "cannot be decoded"),
        ("audio_only", "no video stream"),
        ("missing", "not found"),
    ],
)
def test_bad_media_gets_a_specific_error(bad_files, name, message):
    with pytest.raises(gr.Error, match=message):
        handlers.run_clip(bad_files[name], QUESTION, "mini", "seats", "R10", "none", NEW_TOKENS, {})


def test_long_and_huge_clips_are_refused(tmp_path):
    long = tmp_path / "long.mp4"
    seconds = int(handlers.MAX_CLIP_SECONDS) + 5
    synth.write_clip(long, np.zeros((seconds, 64, 64, 3), np.uint8), fps=1)
    with pytest.raises(gr.Error, match="limit"):
        handlers.run_clip(str(long), QUESTION, "mini", "seats", "R10", "none", NEW_TOKENS, {})
    huge = tmp_path / "huge.mp4"
    synth.write_clip(huge, np.zeros((2, 64, handlers.MAX_SIDE + 64, 3), np.uint8), fps=2)
    with pytest.raises(gr.Error, match="resolution"):
        handlers.run_clip(str(huge), QUESTION, "mini", "seats", "R10", "none", NEW_TOKENS, {})


def test_missing_clip_and_empty_question(clip_short_av):
    with pytest.raises(gr.Error, match="No clip"):
        handlers.run_clip(None, QUESTION, "mini", "seats", "R10", "none", NEW_TOKENS, {})
    with pytest.raises(gr.Error, match="question is empty"):
        handlers.run_clip(clip_short_av, "   ", "mini", "seats", "R10", "none", NEW_TOKENS, {})


def test_clip_paths_outside_the_app_folders_are_refused(monkeypatch):
    # The checkout itself may live under the temp folder (CI clones anywhere): allow only the examples here.
    monkeypatch.setattr(present, "allowed_roots", lambda: [examples.EXAMPLES_DIR.resolve()])
    with pytest.raises(present.MediaError, match="not a clip this app decoded"):
        present.clip_for(str(examples.ROOT / "pyproject.toml"), handlers.APP_MEDIA)


# ---------------------------------------------------------------------------------------------------------------
# A live run


def test_layer_counts_match_the_pruners_own_counts(live):
    view = live["view"]
    run = view["runs"]["method"]
    assert run["events"], "SEATS at R10 must drop tokens"
    for ev in run["events"]:
        before = V.counts_at(view, "method", ev["layer"])  # the layer that ran just before the drop
        after = V.counts_at(view, "method", ev["layer"] + 1)
        assert {m: before[m] for m in ("video", "audio")} == ev["before"]
        assert {m: after[m] for m in ("video", "audio")} == ev["after"]
    full = view["runs"]["full"]
    assert all(
        V.counts_at(view, "full", x) == V.counts_at(view, "full", 0) for x in range(view["num_layers"] + 1)
    )
    assert full["events"] == []


def test_scores_follow_the_latest_drop(live):
    run = live["view"]["runs"]["method"]
    drops = sorted(int(k) for k in run["relevance"])
    _, what = V.scores_at(run, drops[0])
    assert "importance" in what
    score, what = V.scores_at(run, drops[0] + 1)
    assert f"after layer {drops[0]}" in what
    alive = V.alive_at(run, drops[0] + 1)
    assert not np.isnan(score[alive]).any()  # every survivor of a drop was scored by it


def test_run_outputs_and_exports(live, clip_short_av):
    assert live["answers"].count("seats-card'") == 3
    assert live["frames"].ndim == 3 and live["audio"].ndim == 3
    trace = json.loads(open(live["export_json"]).read())
    assert set(trace["runs"]) == {"full", "method", "baseline"}
    assert trace["runs"]["method"]["clip"]["path"] == clip_short_av
    page = open(live["export_html"]).read()
    assert "<script src=" not in page and "data:image/png;base64," in page
    assert trace["runs"]["method"]["answer"] in page or trace["runs"]["method"]["answer"] == ""


def test_scrubbing_changes_the_overlay_without_the_model(live, monkeypatch):
    monkeypatch.setattr(
        handlers, "get_engine", lambda *a, **k: pytest.fail("scrubbing must not use the model")
    )
    view = live["view"]
    drop = V.boundaries(view["runs"]["method"])[1]["after"]
    a = handlers.explore(view, "method", drop, "waveform")
    b = handlers.explore(view, "method", drop + 1, "spectrogram")
    assert not np.array_equal(a["frames"], b["frames"]) and not np.array_equal(a["audio"], b["audio"])
    assert "Stage II" in b["counts"]


def test_api_answer_matches_a_direct_engine_run(clip_short_av):
    answer, result = handlers.api_run(clip_short_av, QUESTION, "seats", "R25", NEW_TOKENS)
    engine = handlers.get_engine("mini")
    prep = engine.prepare(clip_short_av, QUESTION, handlers.media_for(handlers.MINI))
    direct = engine.run(prep, SeatsConfig.make("seats", "R25"), max_new_tokens=NEW_TOKENS)
    assert answer == direct["answer"] == result["answer"]
    assert set(result) == set(direct)
    assert [t["survives_to"] for t in result["tokens"]] == [t["survives_to"] for t in direct["tokens"]]


def test_silent_clip_runs_video_only(clip_silent):
    out = handlers.run_clip(clip_silent, QUESTION, "mini", "seats", "R10", "none", 2, {})
    assert "no audio track" in out["status"]
    assert V.counts_at(out["view"], "method", 0)["audio"] == 0


# ---------------------------------------------------------------------------------------------------------------
# Examples and the optional analysis


def _no_model(*args, **kwargs):
    pytest.fail("examples must load without a model call")


@pytest.mark.skipif(not examples.gallery(), reason="no examples generated (run scripts/make_examples.py)")
def test_examples_load_without_the_model(monkeypatch):
    monkeypatch.setattr(handlers, "get_engine", _no_model)
    clip, question = examples.gallery()[0]
    out = handlers.load_example(clip, question)
    stored = examples.load_runs(examples.find(clip, question))
    assert out["view"]["runs"]["method"]["answer"] == stored["method"]["answer"]
    s = examples.index()["settings"]
    again = handlers.run_clip(
        clip, question, s["model"], s["method"], s["retention"], s["baseline"], s["max_new_tokens"], {},
        compute=_no_model,
    )  # fmt: skip
    assert "precomputed" in again["status"]
    entry = examples.find(clip, question)
    if "answer" in entry:  # generated scenes: the page names the correct option
        assert f"({entry['answer']}) {entry['answer_text']}" in " ".join(out["view"]["notes"])


@pytest.mark.skipif(not examples.gallery(), reason="no examples generated (run scripts/make_examples.py)")
def test_example_clips_are_small_with_sound():
    for clip, _ in examples.gallery():
        assert examples.Path(clip).stat().st_size < 2 * 1024 * 1024
        assert present.clip_for(clip, handlers.APP_MEDIA).has_audio


def test_analysis_missing_module_is_reported(live):
    def missing(*args):
        raise ModuleNotFoundError("No module named 'seats_core.analysis'", name="seats_core.analysis")

    out = handlers.analyze(live["view"], "mini", compute=missing)
    assert out["analysis"] is None and "unavailable" in out["dependency_notes"]


def test_analysis_shape_is_plotted():
    L, W = 4, 3
    fake = {
        "num_layers": L,
        "attention": {"share": [[0.2, 0.5, 0.3]] * L, "video_windows": [[0.1] * W] * L, "audio_windows": [[0.1] * W] * L},
        "knockout": {m: {"kl": [1.0, 0.5, 0.05, 0.01, 0.0], "answer_logprob": [-3.0] * (L + 1)} for m in ("video", "audio", "both")},
    }  # fmt: skip
    out = handlers.analyze({"runs": {"method": {"x": 1}}, "clip_path": "c", "question": "q"}, "mini",
                           compute=lambda *a: fake)  # fmt: skip
    assert len(out["dependency"].data) == 2 + 3 * 2
    assert "layer **2**" in out["dependency_notes"]  # KL stays below 10% of its max (1.0) from k = 2 on


def test_generated_scene_reports_its_answer(monkeypatch, tmp_path):
    monkeypatch.setattr(handlers, "SCENE_DIR", tmp_path / "scenes")
    monkeypatch.setattr(handlers, "MAX_SCENES", 2)
    monkeypatch.setattr(handlers, "_scenes", OrderedDict())
    first = [handlers.new_scene(seed)[0] for seed in (1, 2, 3)]
    assert not Path(first[0]).exists() and all(Path(p).exists() for p in first[1:])  # oldest file deleted
    path, question = handlers.new_scene(7)
    truth = scenes.make_sample(handlers.SCENE_SEED_BASE + 7, seconds=6)  # regenerated independently
    assert question == truth.question
    clip = load_clip(path, handlers.media_for("mini"))
    assert clip.has_audio and clip.duration == pytest.approx(6.0, abs=0.15)
    copy = tmp_path / "uploaded.mp4"  # Gradio hands the handler its own copy of the file
    shutil.copy(path, copy)
    out = handlers.run_clip(str(copy), question, "mini", "seats", "R10", "none", 2, {})
    assert (
        f"Correct answer (known from the generated scene): ({truth.answer}) {truth.answer_text}."
        in out["view"]["notes"]
    )
    other = handlers.run_clip(str(copy), "What else?", "mini", "seats", "R10", "none", 2, {})
    assert not any("Correct answer" in n for n in other["view"]["notes"])
