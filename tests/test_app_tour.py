"""The guided tour's steps say the run's own numbers (checked by hand on a shipped example) and adapt to a plan
whose text-only stage starts before fusion completes."""

from __future__ import annotations

import copy
import json

import pytest

from app import examples, tour
from app import view as V
from seats_core.run.analysis import KL_FLOOR, verdict

NAME = "colour_at_high"


@pytest.fixture(scope="module")
def shipped():
    if not (examples.EXAMPLES_DIR / f"{NAME}.results.json").exists():
        pytest.skip("no shipped examples")
    runs = json.loads((examples.EXAMPLES_DIR / f"{NAME}.results.json").read_text())["runs"]
    analysis = json.loads((examples.EXAMPLES_DIR / f"{NAME}.analysis.json").read_text())
    return runs, analysis


def test_stage1_step_counts_what_reaches_layer_1(shipped):
    runs, _ = shipped
    seats = runs["method"]
    cols = seats["tokens"]  # RunRecord: one list per column
    pairs = list(zip(cols["modality"], cols["survives_to"]))
    kept = {m: sum(s >= 1 for mod, s in pairs if mod == m) for m in ("video", "audio")}
    total = {m: cols["modality"].count(m) for m in ("video", "audio")}
    md = tour.stage1_kept(seats)
    assert (
        f"{kept['video']} of {total['video']} video" in md
        and f"{kept['audio']} of {total['audio']} audio" in md
    )
    assert kept["video"] == seats["layers"][0]["video"]  # the tokens the first decoder layer processes
    assert "| 0 | 0-2 s |" in md  # one row per window
    assert "nothing is selected" in tour.stage1_kept(runs["full"])


def test_fusion_step_reads_the_knockout_curve(shipped):
    runs, analysis = shipped
    kl = analysis["knockout"]["both"]["kl"]
    limit = KL_FLOOR  # by hand: the first k after which every KL stays under the library's named floor
    k = min(k for k in range(len(kl)) if all(x <= limit for x in kl[k:]))
    assert verdict(analysis).complete_from == k  # the one verdict the tour prints
    md = tour.where_fusion_completes(runs["method"], analysis)
    assert verdict(analysis).text in md
    text_from = next(d["layer"] for d in runs["method"]["plan"] if d["kind"] == "stage3") + 1
    assert f"decoder layer **{k + 1}** on" in md and f"decoder layer **{text_from}**" in md
    assert f"starts {text_from - k - 1} layers after fusion completes" in md
    early = copy.deepcopy(runs["method"])
    early["plan"][-1]["layer"] = k - 3  # text only from layer k - 2: before fusion completes
    assert "*before* fusion completes" in tour.where_fusion_completes(early, analysis)
    assert "Run dependency analysis" in tour.where_fusion_completes(runs["method"], None)


def test_what_that_buys_and_the_pages(shipped):
    runs, analysis = shipped
    md = tour.what_that_buys(runs["method"], runs["full"])
    assert "3.6x fewer LLM prefill FLOPs" in md  # 742543488 / 206964864 = 3.59
    assert "the same as the full model" in md and f"**{runs['method']['answer'].strip()}**" in md
    steps = tour.steps(runs, analysis)
    assert [t for t, _ in steps] == list(tour.TITLES)
    assert tour.steps_for_view(V.make_view(runs, "clip.mp4", "test"), analysis) == steps
    first, last = tour.page(steps, 0), tour.page(steps, 99)
    assert (
        first.startswith("#### Tour, step 1 of 3") and tour.NEXT_LABEL in first and tour.SKIP_LABEL in first
    )
    assert last.startswith("#### Tour, step 3 of 3") and tour.NEXT_LABEL not in last.split("\n")[-1]
