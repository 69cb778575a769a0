"""Retention schedules: how many non-text tokens each decoder layer sees (spec §0, §2, §3, §5).

R is the *layer-averaged* fraction of non-text tokens kept over all L decoder layers (a layer where they are
all gone counts 0). SEATS spends it in three stages:

    Stage I    before the LLM        keep r_enc = lambda * R                      (spec §1)
    Stage II   after each drop d_i   level_i = 1 - f * cumsum(w)_i  (relative)    (spec §2)
    Stage III  from late_layer on    nothing non-text is left                     (spec §3)

with w_i = e^i / sum_k e^k and f in [0, 1] chosen by bisection so the layer average is exactly R.
Layers are 1-based throughout, as in the paper ("drop after layer 16").
"""

from __future__ import annotations

import math
from itertools import accumulate

ENCODER_SCALE = 1.4  # lambda: Stage I keeps lambda * R entering the LLM (paper / spec §1)
FASTV_DROP_LAYER = 2  # FastV prunes once, after layer K = 2 (spec §5)
BISECTION_STEPS = 100  # halvings of [0, 1] for f; ~55 already reach float64 resolution

# Layer-averaged (R_video, R_audio) presets of the paper (spec §0).
PRESETS = {"R35": (0.30, 0.65), "R25": (0.20, 0.55), "R15": (0.10, 0.45), "R10": (0.06, 0.35)}
PRESETS_QWEN3 = {"R35": (0.32, 0.70), "R25": (0.22, 0.60), "R15": (0.12, 0.50), "R10": (0.07, 0.45)}


KEEP_DECIMALS = 4  # the authors' schedule rounds its keep ratios to 4 decimals and the drops use those (§9)
ROUNDINGS = ("half_even", "half_up")  # token-count rounding: the authors' (Python round) or floor(x + 0.5)


def round_half_up(x: float) -> int:
    """floor(x + 0.5): 2.5 -> 3 (the `rounding="half_up"` alternative; also depth scaling of drop layers)."""
    return math.floor(x + 0.5)


def round_count(x: float, rounding: str = "half_even") -> int:
    """A token count from a real number (SEATS_SPEC §9 "Rounding").

    "half_even" (default, the authors' implementation: Python `round` / `torch.round`): 38.5 -> 38, 39.5 -> 40.
    "half_up": floor(x + 0.5), 38.5 -> 39.
    """
    if rounding == "half_even":
        return round(x)
    if rounding == "half_up":
        return round_half_up(x)
    raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")


def _check_layout(num_layers: int, drop_layers, late_layer: int) -> tuple[int, ...]:
    """Validate 1 <= d_1 < ... < d_K < late_layer <= num_layers + 1 and return the drops as a tuple."""
    drops = tuple(int(d) for d in drop_layers)
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if not drops:
        raise ValueError("drop_layers is empty: Stage II needs at least one drop layer")
    if any(b <= a for a, b in zip(drops, drops[1:])):
        raise ValueError(f"drop_layers must be strictly increasing, got {list(drops)}")
    if drops[0] < 1:
        raise ValueError(f"drop layers are 1-based ('after layer d'), got {drops[0]} in {list(drops)}")
    if not drops[-1] < late_layer <= num_layers + 1:
        raise ValueError(
            f"need last drop layer < late_layer <= num_layers + 1, got drops {list(drops)}, "
            f"late_layer {late_layer}, num_layers {num_layers}"
        )
    return drops


def layer_levels(num_layers: int, drop_layers, late_layer: int, keeps, start: float = 1.0) -> list[float]:
    """Fraction of the non-text tokens alive at each decoder layer (spec §2, §3).

    Layer l (1-based) sees `start` times the product of keeps[i] over drops d_i < l, and 0 from late_layer on.
    Returns a 0-based list of num_layers floats (entry l-1 is layer l). `start` is the level entering layer 1
    (r_enc for the absolute fraction, 1.0 for the level relative to Stage I).
    """
    drops = _check_layout(num_layers, drop_layers, late_layer)
    keeps = [float(k) for k in keeps]
    if len(keeps) != len(drops):
        raise ValueError(f"got {len(keeps)} keeps for {len(drops)} drop layers {list(drops)}")
    if any(not 0.0 <= k <= 1.0 for k in keeps):
        raise ValueError(f"keep ratios must lie in [0, 1], got {keeps}")
    levels, level = [], float(start)
    for layer in range(1, num_layers + 1):
        if layer >= late_layer:
            level = 0.0
        levels.append(level)
        if layer in drops:  # the drop acts on the next layer's input
            level *= keeps[drops.index(layer)]
    return levels


def retention_schedule(
    num_layers: int, drop_layers, late_layer: int, target: float, encoder_scale: float = ENCODER_SCALE
) -> list[float]:
    """Per-drop keep ratios (each relative to the level before it) averaging `target` (spec §2, §9).

    The relative level is 1 for layers 1..d_1 and 1 - f * cumsum(w)_i after drop i, w_i = e^i / sum_k e^k;
    layers from late_layer on count 0. f in [0, 1] is bisected so that
    encoder_scale * target * mean(levels) == target. Since target cancels, the keeps depend only on the layout
    and encoder_scale: 7B (28, [16, 18, 20], 24) -> [0.9298, 0.7949, 0.2986].
    As in the authors' implementation the ratios are returned rounded to KEEP_DECIMALS (4) decimals and those
    are the values the drops use (§9), so the layer average equals `target` to about 1e-4 relative.
    """
    drops = _check_layout(num_layers, drop_layers, late_layer)
    if not target > 0:
        raise ValueError(f"target retention must be > 0, got {target}")
    r_enc = encoder_scale * target
    if r_enc > 1:
        raise ValueError(
            f"encoder_scale * target = {encoder_scale} * {target} = {r_enc:.4f} > 1: Stage I cannot keep more "
            f"than every token; use target <= {1 / encoder_scale:.4f}"
        )
    exp_w = [math.exp(i) for i in range(len(drops))]
    cum_w = list(accumulate(w / sum(exp_w) for w in exp_w))  # cumsum(w)_i, last one is 1
    ends = list(drops[1:]) + [late_layer - 1]  # last layer at each post-drop level
    span = [end - d for d, end in zip(drops, ends)]  # layers at each post-drop level

    def average(f: float) -> float:  # layer-averaged absolute retention for decay fraction f
        return r_enc * (drops[0] + sum(n * (1 - f * c) for n, c in zip(span, cum_w))) / num_layers

    high, low = average(0.0), average(1.0)  # average decreases linearly in f
    if not low <= target <= high:
        scale_lo = num_layers / (late_layer - 1)
        scale_hi = num_layers / (late_layer - 1 - sum(n * c for n, c in zip(span, cum_w)))
        raise ValueError(
            f"no decay fraction f in [0, 1] gives average {target} for layers {num_layers}, drops {list(drops)}, "
            f"late {late_layer}: with r_enc = {r_enc:.4f} the average can only be in [{low:.4f}, {high:.4f}]. "
            f"R cancels out, so this holds for every R; encoder_scale must lie in "
            f"[{scale_lo:.4f}, {scale_hi:.4f}] (got {encoder_scale})"
        )
    f_lo, f_hi = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        f = (f_lo + f_hi) / 2
        f_lo, f_hi = (f, f_hi) if average(f) > target else (f_lo, f)
    f = (f_lo + f_hi) / 2
    levels = [1.0] + [1 - f * c for c in cum_w]
    return [round(cur / prev, KEEP_DECIMALS) if prev > 0 else 0.0 for prev, cur in zip(levels, levels[1:])]


def derive_drop_layers(
    num_layers: int, depth: int, drops: tuple[int, ...], late: int
) -> tuple[tuple[int, ...], int, bool]:
    """(drop_layers, late_layer, derived) for a decoder of num_layers layers, from a published layout (spec §2).

    At the published `depth` the published layers come back with derived=False. Other depths scale its
    fractions d/depth (round half up), then are made strictly increasing with 1 <= d_1 < ... < late <= num_layers;
    derived=True so the config can say so.
    """
    if num_layers == depth:
        return tuple(drops), late, False
    fractions = [d / depth for d in (*drops, late)]
    if num_layers < len(fractions):
        raise ValueError(
            f"a {num_layers}-layer decoder is too shallow for {len(drops)} drops and a text-only stage "
            f"(need >= {len(fractions)} layers)"
        )
    layers = [round_half_up(fr * num_layers) for fr in fractions]
    for i in range(len(layers)):  # strictly increasing, starting at >= 1
        layers[i] = max(layers[i], layers[i - 1] + 1 if i else 1)
    for i in reversed(range(len(layers))):  # and ending at <= num_layers
        layers[i] = min(layers[i], layers[i + 1] - 1 if i + 1 < len(layers) else num_layers)
    return tuple(layers[:-1]), layers[-1], True


def fastv_keep_ratio(target: float, num_layers: int, drop_layer: int = FASTV_DROP_LAYER) -> float:
    """Keep ratio at FastV's single drop so the layer average is `target` (spec §5).

    All tokens live in layers 1..K, a fraction r in layers K+1..L: (K + r (L - K)) / L = R, so
    r = (R L - K) / (L - K).
    """
    if not 0 <= drop_layer < num_layers:
        raise ValueError(
            f"FastV drop layer must be in [0, {num_layers - 1}] for {num_layers} layers, got {drop_layer}"
        )
    if not 0 < target <= 1:
        raise ValueError(f"target retention must be in (0, 1], got {target}")
    ratio = (target * num_layers - drop_layer) / (num_layers - drop_layer)
    if ratio < 0:
        floor_ = drop_layer / num_layers
        raise ValueError(
            f"FastV pruning after layer {drop_layer} of {num_layers} cannot average below "
            f"{drop_layer}/{num_layers} = {floor_:.3f} (asked {target:.3f})"
        )
    return ratio


def parse_retention(text: str, presets: dict | None = None) -> tuple[float, float]:
    """Parse "R10" (a preset name, case-insensitive) or "0.06,0.35" into (R_video, R_audio) (spec §0).

    `presets` defaults to the Qwen2.5-Omni PRESETS; pass PRESETS_QWEN3 for Qwen3-Omni.
    """
    presets = PRESETS if presets is None else presets
    s = str(text).strip()
    if s.upper() in presets:
        return presets[s.upper()]
    parts = s.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2:
        names = ", ".join(f"{k}={v}" for k, v in presets.items())
        raise ValueError(f"cannot parse retention {text!r}: use a preset ({names}) or 'R_video,R_audio'")
    if any(not 0 < v <= 1 for v in values):
        raise ValueError(f"retention values must lie in (0, 1], got {values}")
    return values
