"""Retention schedule (spec §0, §2, §3, §5): reference keeps, exact layer averages, layouts, refusals."""

import math

import pytest

from seats_core.method import (
    ENCODER_SCALE,
    PRESETS,
    PRESETS_QWEN3,
    fastv_keep_ratio,
    layer_levels,
    parse_retention,
    retention_schedule,
    round_count,
    round_half_up,
)
from seats_core.models.family import Qwen3OmniAdapter, Qwen25OmniAdapter


def default_drop_layers(num_layers, family=Qwen25OmniAdapter):
    """(drops, late, derived) of a family's paper recipe at a depth (Qwen2.5 scales the 7B's fractions)."""
    r = family.paper.for_depth(num_layers)
    return r.drop_layers, r.late_layer, r.derived


LAYOUT_7B = (28, (16, 18, 20), 24)
LAYOUT_30B = (48, (27, 31, 35), 40)
TARGETS = [0.06, 0.1, 0.2, 0.35, 0.45, 0.55, 0.65, 0.7]


@pytest.mark.parametrize("target", TARGETS)
def test_reference_keeps(target):
    # The drops use the 4-decimal ratios themselves (the authors' implementation, SEATS_SPEC §9).
    assert retention_schedule(*LAYOUT_7B, target) == [0.9298, 0.7949, 0.2986]
    assert retention_schedule(*LAYOUT_30B, target) == [0.9255, 0.7813, 0.2390]


@pytest.mark.parametrize("layout", [LAYOUT_7B, LAYOUT_30B, (36, *default_drop_layers(36)[:2])])
@pytest.mark.parametrize("target", TARGETS)
def test_layer_average_equals_target(layout, target):
    keeps = retention_schedule(*layout, target)
    levels = layer_levels(*layout, keeps, start=ENCODER_SCALE * target)
    assert len(levels) == layout[0]
    # exact up to the 4-decimal rounding of the keeps (each off by <= 5e-5, levels are products of <= 3 keeps)
    assert sum(levels) / layout[0] == pytest.approx(target, rel=2e-4)


def test_level_layout_7b():
    keeps = retention_schedule(*LAYOUT_7B, 0.2)
    l1 = keeps[0]
    l2 = l1 * keeps[1]
    l3 = l2 * keeps[2]
    expected = [1.0] * 16 + [l1] * 2 + [l2] * 2 + [l3] * 3 + [0.0] * 5
    assert layer_levels(*LAYOUT_7B, keeps) == pytest.approx(expected, abs=1e-15)
    # relative levels follow 1 - f * cumsum(w), w_i = e^i / sum_k e^k
    w = [math.exp(i) / sum(math.exp(j) for j in range(3)) for i in range(3)]
    f = (1 - l1) / w[0]
    assert l2 == pytest.approx(1 - f * (w[0] + w[1]), abs=1e-3)  # 4-decimal keeps (§9) compound
    assert l3 == pytest.approx(1 - f, abs=1e-3)
    assert 0 <= f <= 1


def test_layer_levels_by_hand():
    # 6 layers, drop after 2 (keep 0.5) and after 3 (keep 0.4), text-only from layer 5
    assert layer_levels(6, [2, 3], 5, [0.5, 0.4], start=0.8) == pytest.approx([0.8, 0.8, 0.4, 0.16, 0.0, 0.0])
    with pytest.raises(ValueError, match="2 keeps for 1 drop"):
        layer_levels(6, [2], 5, [0.5, 0.4])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        layer_levels(6, [2], 5, [1.5])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(target=0.8), "cannot keep more than every token"),
        (dict(target=0.0), "must be > 0"),
        (dict(target=-0.1), "must be > 0"),
        (dict(target=0.2, drop_layers=[18, 16, 20]), "strictly increasing"),
        (dict(target=0.2, drop_layers=[0, 18, 20]), "1-based"),
        (dict(target=0.2, drop_layers=[]), "empty"),
        (dict(target=0.2, late_layer=20), "late_layer"),
        (dict(target=0.2, late_layer=30), "late_layer"),
        (dict(target=0.2, encoder_scale=1.1), r"encoder_scale must lie in \[1.2174, 1.4621\]"),
        (dict(target=0.2, encoder_scale=2.0), "no decay fraction f in"),
    ],
)
def test_schedule_refusals(kwargs, match):
    args = dict(num_layers=28, drop_layers=[16, 18, 20], late_layer=24) | kwargs
    with pytest.raises(ValueError, match=match):
        retention_schedule(**args)


def test_default_drop_layers_known():
    assert default_drop_layers(28) == ((16, 18, 20), 24, False)
    assert default_drop_layers(48, Qwen3OmniAdapter) == ((27, 31, 35), 40, False)


@pytest.mark.parametrize("num_layers", [4, 5, 6, 8, 12, 16, 24, 32, 36, 40, 64, 80, 100])
def test_default_drop_layers_derived(num_layers):
    drops, late, derived = default_drop_layers(num_layers)
    assert derived
    assert len(drops) == 3
    assert 1 <= drops[0] < drops[1] < drops[2] < late <= num_layers
    layer_levels(num_layers, drops, late, [1.0, 1.0, 1.0])  # a valid layout


def test_default_drop_layers_fractions():
    assert default_drop_layers(56) == ((32, 36, 40), 48, True)  # exact multiples of the 7B
    assert default_drop_layers(36) == ((21, 23, 26), 31, True)  # 20.57, 23.14, 25.71, 30.86 rounded
    with pytest.raises(ValueError, match="too shallow"):
        default_drop_layers(3)


def test_fastv_keep_ratio():
    r = fastv_keep_ratio(0.2, 28)
    assert r == pytest.approx((0.2 * 28 - 2) / 26)
    assert (2 + r * 26) / 28 == pytest.approx(0.2)  # layer average
    assert fastv_keep_ratio(2 / 28, 28) == pytest.approx(0.0)
    assert fastv_keep_ratio(0.5, 48, drop_layer=3) == pytest.approx((24 - 3) / 45)
    with pytest.raises(ValueError) as err:
        fastv_keep_ratio(0.06, 28)
    assert (
        str(err.value) == "FastV pruning after layer 2 of 28 cannot average below 2/28 = 0.071 (asked 0.060)"
    )
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        fastv_keep_ratio(1.2, 28)
    with pytest.raises(ValueError, match="drop layer"):
        fastv_keep_ratio(0.5, 28, drop_layer=28)


def test_presets_and_parse():
    assert PRESETS["R10"] == (0.06, 0.35)
    assert PRESETS_QWEN3 == {
        "R35": (0.32, 0.70),
        "R25": (0.22, 0.60),
        "R15": (0.12, 0.50),
        "R10": (0.07, 0.45),
    }
    assert parse_retention("R10") == (0.06, 0.35)
    assert parse_retention("r35") == (0.30, 0.65)
    assert parse_retention(" 0.06 , 0.35 ") == (0.06, 0.35)
    assert parse_retention("R10", presets=PRESETS_QWEN3) == (0.07, 0.45)
    for bad in ["R5", "0.1", "0.1,0.2,0.3", "a,b", ""]:
        with pytest.raises(ValueError, match="R35=.*R10="):
            parse_retention(bad)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        parse_retention("0,0.5")


def test_round_half_up():
    assert [round_half_up(x) for x in (0.5, 1.5, 2.5, 2.49, -0.5)] == [1, 2, 3, 2, 0]


def test_round_count_half_even_is_the_default():
    # R25 audio at Stage I: 0.55 * 1.4 * 50 = 38.5 -> 38 (authors, §9) or 39 (half up)
    assert round_count(0.55 * 1.4 * 50) == 38 and round_count(0.55 * 1.4 * 50, "half_up") == 39
    assert [round_count(x) for x in (0.5, 1.5, 2.5, 2.49, 483.496)] == [0, 2, 2, 2, 483]
    with pytest.raises(ValueError, match="rounding"):
        round_count(1.0, "nearest")
