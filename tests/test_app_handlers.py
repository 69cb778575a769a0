"""The explorer's handlers and renderers, called as plain functions on the miniature model.

References are independent of the code under test: hand-built frames and hand-computed pixels for the overlays,
the pruner's own before/after counts at each drop for the layer explorer, a direct Engine.run for the API
answer, the precomputed files for the examples, and counted calls of the decoder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from app import api, checks, events, examples, present, render, server, work
from app import view as V
from app.files import Workspace
from app.state import Session, SessionStore
from seats_core.data import scenes, synth
from seats_core.models.family import Qwen25OmniAdapter
from seats_core.prune.config import SeatsConfig
from seats_core.run import media
from seats_core.run.media import load_clip
from tests.test_cli import _rows

QUESTION = "What shape appears when the tone plays?"
NEW_TOKENS = 3

QWEN25_7B = Qwen25OmniAdapter.paper  # the 7B recipe: 28 layers


@pytest.fixture(scope="module", autouse=True)
def test_files_are_clips(tmp_path_factory):
    """The handlers accept clips from uploads and examples only; the tests' own files count as uploads."""
    server.SERVER.allow_clip_root(tmp_path_factory.getbasetemp())


def _session() -> Session:
    return SessionStore().get("s-" + str(id(object())))


def run(session, clip, question=QUESTION, baseline="none", n_new=NEW_TOKENS, **kw):
    return events.run_clip(session, clip, question, "mini", "seats", "R10", baseline, n_new, kw or {})


@pytest.fixture(scope="module")
def live(clip_short_av):
    """One real run (full + seats + random) on the short clip, through the Run handler: (session, outputs)."""
    session = _session()
    return session, run(session, clip_short_av, baseline="random")


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
    bp = render.grid_layout(1, 2, block)[2]  # drawn block: small frames are enlarged to a readable size
    assert bp >= block and 2 * bp >= render.MIN_THUMB_PX
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
    cfgs = checks.make_configs("seats", "0.3,0.6", "fastv", {"drop_layers": "15, 17,19", "late_layer": 23})
    assert cfgs["method"]["retention"] == [0.3, 0.6]
    assert cfgs["method"]["drop_layers"] == [15, 17, 19] and cfgs["method"]["late_layer"] == 23
    checked = checks.check_plans(cfgs, QWEN25_7B)
    assert checked["method"] == cfgs["method"]
    assert isinstance(checked["baseline"], str) and "audio" in checked["baseline"]  # fastv keeps all audio
    with pytest.raises(gr.Error, match="fastv"):
        checks.check_plans({"method": checks.make_configs("fastv-om", "R10", "none")["method"]}, QWEN25_7B)
    assert set(checks.ADVANCED_FIELDS) == set(SeatsConfig().to_dict()) - {"method", "retention", "extra"}
    with pytest.raises(gr.Error, match="retention"):
        checks.make_configs("seats", "R99", "none")
    with pytest.raises(gr.Error, match="temperature"):
        checks.make_configs("seats", "R10", "none", {"temperature": 0})


@pytest.mark.parametrize(
    "name, message",
    [
        ("corrupt", "cannot be decoded"),
        ("truncated", "truncated"),
        ("empty", "empty"),
        ("text", "cannot be decoded"),
        ("audio_only", "no video stream"),
        ("missing", "not a clip this app received"),
    ],
)
def test_bad_media_gets_a_specific_error(bad_files, name, message):
    with pytest.raises(gr.Error, match=message):
        run(_session(), bad_files[name])


def test_long_and_huge_clips_are_refused(tmp_path):
    long = tmp_path / "long.mp4"
    seconds = int(work.MAX_CLIP_SECONDS) + 5
    synth.write_clip(long, np.zeros((seconds, 64, 64, 3), np.uint8), fps=1)
    with pytest.raises(gr.Error, match="limit"):
        run(_session(), str(long))
    huge = tmp_path / "huge.mp4"
    synth.write_clip(huge, np.zeros((2, 64, work.MAX_SIDE + 64, 3), np.uint8), fps=2)
    with pytest.raises(gr.Error, match="resolution"):
        run(_session(), str(huge))


def test_decode_budget_is_refused_before_decoding(tmp_path, monkeypatch):
    fast = tmp_path / "fast.mp4"  # 3 s at 60 fps: 180 frames of 64x64
    synth.write_clip(fast, np.zeros((180, 64, 64, 3), np.uint8), fps=60)
    base = work.APP_MEDIA
    monkeypatch.setattr(media, "_decode_pass", lambda *a, **k: pytest.fail("decoded before the check"))
    monkeypatch.setattr(work, "APP_MEDIA", dataclasses.replace(base, max_decode_frames=100))
    with pytest.raises(gr.Error, match="more than 100 frames"):
        run(_session(), str(fast))
    budget = 180 * 64 * 64 - 1
    monkeypatch.setattr(work, "APP_MEDIA", dataclasses.replace(base, max_decode_pixels=budget))
    with pytest.raises(gr.Error, match="gigapixels"):
        run(_session(), str(fast))


def test_missing_clip_and_empty_question(clip_short_av):
    with pytest.raises(gr.Error, match="No clip"):
        run(_session(), None)
    with pytest.raises(gr.Error, match="question is empty"):
        run(_session(), clip_short_av, "   ")


def test_clip_paths_outside_uploads_and_examples_are_refused(monkeypatch, tmp_path):
    secret = tmp_path / "secret.mp4"
    synth.write_clip(secret, np.zeros((4, 64, 64, 3), np.uint8), fps=2)
    monkeypatch.setattr(server.SERVER, "extra_clip_roots", [])  # only Gradio's upload folder and the examples
    for path in (
        str(secret),
        str(examples.ROOT / "pyproject.toml"),
        "/etc/passwd",
        str(tmp_path / "none.mp4"),
    ):
        with pytest.raises(gr.Error, match="not a clip this app received") as info:
            run(_session(), path)
        assert "\n" not in str(info.value)
        with pytest.raises(gr.Error, match="not a clip this app received"):
            api.api_run(path, QUESTION)
        with pytest.raises(gr.Error, match="not a clip this app received"):
            events.load_example(_session(), path, QUESTION)


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("seed", 2**70, "seed must be a whole number from 0"),
        ("seed", -1, "seed must be a whole number"),
        ("seed", float("inf"), "seed must be a finite number"),
        ("temperature", float("nan"), "temperature must be a finite number"),
        ("fastv_layer", 2.5, "fastv_layer must be a whole number"),
        ("drop_layers", "3,x", "drop_layers must be a number"),
        ("use_windows", "false", "use_windows must be true or false"),
        ("score_layer", "prev", "score_layer must be one of"),
    ],
)
def test_bad_advanced_values_are_refused_in_one_line(clip_short_av, caplog, field, value, needle):
    with caplog.at_level("WARNING", logger="seats_explorer"):
        with pytest.raises(gr.Error, match=needle) as info:
            run(_session(), clip_short_av, **{field: value})
    assert "\n" not in str(info.value)
    refusals = [r for r in caplog.records if r.name == "seats_explorer"]
    assert (
        len(refusals) == 1 and refusals[0].getMessage().startswith("refused: ") and not refusals[0].exc_info
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, 129, 2.5, "many"])
def test_bad_max_new_tokens_then_the_next_request_is_served(clip_short_av, value):
    session = _session()
    with pytest.raises(gr.Error, match="max new tokens must be"):
        run(session, clip_short_av, n_new=value)
    assert run(session, clip_short_av, n_new=1)["answers"].count("seats-card'") == 2


# ---------------------------------------------------------------------------------------------------------------
# A live run


def test_layer_counts_match_the_pruners_own_counts(live):
    view = live[0].view
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
    run = live[0].view["runs"]["method"]
    drops = sorted(int(k) for k in run["relevance"])
    _, what = V.scores_at(run, drops[0])
    assert "importance" in what
    score, what = V.scores_at(run, drops[0] + 1)
    assert f"after layer {drops[0]}" in what
    alive = V.alive_at(run, drops[0] + 1)
    assert not np.isnan(score[alive]).any()  # every survivor of a drop was scored by it


def test_run_outputs_and_exports_on_request(live, clip_short_av, tmp_path, monkeypatch):
    session, out = live
    assert out["answers"].count("seats-card'") == 3
    assert out["frames"].ndim == 3 and out["audio"].ndim == 3
    assert out["export_json"] is None and out["export_html"] is None  # nothing written per run
    monkeypatch.setattr(present, "WORKSPACE", Workspace(tmp_path / "ws"))
    files = events.export(session)
    assert Path(files["export_json"]).is_relative_to(tmp_path / "ws")
    used = present.WORKSPACE.used_bytes()
    assert events.export(session) == files and present.WORKSPACE.used_bytes() == used  # once per run
    text = open(files["export_json"]).read()
    assert '"path"' not in text
    trace = json.loads(text)
    assert set(trace["runs"]) == {"full", "method", "baseline"}
    assert trace["runs"]["method"]["clip"]["name"] == Path(clip_short_av).name
    page = open(files["export_html"]).read()
    assert "<script src=" not in page and "data:image/png;base64," in page
    assert trace["runs"]["method"]["answer"] in page or trace["runs"]["method"]["answer"] == ""


def test_overlay_geometry_comes_from_the_record(live):
    session, out = live
    g = session.view["geometry"]
    w, h = g["frame_size"]
    # The frame grid thumbnails tile gw x gh blocks of block_px: count the kept/total caption of grid 0.
    video = V.modality_mask(session.view, "video")
    assert video.sum() == g["grid"][0] * g["grid"][1] * g["grid"][2]
    assert (g["grid"][1], g["grid"][2]) == (h // g["block_px"], w // g["block_px"])
    assert session.clip.frames.shape[0] == g["grid"][0] * g["temporal_patch"]


def test_scrubbing_changes_the_overlay_without_the_model_or_a_decode(live, monkeypatch):
    session, _ = live
    monkeypatch.setattr(work, "get_engine", lambda *a, **k: pytest.fail("scrubbing must not use the model"))
    monkeypatch.setattr(work, "load_clip", lambda *a, **k: pytest.fail("scrubbing must not decode"))
    drop = V.boundaries(session.view["runs"]["method"])[1]["after"]
    a = events.explore(session, "method", drop, "waveform")
    b = events.explore(session, "method", drop + 1, "spectrogram")
    assert not np.array_equal(a["frames"], b["frames"]) and not np.array_equal(a["audio"], b["audio"])
    assert "Stage II" in b["counts"]


@pytest.mark.parametrize(
    "key, layer, mode, needle",
    [
        ("../../etc/passwd", 1, "waveform", "the run must be one of"),
        ("method", float("nan"), "waveform", "the layer must be a finite number"),
        ("method", "ninety", "waveform", "the layer must be a number"),
        ("method", 1, "waveform", "the attention source must be one of"),
        ("method", 1, "x" * 500, "the audio view must be one of"),
    ],
)
def test_forged_explore_inputs_are_refused(live, key, layer, mode, needle):
    source = "last" if "attention source" not in needle else "../first"
    with pytest.raises(gr.Error, match=needle) as info:
        events.explore(live[0], key, layer, mode, source)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


@pytest.mark.parametrize("layer, shown", [(10**6, None), (-5, 0), (3.6, 4)])
def test_an_out_of_range_layer_is_drawn_at_the_nearest_and_the_box_set_to_it(live, layer, shown):
    """Issue 23: typing 99 shows the last layer, no error (it used to be refused, blanking every panel)."""
    session = live[0]
    L = session.view["num_layers"]
    shown = L if shown is None else shown
    out = events.explore(session, "method", layer, "waveform")
    assert f"data-layer='{shown}'" in out["caption"]
    assert out["layer_fix"]["value"] == shown
    assert events.explore(session, "method", shown, "waveform")["layer_fix"] == gr.update()


def test_a_session_sees_only_its_own_run(live):
    other = _session()
    out = events.explore(other, "method", 1, "waveform")
    assert out["frames"] is None and "Run a clip" in out["counts"]
    for call in (lambda: events.export(other), lambda: events.analyze(other, "mini")):
        with pytest.raises(gr.Error, match="Run a clip or pick an example first"):
            call()


def test_a_view_that_does_not_match_the_clip_is_refused(live, clip_av):
    session, _ = live
    broken = Session("broken", view=session.view, records=session.records)
    broken.clip = load_clip(clip_av, work.media_for("mini"))  # 10 s: more grids than the run had
    with pytest.raises(gr.Error, match="cannot draw this run on the clip held for it"):
        events.explore(broken, "method", 1, "waveform")


def test_each_upload_is_decoded_once(clip_short_av, monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0])
        return load_clip(*args, **kwargs)

    monkeypatch.setattr(work, "load_clip", counted)
    session = _session()
    run(session, clip_short_av, n_new=1)
    events.explore(session, "method", 5, "waveform")
    run(session, clip_short_av, "What colour is it?", n_new=1)  # same upload, new question
    events.analyze(session, "mini", compute=lambda *a: {"num_layers": 28, "attention": {}, "knockout": {}})
    assert len(calls) == 1


def test_api_answer_matches_a_direct_engine_run(clip_short_av):
    answer, record = api.api_run(clip_short_av, QUESTION, "seats", "R25", NEW_TOKENS)
    engine = work.get_engine("mini")
    prep = engine.prepare(clip_short_av, QUESTION, work.media_for(server.MINI))
    direct = engine.run(prep, SeatsConfig.make("seats", "R25"), max_new_tokens=NEW_TOKENS).to_dict()
    direct["tokens"] = _rows(direct)
    assert answer == direct["answer"] == record["answer"]
    assert record["tokens"]["survives_to"] == [t["survives_to"] for t in direct["tokens"]]
    assert record["flops"] == direct["flops"] and record["version"] == 1
    assert "path" not in json.dumps(record).replace('"path_', "")


def test_silent_clip_runs_video_only(clip_silent):
    session = _session()
    out = run(session, clip_silent, n_new=2)
    assert "no audio track" in out["status"]
    assert V.counts_at(session.view, "method", 0)["audio"] == 0


def test_corrupt_middle_is_run_with_a_warning(tmp_path):
    path = tmp_path / "damaged.mp4"
    synth.make_demo_clip(path, seconds=10, seed=3)
    data = bytearray(path.read_bytes())
    lo, hi = int(len(data) * 0.4), int(len(data) * 0.6)
    data[lo:hi] = np.random.default_rng(0).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    session = _session()
    out = run(session, str(path), n_new=1)
    assert "Warning" in out["status"] and "could not be decoded" in out["status"]
    assert any("could not be decoded" in w for w in session.records["method"]["warnings"])
    assert session.records["method"]["clip"]["undecodable_frames"] > 0


# ---------------------------------------------------------------------------------------------------------------
# Examples and the optional analysis


def _no_model(*args, **kwargs):
    pytest.fail("examples must load without a model call")


@pytest.mark.skipif(not examples.gallery(), reason="no examples generated (run scripts/make_examples.py)")
def test_examples_load_without_the_model(monkeypatch):
    monkeypatch.setattr(work, "get_engine", _no_model)
    clip, question = examples.gallery()[0]
    session = _session()
    events.load_example(session, clip, question)
    stored = json.loads((examples.EXAMPLES_DIR / examples.find(clip, question)["results"]).read_text())[
        "runs"
    ]
    assert session.view["runs"]["method"]["answer"] == stored["method"]["answer"]
    s = examples.index()["settings"]
    again = events.run_clip(
        session, clip, question, s["model"], s["method"], s["retention"], s["baseline"], s["max_new_tokens"], {},
        compute=_no_model,
    )  # fmt: skip
    assert "precomputed" in again["status"]
    entry = examples.find(clip, question)
    if "answer" in entry:  # generated scenes: the page names the correct option
        assert f"({entry['answer']}) {entry['answer_text']}" in " ".join(session.view["notes"])


@pytest.mark.skipif(not examples.gallery(), reason="no examples generated (run scripts/make_examples.py)")
def test_example_clips_are_small_with_sound():
    for clip, _ in examples.gallery():
        assert examples.Path(clip).stat().st_size < 2 * 1024 * 1024
        assert load_clip(clip, work.APP_MEDIA).has_audio


def test_analysis_missing_module_is_reported(live):
    def missing(*args):
        raise ModuleNotFoundError("No module named 'seats_core.run.analysis'", name="seats_core.run.analysis")

    out = events.analyze(live[0], "mini", compute=missing)
    assert "unavailable" in out["dependency_notes"]


def test_analysis_shape_is_plotted(live):
    L, W = 4, 3
    fake = {
        "num_layers": L,
        "attention": {"share": [[0.2, 0.5, 0.3]] * L, "video_windows": [[0.1] * W] * L, "audio_windows": [[0.1] * W] * L},
        "knockout": {m: {"kl": [1.0, 0.5, 0.05, 0.01, 0.0], "answer_logprob": [-3.0] * (L + 1)} for m in ("video", "audio", "both")},
    }  # fmt: skip
    session = Session("a", view=live[0].view, clip=live[0].clip, records=live[0].records)
    out = events.analyze(session, "mini", compute=lambda *a: fake)
    assert len(out["dependency"].data) == 2 + 3 * 2
    assert "from decoder layer 3 on" in out["dependency_notes"]  # KL <= the 0.05-nat floor from k = 2 on
    assert session.analysis is fake


def test_generated_scene_reports_its_answer(monkeypatch, tmp_path):
    monkeypatch.setattr(events, "WORKSPACE", Workspace(tmp_path / "ws"))
    monkeypatch.setattr(server.SERVER, "max_scenes", 2)
    monkeypatch.setattr(server.SERVER, "scenes", OrderedDict())
    first = [events.new_scene(seed)[0] for seed in (1, 2, 3)]
    assert not Path(first[0]).exists() and all(Path(p).exists() for p in first[1:])  # oldest file deleted
    path, question = events.new_scene(7)
    truth = scenes.make_sample(events.SCENE_SEED_BASE + 7, seconds=6)  # regenerated independently
    assert question == truth.question
    clip = load_clip(path, work.media_for("mini"))
    assert clip.has_audio and clip.duration == pytest.approx(6.0, abs=0.15)
    copy = tmp_path / "uploaded.mp4"  # Gradio hands the handler its own copy of the file
    shutil.copy(path, copy)
    session = _session()
    run(session, str(copy), question, n_new=2)
    assert (
        f"Correct answer (known from the generated scene): ({truth.answer}) {truth.answer_text}."
        in session.view["notes"]
    )
    run(session, str(copy), "What else?", n_new=2)
    assert not any("Correct answer" in n for n in session.view["notes"])
