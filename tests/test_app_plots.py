"""app/plots.py: stage boundaries come from the run's plan (a non-paper plan moves them), every per-layer figure
marks them, heatmaps carry colour scales, figures autosize with a height, FLOPs read in units people use."""

from __future__ import annotations

import copy
import json

import pytest

from app import examples, plots
from app import view as V

NAME = "colour_at_high"


@pytest.fixture(scope="module")
def shipped():
    if not (examples.EXAMPLES_DIR / f"{NAME}.results.json").exists():
        pytest.skip("no shipped examples")
    runs = json.loads((examples.EXAMPLES_DIR / f"{NAME}.results.json").read_text())["runs"]
    analysis = json.loads((examples.EXAMPLES_DIR / f"{NAME}.analysis.json").read_text())
    return runs, analysis


def _moved(runs: dict) -> dict:
    """The runs with SEATS' plan replaced by drops after layers 5, 9 and text only from 13 (not the paper's)."""
    runs = copy.deepcopy(runs)
    runs["method"]["plan"] = [
        {"layer": 0, "kind": "stage1"},
        {"layer": 5, "kind": "stage2"},
        {"layer": 9, "kind": "stage2"},
        {"layer": 12, "kind": "stage3"},
    ]
    return runs


def _vlines(fig, row_axis="x"):
    return sorted(s.x0 for s in fig.layout.shapes if s.x0 == s.x1 and s.xref.startswith(row_axis))


def test_every_per_layer_figure_marks_the_plan_it_is_given(shipped):
    runs, analysis = shipped
    view = V.make_view(_moved(runs), "clip.mp4", "test")
    run = view["runs"]["method"]
    assert _vlines(plots.token_flow(view)) == [0.5, 5.5, 9.5, 12.5]
    strip = plots.stage_strip(view, "method", 7)
    assert sorted(set(_vlines(strip))) == [0.5, 5.5, 7, 9.5, 12.5]  # 7: the cursor
    dep = plots.dependency(analysis, run)
    knock = [s.x0 for s in dep.layout.shapes if s.x0 == s.x1 and s.xref == "x3"]
    assert sorted(knock) == [0, 5, 9, 12]  # knockout k = the 0-based layer whose input loses the tokens
    heat = [s.y0 for s in dep.layout.shapes if s.y0 == s.y1 and s.yref == "y"]
    assert sorted(heat) == [0.5, 5.5, 9.5, 12.5]  # between 1-based decoder layers d and d+1
    labels = {a.text for a in dep.layout.annotations}
    assert {"I", "II", "III: text only"} <= labels


def test_dependency_without_a_run_marks_the_paper_plan_from_the_config(shipped):
    _, analysis = shipped
    dep = plots.dependency(analysis)
    want = [d["layer"] for d in plots.paper_plan(analysis["num_layers"])["plan"]]
    assert sorted(s.x0 for s in dep.layout.shapes if s.x0 == s.x1 and s.xref == "x4") == sorted(want)


def test_heatmaps_have_colour_scales_and_figures_autosize(shipped):
    runs, analysis = shipped
    view = V.make_view(runs, "clip.mp4", "test")
    dep = plots.dependency(analysis, view["runs"]["method"])
    heatmaps = [t for t in dep.data if t.type == "heatmap"]
    assert len(heatmaps) == 2 and all(t.showscale for t in heatmaps)
    assert (
        heatmaps[0].colorbar.y > heatmaps[1].colorbar.y and heatmaps[0].colorbar.x < 1.1
    )  # each by its own row
    figs = [
        plots.token_flow(view),
        plots.stage_strip(view, "method", 1),
        plots.speed(view),
        dep,
        plots.empty("x"),
    ]
    for fig in figs:
        assert fig.layout.autosize and fig.layout.height and fig.layout.width is None
    strip = figs[1]
    assert (
        strip.layout.showlegend is not False
        and strip.layout.xaxis.title.text
        and strip.layout.yaxis.title.text
    )


def test_speed_reads_flops_in_units(shipped):
    runs, _ = shipped
    fig = plots.speed(V.make_view(runs, "clip.mp4", "test"))
    flops = fig.data[0]
    assert fig.layout.yaxis.title.text == "MFLOPs"
    mega = [f"{runs[k]['flops']['prefill'] / 1e6:.0f}" for k in ("full", "method", "baseline")]
    assert list(flops.text) == mega  # e.g. 743, 207, 204 (the shipped examples' records)
    assert list(flops.customdata) == [f"{m} MFLOPs" for m in mega]
    titles = [a.text for a in fig.layout.annotations]
    assert "time by stage (median of 5)" in titles  # the shipped runs: medians of 5 timed runs (issue 23)
    assert all(len(t) <= 32 for t in titles)  # short enough not to collide in their columns
