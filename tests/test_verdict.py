"""One fusion verdict (seats_core.run.analysis.fusion_verdict): the rule on hand-made curves, live analyses of shipped
examples on the miniature (one that never needed its clip, one whose knockout crosses the floor), and every page
that speaks of fusion printing that same verdict."""

from __future__ import annotations

import json

import pytest

from app import examples, present, tour
from seats_core.run import analysis as A
from seats_core.run.pipeline import Engine

NEVER, CROSSES = "count_tones", "colour_at_high"


# ---- the rule ------------------------------------------------------------------------------------------------
def test_a_curve_under_the_floor_claims_no_layer():
    v = A.fusion_verdict([0.0013, 0.0009, 0.0002, 0.0])  # the test pattern peaked at 0.0013 nats
    assert v.complete_from is None and v.max_kl == pytest.approx(0.0013) and v.floor == A.KL_FLOOR == 0.05
    assert (
        v.text.startswith("This answer never depended on the clip") and "No fusion layer is claimed" in v.text
    )
    assert A.fusion_verdict([0.05, 0.05, 0.0]).complete_from is None  # at the floor is not above it


def test_a_crossing_curve_gives_the_layer_after_its_last_rise():
    kl = [2.0, 1.0, 0.3, 0.04, 0.2, 0.01, 0.0, 0.0]  # dips under the floor at k = 3, rises again at 4
    v = A.fusion_verdict(kl)
    assert v.complete_from == 5 and v.max_kl == 2.0
    assert "from decoder layer 6 on" in v.text and "from layer 5 on still moves it by 0.2" in v.text
    assert A.fusion_verdict(kl, floor=0.5).complete_from == 2  # a named floor, not a share of the peak
    assert A.fusion_verdict([1.0, 0.0]).complete_from == 1  # needed up to the first layer only


def test_a_clip_needed_to_the_last_layer():
    v = A.fusion_verdict([1.0, 0.8, 0.06, 0.0])
    assert v.complete_from == 3 and "up to the last decoder layer" in v.text and "before layer 3" in v.text


def test_no_curve_no_verdict():
    assert A.verdict(None) is None and A.verdict({"num_layers": 28, "knockout": {}}) is None
    assert "Run dependency analysis" in tour.where_fusion_completes({"plan": []}, {"knockout": {}})


@pytest.mark.parametrize("kl,floor", [([], 0.05), ([0.1, float("nan"), 0.0], 0.05), ([0.1, 0.0], 0.0)])
def test_bad_curves_raise(kl, floor):
    with pytest.raises(ValueError):
        A.fusion_verdict(kl, floor)


# ---- live on the miniature ----------------------------------------------------------------------------------------
def _entry(name: str) -> dict:
    entry = next((e for e in examples.index()["examples"] if e["name"] == name), None)
    if entry is None or not (examples.EXAMPLES_DIR / entry["clip"]).exists():
        pytest.skip(f"shipped example {name} missing")
    return entry


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("mini", device="cpu")


@pytest.fixture(scope="module", params=[NEVER, CROSSES])
def live(request, engine) -> tuple[dict, dict]:
    """(the analysis run now, the shipped one) of an example clip and its question."""
    entry = _entry(request.param)
    result = A.analyze(engine, engine.prepare(examples.clip_path(entry), entry["question"]))
    return result, examples.load_analysis(entry)


def test_live_analysis_carries_fusion_and_the_verdict(live):
    result, shipped = live
    d = json.loads(json.dumps(result))  # what analyze --json writes
    assert d["verdict"] == A.verdict(d).to_dict()  # stored = recomputed from the stored curve
    ship = A.verdict(shipped)  # the shipped analysis of the same clip, made earlier by the same code
    assert d["verdict"]["complete_from"] == ship.complete_from
    assert d["verdict"]["max_kl"] == pytest.approx(ship.max_kl, rel=1e-4, abs=1e-4)  # KL noise ~1e-6 nats
    assert set(d["verdict"]) == {"complete_from", "max_kl", "floor", "text"}
    kl = d["knockout"]["both"]["kl"]
    if d["verdict"]["complete_from"] is None:  # count_tones: the mini answers it the same without the clip
        assert max(kl) <= A.KL_FLOOR
    else:  # colour_at_high: 0.66 nats at k = 17, <= 0.001 from k = 18 on (by hand from the curve)
        k = d["verdict"]["complete_from"]
        assert k == 18 and kl[k - 1] > A.KL_FLOOR and max(kl[k:]) <= A.KL_FLOOR
    fusion = d["fusion"]
    L = d["num_layers"]
    assert fusion["groups"] == ["text", "video", "audio"] and len(fusion["matrix"]) == L
    assert (
        fusion["answer_token"]["token_id"] == d["answer_token_id"]
    )  # the fusion run answers as the analysis
    assert d["timing_ms"]["fusion"] > 0 and A.summary(result).endswith(
        d["verdict"]["text"]
    )  # the CLI prints it


# ---- every page prints the one verdict -----------------------------------------------------------------------
def _shipped() -> list[tuple[dict, dict]]:
    out = []
    for entry in examples.index()["examples"]:
        analysis = examples.load_analysis(entry)
        if analysis:
            out.append((examples.load_runs(entry), analysis))
    if not out:
        pytest.skip("no shipped examples")
    return out


def test_tour_and_dependency_tab_print_the_same_verdict():
    kinds = set()
    for runs, analysis in _shipped():
        v = A.verdict(analysis)
        kinds.add(v.complete_from is None)
        step = tour.where_fusion_completes(runs["method"], analysis)
        tab = present.dependency_markdown(analysis)
        assert v.text in step and v.text in tab
        if v.complete_from is None:  # no layer is claimed anywhere
            assert "fusion completes" not in step and "complete from" not in tab
    assert kinds == {True, False}  # the shipped examples hold both kinds of verdict
    assert not hasattr(tour, "fusion_layer") and not hasattr(present, "fusion_layer")
