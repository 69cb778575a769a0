"""Stage II budget, top-down: which non-text tokens survive a drop (spec §2 "Budget, top-down").

    1. totals      K_v = max(1, round(keep_v * n_v)), K_a likewise, B = K_v + K_a
    2. windows     w_v = softmax_t(mean video score of window t / T), w_a likewise,
                   B_t = clamp(round((w_v[t] + w_a[t]) / 2 * B), 1, size_t), rounding fixed so sum_t B_t = B
    3. modalities  video share w_v[t] K_v / (w_v[t] K_v + w_a[t] K_a) of B_t, capped by what exists,
                   >= 1 token per modality present in a window (and overall)
    4. tokens      the top-scoring tokens of each (window, modality)

With one window or one modality it falls back to a global top-K per modality. Token counts are rounded half up.
The per-window arithmetic runs on Python floats (W is small); the per-token work stays in torch.
"""

from __future__ import annotations

import math

import torch

from .schedule import round_half_up

WINDOW_TEMPERATURE = 0.1  # T of the window softmax (spec §2)


def _softmax(logits: list[float | None]) -> list[float]:
    """Softmax over the entries that are not None; None entries get weight 0."""
    present = [v for v in logits if v is not None]
    if not present:
        return [0.0] * len(logits)
    top = max(present)
    exps = [0.0 if v is None else math.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _modality_total(keep: float, count: int) -> int:
    """K = max(1, round(keep * count)) if the modality is present, else 0."""
    return max(1, min(count, round_half_up(keep * count))) if count > 0 else 0


def _top_per_group(scores: torch.Tensor, group: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """Keep the budget[g] highest-scoring tokens of every group g (ties lower index).

    scores: (N,); group: (N,) long ids in [0, G); budget: (G,) long. Returns a (N,) bool mask.
    """
    by_score = torch.sort(scores, descending=True, stable=True).indices  # (N,) ties: lower index first
    order = by_score[
        torch.sort(group[by_score], stable=True).indices
    ]  # (N,) grouped, best first within group
    counts = torch.bincount(group, minlength=len(budget))  # (G,)
    group_start = torch.cumsum(counts, 0) - counts  # (G,)
    rank = torch.arange(len(order), device=scores.device) - group_start[group[order]]  # (N,) rank in group
    keep = torch.zeros_like(group, dtype=torch.bool)  # (N,)
    keep[order] = rank < budget[group[order]]
    return keep


def _window_budgets(weight: list[float], size: list[int], total: int) -> list[int]:
    """B_t = clamp(round(weight_t * total), 1, size_t) for non-empty windows, fixed so the sum is `total`.

    Too many: take one from the largest B_t > 1 (ties lower id); if every B_t is 1 (more windows than budget),
    take the 1 of the lowest-weight window (ties lower id). Too few: give one to the smallest B_t that still
    has room (ties lower id).
    """
    budget = [min(max(round_half_up(w * total), 1), n) if n > 0 else 0 for w, n in zip(weight, size)]
    ids = range(len(size))
    while sum(budget) > total:
        over = [t for t in ids if budget[t] > 1]
        if over:
            t = min(over, key=lambda t: (-budget[t], t))
        else:
            t = min((t for t in ids if budget[t] == 1), key=lambda t: (weight[t], t))
        budget[t] -= 1
    while sum(budget) < total:
        t = min((t for t in ids if budget[t] < size[t]), key=lambda t: (budget[t], t))
        budget[t] += 1
    return budget


def _split_window(
    budget: int, n_video: int, n_audio: int, w_video: float, w_audio: float, k_video: int, k_audio: int
) -> tuple[int, int]:
    """Split one window's budget into (video, audio) counts (spec §2 "Inside a window")."""
    if budget == 0:  # an empty window, or more windows than budget
        return 0, 0
    denom = w_video * k_video + w_audio * k_audio
    share = w_video * k_video / denom if denom > 0 else n_video / (n_video + n_audio)  # underflowed weights
    b_v = min(round_half_up(share * budget), n_video)
    b_a = min(budget - b_v, n_audio)
    extra_v = min(budget - b_v - b_a, n_video - b_v)  # leftovers to video first, then audio
    b_v += extra_v
    b_a += min(budget - b_v - b_a, n_audio - b_a)
    if n_video > 0 and b_v == 0 and b_a >= 2:  # >= 1 per modality present, taken from the other one
        b_v, b_a = 1, b_a - 1
    if n_audio > 0 and b_a == 0 and b_v >= 2:
        b_v, b_a = b_v - 1, 1
    return b_v, b_a


def _ensure_each_modality(
    split: list[tuple[int, int]], count: list[tuple[int, int]], weight: list[tuple[float, float]]
) -> list[tuple[int, int]]:
    """Keep >= 1 token of each modality overall (K_v, K_a >= 1 promise it).

    Only windows with B_t <= 1 can starve a modality. Then, among the windows holding the starved modality with
    B_t = 1, the one with its largest weight (ties lower id) trades its single token for one of that modality.
    split, count, weight: per window (video, audio) budgets, token counts and softmax weights.
    Window budgets are unchanged.
    """
    split = [list(b) for b in split]
    for m in (0, 1):
        if sum(b[m] for b in split) == 0:
            holders = [t for t, c in enumerate(count) if c[m] > 0 and split[t][1 - m] > 0]
            if holders:  # empty only when B < number of windows left those windows without budget
                t = min(holders, key=lambda t: (-weight[t][m], t))
                split[t][m], split[t][1 - m] = 1, split[t][1 - m] - 1
    return [tuple(b) for b in split]


def allocate_budget_detailed(
    scores: torch.Tensor,
    is_video: torch.Tensor,
    window: torch.Tensor,
    keep_video: float,
    keep_audio: float,
    temperature: float = WINDOW_TEMPERATURE,
) -> tuple[torch.Tensor, dict]:
    """Stage II top-down budget (spec §2) with a trace of the arithmetic.

    scores: (N,) query relevance of the current non-text tokens; is_video: (N,) bool; window: (N,) long ids
    in [0, W) (a window may lack a modality, or be empty); keep_video, keep_audio in (0, 1]: keep ratios of
    this drop. Returns (keep mask (N,) bool with exactly K_v + K_a True, info) where info holds plain Python
    values: window_budget, window_video_budget, window_audio_budget (list[int], kept tokens per window id),
    video_weight, audio_weight (list[float]), weight_entropy (normalised entropy of the window weights in
    [0, 1]; 1.0 with a single window), fallback (bool), video_budget, audio_budget (K_v, K_a).
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
    window = window.long()
    num_windows = int(window.max()) + 1 if n > 0 else 0

    # Per-window token counts and score sums of each modality (Python lists of length W).
    dtype = torch.promote_types(scores.dtype, torch.float32)
    stats = {}
    for name, mask in (("video", is_video), ("audio", ~is_video)):
        count = torch.bincount(window[mask], minlength=num_windows)  # (W,)
        total = torch.zeros(num_windows, dtype=dtype, device=scores.device)  # (W,)
        total.index_add_(0, window[mask], scores[mask].to(dtype))
        stats[name] = (count.tolist(), total.tolist())
    (n_v_t, sum_v_t), (n_a_t, sum_a_t) = stats["video"], stats["audio"]
    n_v, n_a = sum(n_v_t), sum(n_a_t)
    k_v, k_a = _modality_total(keep_video, n_v), _modality_total(keep_audio, n_a)
    w_v = _softmax([s / c / temperature if c else None for s, c in zip(sum_v_t, n_v_t)])
    w_a = _softmax([s / c / temperature if c else None for s, c in zip(sum_a_t, n_a_t)])
    if n_v and n_a:
        weight = [(v + a) / 2 for v, a in zip(w_v, w_a)]
    else:
        weight = w_v if n_v else w_a
    size = [v + a for v, a in zip(n_v_t, n_a_t)]
    non_empty = sum(s > 0 for s in size)
    entropy = -sum(p * math.log(p) for p in weight if p > 0)
    weight_entropy = entropy / math.log(non_empty) if non_empty > 1 else 1.0

    fallback = non_empty <= 1 or n_v == 0 or n_a == 0
    if fallback:  # global top-K per modality: groups are the two modalities
        group = is_video.long()  # (N,) 0 audio, 1 video
        budget = torch.tensor([k_a, k_v], dtype=torch.long, device=scores.device)  # (2,)
    else:
        window_total = _window_budgets(weight, size, k_v + k_a)
        split = [
            _split_window(b, nv, na, wv, wa, k_v, k_a)
            for b, nv, na, wv, wa in zip(window_total, n_v_t, n_a_t, w_v, w_a)
        ]
        split = _ensure_each_modality(split, list(zip(n_v_t, n_a_t)), list(zip(w_v, w_a)))
        group = 2 * window + is_video.long()  # (N,) window t: audio 2t, video 2t + 1
        budget = torch.tensor(
            [b for b_v, b_a in split for b in (b_a, b_v)], dtype=torch.long, device=scores.device
        )  # (2W,)
    keep = _top_per_group(scores, group, budget)  # (N,)

    kept_v = torch.bincount(window[keep & is_video], minlength=num_windows).tolist()
    kept_a = torch.bincount(window[keep & ~is_video], minlength=num_windows).tolist()
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
    return keep, info


def allocate_budget(
    scores: torch.Tensor,
    is_video: torch.Tensor,
    window: torch.Tensor,
    keep_video: float,
    keep_audio: float,
    temperature: float = WINDOW_TEMPERATURE,
) -> torch.Tensor:
    """Stage II keep mask (spec §2): (N,) bool, see allocate_budget_detailed."""
    return allocate_budget_detailed(scores, is_video, window, keep_video, keep_audio, temperature)[0]
