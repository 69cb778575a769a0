"""What the page tells a teacher, as plain functions on the shipped examples (no model call): right or wrong on
every card with the option parsed from the raw text, single runs marked, FLOPs in both conventions, the
miniature's limits said, a clicked patch resolved from the server's record, the tour's steps per session, and one
model per shared deployment."""

from __future__ import annotations

import html
import json

import pytest

from app import checks, deploy, events, examples, present, render, work
from app import view as V
from app.server import SERVER
from app.state import SessionStore

pytestmark = pytest.mark.skipif(not examples.gallery(), reason="no examples generated")


def _session():
    return SessionStore().get("t-" + str(id(object())))


@pytest.fixture(scope="module")
def loaded():
    clip, question = examples.gallery()[0]
    session = _session()
    out = events.load_example(session, clip, question)
    return session, out, examples.find(clip, question)


def test_parsed_option_reads_what_the_evaluator_reads():
    q = "Which colour? (A) red (B) green (C) blue (D) yellow"
    assert present.parsed_option("AD", q) == "A"  # the raw text the issue saw, read as A
    assert present.parsed_option("The answer is (C).", q) == "C"
    assert present.parsed_option("", q) is None
    assert present.four_options(q) and not present.four_options("What happens?")


def test_every_card_marks_right_or_wrong_against_the_known_option(loaded):
    session, out, entry = loaded
    page = out["answers"]
    cards = page.split("<div class='seats-card'>")[1:]
    assert len(cards) == len(V.explorable(session.view))
    for key, card in zip(V.explorable(session.view), cards):
        letter = present.parsed_option(session.records[key]["answer"], entry["question"])
        assert f"parsed <b>{letter}</b>" in card
        assert ("✓ correct" in card) == (letter == entry["answer"])
        assert ("✗ wrong (correct: " + entry["answer"]) in card or "✓ correct" in card
        assert "median of 5, warm-ups discarded" in card  # the shipped records: medians of 5 (issue 23)
        assert "as generate() runs it" in card and "as the paper counts" in card
    assert "fewer LLM prefill FLOPs" in page  # flops_ratio_note on the pruned cards


def test_free_form_question_on_the_miniature_is_said_to_mean_nothing(loaded):
    view = dict(loaded[0].view, question="What is happening?")
    said = html.escape(present.MINI_ONLY_MCQ)
    assert present.answers_html(view).count(said) == len(view["runs"])
    assert said not in loaded[1]["answers"]


def test_disclaimer_shows_on_the_cards(loaded):
    view = json.loads(json.dumps(loaded[0].view))
    for run in view["runs"].values():
        run["extra"]["disclaimer"] = "random weights: the answers mean nothing"
    assert present.answers_html(view).count("random weights: the answers mean nothing") == len(view["runs"])


def test_speed_notes_label_both_conventions_and_single_runs(loaded):
    md = loaded[1]["speed_notes"]
    assert (
        "Times are medians (median of 5, warm-ups discarded)" in md
    )  # the examples: 5 timed runs (issue 23)
    one = json.loads(json.dumps(loaded[0].view))
    for run in one["runs"].values():
        run["timing_ms"]["repeats"] = 1
    assert "**single runs**" in present.speed_markdown(one)
    for name in loaded[0].view["runs"]["full"]["flops"]["conventions"]:
        assert f"`{name}`" in md


def test_divprune_is_not_said_to_prune_nothing(loaded):
    base = loaded[0].view["runs"]["baseline"]
    assert base["method"].startswith("divprune")
    _, what = V.scores_at(base, 1)
    assert what == "no relevance scores: DivPrune selects before the LLM"
    assert V.scores_at(loaded[0].view["runs"]["full"], 1)[1] == "no scores (nothing pruned)"


def test_the_caption_names_the_layer_drawn(loaded):
    session = loaded[0]
    for layer in (0, 7, session.view["num_layers"]):
        out = events.explore(session, "method", layer, "waveform")
        assert f"Showing <b>layer {layer}</b> of {session.view['num_layers']}" in out["caption"]
        assert out["strip_legend"].startswith("dotted lines:")


def test_a_clicked_patch_is_resolved_from_the_record(loaded):
    session = loaded[0]
    g = session.view["geometry"]
    grids, gh, gw = g["grid"]
    ncols, _, bp = render.grid_layout(grids, gw, g["block_px"])
    t, row, col = 1, 2, 3  # by hand: the patch's centre in frame_grid's layout
    x = render.GAP_PX + (t % ncols) * (gw * bp + render.GAP_PX) + col * bp + bp // 2
    y = render.GAP_PX + (t // ncols) * (gh * bp + render.LABEL_PX + render.GAP_PX) + render.LABEL_PX
    y += row * bp + bp // 2
    md = events.inspect(session, "method", 1, "frames", [x, y])
    cols = session.records["method"]["tokens"]
    i = next(
        j
        for j, (m, tt, r, c) in enumerate(zip(cols["modality"], cols["t"], cols["row"], cols["col"]))
        if (m, tt, r, c) == ("video", t, row, col)
    )
    assert f"frame grid {t}, row {row}, column {col}" in md and f"window {cols['window'][i]}" in md
    s = cols["survives_to"][i]
    assert ("dropped before the LLM" in md) == (s == 0)
    assert events.inspect(session, "method", 1, "frames", [0, 0]).startswith("No token there")
    audio = events.inspect(session, "method", 1, "audio", [render.AUDIO_WIDTH // 2, 5])
    assert audio.startswith("**audio token**")
    with pytest.raises(events.gr.Error):
        events.inspect(session, "method", 1, "frames", "12,3")  # only the pixel pair the page sends


def test_the_tour_opens_once_per_session_and_can_be_skipped(loaded):
    session = _session()
    clip, question = examples.gallery()[0]
    out = events.load_example(session, clip, question)
    assert out["tour_text"].startswith("#### Tour, step 1 of 3")
    assert events.tour_next(session)["tour_text"].startswith("#### Tour, step 2 of 3")
    assert events.tour_skip(session)["tour_text"] == ""
    again = events.load_example(session, clip, question)
    assert again["tour_text"] == ""  # skipped: a later result does not reopen it


def test_a_shared_deployment_serves_one_model(monkeypatch):
    shared = deploy.Deployment("mini", deploy.SPACES_MODEL, "banner", True)
    monkeypatch.setattr(SERVER, "deployment", shared)
    monkeypatch.setattr(SERVER, "model", "mini")
    assert SERVER.model_choices() == ["mini"]
    assert checks.check_model("mini") == "mini"
    with pytest.raises(checks.gr.Error, match="serves mini only"):
        checks.check_model(deploy.SPACES_MODEL)
    monkeypatch.setattr(SERVER, "deployment", None)
    assert deploy.SPACES_MODEL in SERVER.model_choices()  # locally every known model


def test_web_errors_name_the_page_not_cli_flags():
    said = checks.for_the_page("not in the local cache; run with --model mini (the offline miniature)")
    assert "--" not in said and "pick mini in the Model menu" in said


def test_the_first_run_says_the_model_is_loading(monkeypatch):
    seen = []

    def no_model(name=None):
        raise checks.refuse("stop here")

    monkeypatch.setattr(SERVER, "engines", {})
    monkeypatch.setattr(work, "get_engine", no_model)
    with pytest.raises(work.gr.Error):
        work.run_models("mini", None, "q", {}, 1, progress=lambda f, desc=None: seen.append(desc))
    assert seen == ["loading the model (first run only)"]
