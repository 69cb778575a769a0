"""The methods registry is the one list: CLI choices, config validation and bench rows read it."""

from __future__ import annotations

import pytest

from seats_core.cli import build_parser
from seats_core.method import PRESETS, PRESETS_QWEN3
from seats_core.models.family import Qwen3OmniAdapter, Qwen25OmniAdapter
from seats_core.prune.config import METHODS, SeatsConfig
from seats_core.prune.methods import (
    METHOD_NAMES,
    STAGES,
    bench_methods,
    build_plan,
    stage_colours,
    stage_names,
)
from seats_core.speed import bench


def test_every_consumer_reads_the_registry():
    assert METHODS == METHOD_NAMES
    run = next(
        a for a in build_parser()._subparsers._group_actions[0].choices["run"]._actions if a.dest == "method"
    )
    assert tuple(run.choices) == METHOD_NAMES
    assert ("seats", *bench.BASELINES) == bench_methods()
    assert set(stage_names()) == set(stage_colours()) == set(STAGES)


@pytest.mark.parametrize(
    "depth,presets,family", [(28, PRESETS, Qwen25OmniAdapter), (48, PRESETS_QWEN3, Qwen3OmniAdapter)]
)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_plans_use_known_stage_kinds_and_reach_the_layer_average(method, depth, presets, family):
    retention = "0.3,1.0" if method == "fastv" else "R25"
    recipe = family.paper.for_depth(depth)
    drops, late = recipe.drop_layers, recipe.late_layer
    cfg = SeatsConfig.make(method, retention).resolve(recipe)
    plan = build_plan(cfg, depth)
    assert all(d.kind in STAGES and 0 <= d.layer < depth for d in plan)
    if method == "full":
        assert plan == []
    if method == "seats":
        assert [d.layer for d in plan] == [0, *drops, late - 1]
        assert cfg.retention == presets["R25"]
