"""Stage II top-down budget: which non-text tokens survive a drop (spec §2, decisions of §9).

    0. windows     from the current sequence: window i = the i-th run of video tokens + the i-th run of audio
                   tokens (`run_windows`); runs left over on the longer side are windows of one modality
    1. totals      K_v = max(1, round(keep_v * n_v)), K_a likewise, B = K_v + K_a
    2. windows     w_v = softmax_t(mean video score of window t / T) over all windows, a window without video
                   entering with mean 0; w_a likewise. B_t = min(max(round((w_v[t] + w_a[t]) / 2 * B), 1), size_t),
                   then fixed one token at a time towards sum_t B_t = B
    3. modalities  frac = w_v[t] K_v / (w_v[t] K_v + w_a[t] K_a + 1e-12), b_v = min(round(B_t frac), n_v),
                   b_a = min(B_t - b_v, n_a), leftovers to video; then >= 1 per modality present in the window
    4. tokens      the top-scoring tokens of each (window, modality), ties to the lower index

With one window, or a modality absent from the whole sequence, it falls back to a global top-K per modality.
Token counts round half to even (the authors' Python `round`) unless `rounding="half_up"`.
On an accelerator the arithmetic is tensors (no host round trip but the window count); on a CPU the W
per-window numbers are Python numbers (`window_budget`).
"""

from __future__ import annotations

import math

import torch

from .schedule import round_count

WINDOW_TEMPERATURE = 0.1  # T of the window softmax (spec §2)
SHARE_EPS = 1e-12  # the authors' guard in the video share of a window's budget (§9)


def run_windows(is_video: torch.Tensor, is_audio: torch.Tensor) -> torch.Tensor:
    """Stage-II window of every token of the current sequence, read from its runs (spec §9 "Stage II windows").

    is_video, is_audio: (S,) bool over the current (already pruned) sequence, text included. A run is a maximal
    stretch of adjacent tokens of one modality (any other token ends it). Window i holds the i-th video run and
    the i-th audio run. Returns (S,) long window ids, -1 for tokens of neither modality.
    """
    out = torch.full(is_video.shape, -1, dtype=torch.long, device=is_video.device)  # (S,)
    for mask in (is_video, is_audio):
        starts = mask.clone()  # (S,) first token of each run
        starts[1:] &= ~mask[:-1]
        run = torch.cumsum(starts.long(), 0) - 1  # (S,) run index of the modality so far
        out[mask] = run[mask]
    return out


# ---- host arithmetic: Python numbers for the W windows (CPU) ---------------------------------------------


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _modality_total(keep: float, count: int, rounding: str) -> int:
    """K = max(1, round(keep * count)) if the modality is present, else 0."""
    return max(1, min(count, round_count(keep * count, rounding))) if count > 0 else 0


def _host_window_budgets(weight: list[float], size: list[int], total: int, rounding: str) -> list[int]:
    """B_t = min(max(round(weight_t * total), 1), size_t), then fixed towards sum_t B_t = total (§9).

    Too many: take 1 from the first window holding the largest budget among those > 1 (stop when none).
    Too few: give 1 to the first window holding the smallest budget among those with room (stop when none).
    """
    budget = [min(max(round_count(w * total, rounding), 1), n) for w, n in zip(weight, size)]
    ids = range(len(size))
    while sum(budget) > total:
        over = [t for t in ids if budget[t] > 1]
        if not over:
            break
        budget[min(over, key=lambda t: (-budget[t], t))] -= 1
    while sum(budget) < total:
        room = [t for t in ids if budget[t] < size[t]]
        if not room:
            break
        budget[min(room, key=lambda t: (budget[t], t))] += 1
    return budget


def _host_split_window(
    budget: int,
    n_video: int,
    n_audio: int,
    w_video: float,
    w_audio: float,
    k_video: int,
    k_audio: int,
    rounding: str,
) -> tuple[int, int]:
    """Split one window's budget B_t into (video, audio) counts (§9 "Inside a window").

    A window with B_t = 1 holding both modalities keeps 2 (one of each): the total may exceed B by that much.
    """
    frac = w_video * k_video / (w_video * k_video + w_audio * k_audio + SHARE_EPS)
    b_v = min(round_count(budget * frac, rounding), n_video)
    b_a = min(budget - b_v, n_audio)
    b_v += min(budget - b_v - b_a, n_video - b_v)  # what is left goes to video
    if n_video > 0 and b_v < 1:
        b_v = 1
        if b_a > 1:
            b_a = max(1, min(n_audio, budget - 1))
    if n_audio > 0 and b_a < 1:
        b_a = 1
        if b_v > 1:
            b_v = max(1, min(n_video, budget - 1))
    return b_v, b_a


def _host_budget(
    scores: torch.Tensor,
    is_video: torch.Tensor,
    window: torch.Tensor,
    W: int,
    keep_video: float,
    keep_audio: float,
    temperature: float,
    rounding: str,
) -> tuple[torch.Tensor, dict]:
    """window_budget with the per-window arithmetic on Python numbers (on a CPU: no device to round-trip to,
    and W numbers cost less in Python than in tensor ops). Returns (keep, {"info": the plain info})."""
    window = window.long()
    # Per-window token counts and score sums of each modality (Python lists of length W).
    dtype = torch.promote_types(scores.dtype, torch.float32)
    stats = {}
    for name, mask in (("video", is_video), ("audio", ~is_video)):
        count = torch.bincount(window[mask], minlength=W)  # (W,)
        total = torch.zeros(W, dtype=dtype, device=scores.device)  # (W,)
        total.index_add_(0, window[mask], scores[mask].to(dtype))
        stats[name] = (count.tolist(), total.tolist())
    (n_v_t, sum_v_t), (n_a_t, sum_a_t) = stats["video"], stats["audio"]
    size = [v + a for v, a in zip(n_v_t, n_a_t)]
    ids = [t for t in range(W) if size[t] > 0]  # windows holding tokens
    n_v, n_a = sum(n_v_t), sum(n_a_t)
    k_v, k_a = _modality_total(keep_video, n_v, rounding), _modality_total(keep_audio, n_a, rounding)

    # Window weights over the windows holding tokens; a window lacking a modality enters with mean 0 (§9).
    w_v, w_a = [0.0] * W, [0.0] * W
    if ids:
        for w, sums, counts in ((w_v, sum_v_t, n_v_t), (w_a, sum_a_t, n_a_t)):
            for t, p in zip(ids, _softmax([sums[t] / max(counts[t], 1) / temperature for t in ids])):
                w[t] = p
    weight = [(w_v[t] + w_a[t]) / 2 for t in ids]
    entropy = -sum(p * math.log(p) for p in weight if p > 0)
    weight_entropy = entropy / math.log(len(ids)) if len(ids) > 1 else 1.0

    fallback = len(ids) <= 1 or n_v == 0 or n_a == 0
    if fallback:  # global top-K per modality: groups are the two modalities
        group = is_video.long()  # (N,) 0 audio, 1 video
        budget = torch.tensor([k_a, k_v], dtype=torch.long, device=scores.device)  # (2,)
    else:
        window_total = _host_window_budgets(weight, [size[t] for t in ids], k_v + k_a, rounding)
        split = [(0, 0)] * W
        for t, b in zip(ids, window_total):
            split[t] = _host_split_window(b, n_v_t[t], n_a_t[t], w_v[t], w_a[t], k_v, k_a, rounding)
        group = 2 * window + is_video.long()  # (N,) window t: audio 2t, video 2t + 1
        budget = torch.tensor(
            [b for b_v, b_a in split for b in (b_a, b_v)], dtype=torch.long, device=scores.device
        )  # (2W,)
    keep = _top_per_group(scores, group, budget)  # (N,)

    kept_v = torch.bincount(window[keep & is_video], minlength=W).tolist()
    kept_a = torch.bincount(window[keep & ~is_video], minlength=W).tolist()
    info = {
        "window_budget": [v + a for v, a in zip(kept_v, kept_a)],
        "window_video_budget": kept_v,
        "window_audio_budget": kept_a,
        "video_weight": w_v,
        "audio_weight": w_a,
        "weight_entropy": weight_entropy,
        "fallback": fallback,
        "video_budget": k_v,
        "audio_budget": k_a,
    }
    return keep, {"info": info}


# ---- device arithmetic: tensors, no host round trip (accelerators) --------------------------------------


def _round(x: torch.Tensor, rounding: str) -> torch.Tensor:
    """round_count on a float64 tensor, staying float64: half to even (torch.round) or half up."""
    if rounding == "half_even":
        return torch.round(x)
    if rounding == "half_up":
        return torch.floor(x + 0.5)
    round_count(0.0, rounding)  # raises the error naming the choices
    raise AssertionError


def _first(mask: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """The first `count` True entries of a (W,) bool mask, in index order."""
    return mask & (torch.cumsum(mask, 0) <= count)


def _window_budgets(
    weight: torch.Tensor, size: torch.Tensor, total: torch.Tensor, rounding: str, levels: int
) -> torch.Tensor:
    """B_t = min(max(round(weight_t * total), 1), size_t), then fixed towards sum_t B_t = total (§9).

    weight (W,) float64; size (W,) and total () are counts held as float64; levels > max(size) (a host int,
    e.g. the number of tokens: a shape). Returns (W,) float64 counts.
    §9 fixes one token at a time. Too many: take 1 from the first window holding the largest budget among
    those > 1 (stop when none). Too few: give 1 to the first window holding the smallest budget among those
    with room (stop when none). One token at a time from the top (or bottom) is a water level: every budget
    above level L is cut to L (below L raised to L, up to its size), with L the last level that does not pass
    the total, and the remaining tokens come off (go to) the first windows standing at that level. All levels
    are checked at once, (levels, W): no host round trip.
    """
    b = torch.minimum(_round(weight * total, rounding).clamp_min(1), size)  # (W,); windows without tokens: 0
    have = b.sum()
    lv = torch.arange(levels, dtype=b.dtype, device=b.device)  # (L,)
    # Too many: lowest level L >= 1 with sum_t min(b_t, L) >= total; then 1 off the first r windows at L > 1.
    cut = torch.minimum(b, lv[:, None]).sum(1)  # (L,) non-decreasing
    level = (torch.searchsorted(cut[1:], total.view(1)) + 1).clamp_max(levels - 1).to(b.dtype)  # (1,)
    down = torch.minimum(b, level)
    down = down - _first((down == level) & (level > 1), down.sum() - total).to(b.dtype)
    # Too few: highest level L with sum_t min(size_t, max(b_t, L)) <= total; then 1 onto the first r at L.
    fill = torch.minimum(size, torch.maximum(b, lv[:, None])).sum(1)  # (L,) non-decreasing
    level = (torch.searchsorted(fill, total.view(1), right=True) - 1).clamp_min(0).to(b.dtype)  # (1,)
    up = torch.minimum(size, torch.maximum(b, level))
    up = up + _first((up == level) & (size > level), total - up.sum()).to(b.dtype)
    return torch.where(have > total, down, torch.where(have < total, up, b))


def _split_window(b_t, n_v, n_a, w_v, w_a, k_v, k_a, rounding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Split every window's budget B_t into (video, audio) counts (§9 "Inside a window"); (W,) float64 each.

    A window with B_t = 1 holding both modalities keeps 2 (one of each): the total may exceed B by that much.
    """
    frac = w_v * k_v / (w_v * k_v + w_a * k_a + SHARE_EPS)  # (W,)
    b_v = torch.minimum(_round(b_t * frac, rounding), n_v)
    b_a = torch.minimum(b_t - b_v, n_a)
    b_v = b_v + torch.minimum(b_t - b_v - b_a, n_v - b_v)  # what is left goes to video
    fix = (n_v > 0) & (b_v < 1)
    b_v = b_v.masked_fill(fix, 1)
    b_a = torch.where(fix & (b_a > 1), torch.minimum(n_a, b_t - 1).clamp_min(1), b_a)
    fix = (n_a > 0) & (b_a < 1)
    b_a = b_a.masked_fill(fix, 1)
    b_v = torch.where(fix & (b_v > 1), torch.minimum(n_v, b_t - 1).clamp_min(1), b_v)
    return b_v, b_a


def _top_per_group(scores: torch.Tensor, group: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """Keep the budget[g] highest-scoring tokens of every group g (ties lower index).

    scores: (N,); group: (N,) long ids in [0, G); budget: (G,) counts. Returns a (N,) bool mask.
    """
    by_score = torch.sort(scores, descending=True, stable=True).indices  # (N,) ties: lower index first
    order = by_score[torch.sort(group[by_score], stable=True).indices]  # (N,) grouped, best first in group
    counts = torch.zeros(len(budget), dtype=torch.long, device=scores.device)
    counts.index_add_(0, group, torch.ones_like(group))  # (G,)
    group_start = torch.cumsum(counts, 0) - counts  # (G,)
    rank = torch.arange(len(order), device=scores.device) - group_start[group[order]]  # (N,) rank in group
    keep = torch.zeros_like(group, dtype=torch.bool)  # (N,)
    keep[order] = rank < budget[group[order]]
    return keep


def window_budget(
    scores: torch.Tensor,
    is_video: torch.Tensor,
    window: torch.Tensor,
    num_windows: int,
    keep_video: float,
    keep_audio: float,
    temperature: float = WINDOW_TEMPERATURE,
    rounding: str = "half_even",
) -> tuple[torch.Tensor, dict]:
    """Stage II keep mask (N,) bool and what the budget arithmetic found, without host round trips.

    The arguments are those of allocate_budget_detailed (already checked) plus num_windows > max(window), a
    host int. Returns (keep, parts); `budget_info(parts)` gives allocate_budget_detailed's plain-Python info
    (read it after any timed region: on an accelerator that is the host read). On an accelerator the per-window
    arithmetic is tensors (`_device_budget`: parts are (2, W) tensors weight, kept, (2,) k, 0-d fallback); on a
    CPU it is Python numbers (`_host_budget`, the same rules: tensor ops on W ~ 5-15 numbers cost ~10 us each).
    Both are tested against the scalar transcription of §9.
    """
    if scores.device.type == "cpu":
        return _host_budget(
            scores, is_video, window, num_windows, keep_video, keep_audio, temperature, rounding
        )
    return _device_budget(
        scores, is_video, window, num_windows, keep_video, keep_audio, temperature, rounding
    )


def _device_budget(
    scores: torch.Tensor,
    is_video: torch.Tensor,
    window: torch.Tensor,
    num_windows: int,
    keep_video: float,
    keep_audio: float,
    temperature: float,
    rounding: str,
) -> tuple[torch.Tensor, dict]:
    """window_budget in tensors: counts as float64 tensors (exact), §9's arithmetic in double precision."""
    W, dev, f64 = num_windows, scores.device, torch.float64
    cell = window.long() + W * is_video.long()  # (N,) (modality, window): audio t, video W + t
    count = torch.zeros(2 * W, dtype=f64, device=dev).index_add_(0, cell, torch.ones_like(scores, dtype=f64))
    dtype = torch.promote_types(scores.dtype, torch.float32)  # the sums in float32 or wider, then exact
    sums = torch.zeros(2 * W, dtype=dtype, device=dev).index_add_(0, cell, scores.to(dtype)).to(f64)
    count, sums = count.view(2, W), sums.view(2, W)  # row 0 audio, row 1 video
    size = count.sum(0)  # (W,)
    present = size > 0  # windows holding tokens
    total = count.sum(1)  # (2,) n_a, n_v
    ratio = torch.tensor([keep_audio, keep_video], dtype=f64, device=dev)
    k = torch.minimum(_round(ratio * total, rounding).clamp_min(1), total)  # (2,) K_a, K_v (0 if absent)

    # Window weights over the windows holding tokens; a window lacking a modality enters with mean 0 (§9).
    logit = (sums / count.clamp_min(1) / temperature).masked_fill(~present, float("-inf"))  # (2, W)
    e = torch.exp(logit - logit.amax(1, keepdim=True))
    weight = e / torch.cumsum(e, 1)[:, -1:]  # (2, W) left-to-right sums, as the scalar reference
    fallback = (present.sum() <= 1) | (total == 0).any()
    b_t = _window_budgets(weight.mean(0), size, k.sum(), rounding, len(scores) + 1)
    b_v, b_a = _split_window(b_t, count[1], count[0], weight[1], weight[0], k[1], k[0], rounding)
    # Fallback: a global top-K per modality (cells 0 audio, W video: both window 0); else per cell.
    group = torch.where(fallback, W * is_video.long(), cell)  # (N,)
    split = torch.cat([b_a, b_v])  # (2W,)
    fall = torch.zeros_like(split)
    fall[0], fall[W] = k[0], k[1]
    keep = _top_per_group(scores, group, torch.where(fallback, fall, split))  # (N,)
    kept = torch.zeros(2 * W, dtype=torch.long, device=dev).index_add_(0, cell, keep.long()).view(2, W)
    return keep, dict(present=present, weight=weight, kept=kept, k=k, fallback=fallback)


def budget_info(parts: dict) -> dict:
    """The plain-Python info of allocate_budget_detailed from window_budget's parts (reads the host)."""
    if "info" in parts:
        return parts["info"]
    present = parts["present"].tolist()
    (w_a, w_v), (kept_a, kept_v) = parts["weight"].tolist(), parts["kept"].tolist()
    w_v = [w if p else 0.0 for w, p in zip(w_v, present)]
    w_a = [w if p else 0.0 for w, p in zip(w_a, present)]
    weight = [(x + y) / 2 for x, y, p in zip(w_v, w_a, present) if p]
    entropy = -sum(p * math.log(p) for p in weight if p > 0)
    k_a, k_v = (int(x) for x in parts["k"].tolist())
    return {
        "window_budget": [v + a for v, a in zip(kept_v, kept_a)],
        "window_video_budget": kept_v,
        "window_audio_budget": kept_a,
        "video_weight": w_v,
        "audio_weight": w_a,
        "weight_entropy": entropy / math.log(len(weight)) if len(weight) > 1 else 1.0,
        "fallback": bool(parts["fallback"]),
        "video_budget": k_v,
        "audio_budget": k_a,
    }


def allocate_budget_detailed(
    scores: torch.Tensor,
    is_video: torch.Tensor,
    window: torch.Tensor,
    keep_video: float,
    keep_audio: float,
    temperature: float = WINDOW_TEMPERATURE,
    *,
    rounding: str = "half_even",
) -> tuple[torch.Tensor, dict]:
    """Stage II top-down budget (spec §2, §9) with a trace of the arithmetic.

    scores: (N,) query relevance of the current non-text tokens; is_video: (N,) bool; window: (N,) long ids
    in [0, W) (e.g. `run_windows(...)[non_text]`; a window may lack a modality; ids holding no token are
    ignored); keep_video, keep_audio in (0, 1]: keep ratios of this drop; rounding: "half_even" (authors) or
    "half_up". Returns (keep mask (N,) bool, info). The mask holds K_v + K_a tokens, or slightly more when
    windows with B_t = 1 keep one token of each modality (§9). info holds plain Python values, per window id:
    window_budget, window_video_budget, window_audio_budget (kept tokens), video_weight, audio_weight (softmax
    weights, 0.0 for ids holding no token); and weight_entropy (normalised entropy of the window weights in
    [0, 1]; 1.0 with a single window), fallback (bool), video_budget, audio_budget (K_v, K_a).
    The arithmetic is `window_budget` (tensors); this wrapper checks the arguments and reads the info.
    """
    n = scores.shape[0]
    if scores.dim() != 1 or tuple(is_video.shape) != (n,) or tuple(window.shape) != (n,):
        raise ValueError(
            f"scores, is_video and window must all be (N,), got {tuple(scores.shape)}, "
            f"{tuple(is_video.shape)}, {tuple(window.shape)}"
        )
    if is_video.dtype != torch.bool:
        raise ValueError(f"is_video must be a bool tensor, got {is_video.dtype}")
    if window.dtype not in (torch.int32, torch.int64) or (n > 0 and int(window.min()) < 0):
        raise ValueError(f"window must hold non-negative integer window ids, got dtype {window.dtype}")
    for name, keep in (("keep_video", keep_video), ("keep_audio", keep_audio)):
        if not 0 < keep <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {keep}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    round_count(0.0, rounding)  # validates the rounding name
    if n == 0:
        empty = {"window_budget": [], "window_video_budget": [], "window_audio_budget": []}
        return torch.zeros(0, dtype=torch.bool, device=scores.device), {
            **empty,
            "video_weight": [],
            "audio_weight": [],
            "weight_entropy": 1.0,
            "fallback": True,
            "video_budget": 0,
            "audio_budget": 0,
        }
    keep, parts = window_budget(
        scores, is_video, window, int(window.max()) + 1, keep_video, keep_audio, temperature, rounding
    )
    return keep, budget_info(parts)


def allocate_budget(
    scores: torch.Tensor,
    is_video: torch.Tensor,
    window: torch.Tensor,
    keep_video: float,
    keep_audio: float,
    temperature: float = WINDOW_TEMPERATURE,
) -> torch.Tensor:
    """Stage II keep mask (spec §2, §9) with the authors' rounding: (N,) bool, see allocate_budget_detailed."""
    return allocate_budget_detailed(scores, is_video, window, keep_video, keep_audio, temperature)[0]
