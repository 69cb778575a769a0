"""Stage I token selection and the pre-LLM baselines (spec §1, §5).

- diversity_select: importance-weighted greedy max-min diversity over cosine distance (SEATS Stage I;
  with importance=None it is plain max-min diversity, i.e. DivPrune-om).
- select_per_window: the same, per window (the authors' fixed token blocks, `block_windows`).
- received_attention / pool_pairs: the encoder statistic a_j and its pooling to one value per LLM token.
- random_select, visionzip_select: the Random and VisionZip-om baselines.

All functions are pure and deterministic; ties go to the lower index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedule import round_count

NORM_EPS = 1e-8  # floor on ||x|| when normalising for cosine distance
DISTANCE_CHUNK = 512  # block side of the nearest-neighbour similarities (memory chunk x chunk)
VISIONZIP_CONTEXTUAL_FRACTION = 0.05  # VisionZip-om: 5% "contextual" tokens per window (spec §5)
# Stage-I windows of the authors' implementation: fixed blocks in token order (spec §9 "Stage I windows").
VIDEO_BLOCK_GRIDS = 2  # video: 2 temporal grids' tokens per block (2 s at Qwen2.5-Omni's 2 fps)
AUDIO_BLOCK_TOKENS = 50  # audio: 50 tokens per block (2 s at 25 tokens/s; ~3.85 s at Qwen3-Omni's 13/s)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """At least float32 for similarity arithmetic (bf16/fp16 inputs are upcast, float64 stays)."""
    return torch.promote_types(dtype, torch.float32)


def _argmax_first(values: torch.Tensor) -> torch.Tensor:
    """0-d index of the largest value; among equal maxima the lowest index (explicit, and no host sync)."""
    index = torch.arange(len(values), device=values.device)  # (N,)
    return torch.where(values == values.max(), index, len(values)).min()  # ()


def _unit_rows(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm in the compute dtype."""
    x = features.to(_compute_dtype(features.dtype))  # (N, D)
    return F.normalize(x, dim=-1, eps=NORM_EPS)  # (N, D)


def _check_features(features: torch.Tensor, importance: torch.Tensor | None) -> None:
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be (N, D) with N >= 1, got shape {tuple(features.shape)}")
    if importance is not None and tuple(importance.shape) != (features.shape[0],):
        raise ValueError(f"importance must be ({features.shape[0]},), got shape {tuple(importance.shape)}")


def diversity_select(
    features: torch.Tensor, k: int, importance: torch.Tensor | None = None
) -> torch.LongTensor:
    """Importance-weighted greedy max-min diversity selection (spec §1).

    features: (N, D) token embeddings; importance: (N,) weights a_j (None = all ones); 1 <= k <= N.
    With d(i, j) = 1 - cos(x_i, x_j), the first pick maximises a_j * min_{i != j} d(i, j); each next pick
    maximises a_j * min_{s in S} d(s, j) over j not yet kept. Ties go to the lower index.
    Returns (k,) long indices, sorted ascending. Memory is O(DISTANCE_CHUNK^2) for the first pick and
    O(N) per greedy step (a running min-distance vector).
    """
    _check_features(features, importance)
    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] for {n} tokens, got {k}")
    device = features.device
    if k == n:
        return torch.arange(n, device=device)
    x = _unit_rows(features)  # (N, D)
    a = torch.ones(n, dtype=x.dtype, device=device) if importance is None else importance.to(x.dtype)  # (N,)

    # First pick: distance of every token to its nearest other token = 1 - its largest similarity to another
    # (exactly: fl(1 - s) is monotone in s).
    first = _argmax_first(a * (1 - _nearest_similarity(x))).view(1)  # (1,)

    # Greedy: keep the min distance of every token to the kept set, add the best weighted candidate. No host
    # round trip per step: the pick stays a (1,) tensor (a 0-d index would be read on the host), and argmax
    # returns the first maximum (ties -> lower index).
    min_dist = 1 - x @ x.index_select(0, first)[0]  # (N,)
    if importance is None:  # DivPrune: the value is the distance itself (a = 1); kept tokens hold -inf
        min_dist.index_fill_(0, first, float("-inf"))
        for _ in range(k - 1):
            j = min_dist.argmax().view(1)  # (1,)
            min_dist.index_fill_(0, j, float("-inf"))
            torch.minimum(min_dist, 1 - x @ x.index_select(0, j)[0], out=min_dist)  # (N,) -inf stays
        return torch.isneginf(min_dist).nonzero().squeeze(1)  # (k,) ascending
    kept = torch.zeros(n, dtype=torch.bool, device=device)  # (N,)
    kept[first] = True
    for _ in range(k - 1):
        j = (a * min_dist).masked_fill_(kept, float("-inf")).argmax().view(1)  # (1,)
        kept[j] = True
        torch.minimum(min_dist, 1 - x @ x.index_select(0, j)[0], out=min_dist)  # (N,)
    return kept.nonzero().squeeze(1)  # (k,) ascending


def _nearest_similarity(x: torch.Tensor) -> torch.Tensor:
    """(N,) largest cosine similarity of each unit row of x (N, D) to another row (-inf when N == 1).

    Blocks of DISTANCE_CHUNK x DISTANCE_CHUNK similarities, each computed once for the pair of row blocks
    (I, J >= I) and read both ways (row maxima for I, column maxima for J): half the products of the full
    N x N matrix, and memory O(DISTANCE_CHUNK^2).
    """
    n, c = x.shape[0], DISTANCE_CHUNK
    best = torch.full((n,), float("-inf"), dtype=x.dtype, device=x.device)  # (N,)
    for i in range(0, n, c):
        for j in range(i, n, c):
            sim = x[i : i + c] @ x[j : j + c].T  # (cI, cJ)
            if i == j:
                sim.diagonal().fill_(float("-inf"))  # exclude the token itself
            torch.maximum(best[i : i + c], sim.amax(dim=1), out=best[i : i + c])
            if j != i:
                torch.maximum(best[j : j + c], sim.amax(dim=0), out=best[j : j + c])
    return best


def window_keep_count(n: int, ratio: float, rounding: str = "half_even") -> int:
    """Tokens kept from n at `ratio`: max(1, min(n, round(ratio * n))) (spec §1, rounding of §9); 0 if n = 0.

    rounding "half_even" (the authors': 0.77 * 50 = 38.5 -> 38) or "half_up" (38.5 -> 39).
    """
    return max(1, min(n, round_count(ratio * n, rounding))) if n > 0 else 0


def block_windows(n: int, block: int, device=None) -> torch.LongTensor:
    """Window ids of n tokens of one modality in consecutive fixed blocks of `block` (spec §9 Stage I).

    Returns (n,) long: token k -> k // block; the last block may be short.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    return torch.arange(n, device=device) // block  # (n,)


def select_per_window(
    features: torch.Tensor,
    window: torch.Tensor,
    ratio: float,
    importance: torch.Tensor | None = None,
    rounding: str = "half_even",
) -> torch.LongTensor:
    """Stage I: diversity_select inside every window (spec §1), all windows at once.

    features: (N, D); window: (N,) long window ids; importance: (N,) or None; 0 < ratio <= 1.
    A window with N_w tokens keeps window_keep_count(N_w, ratio, rounding) of them.
    Returns the kept global indices, sorted ascending -- the same as calling diversity_select per window.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    _check_features(features, importance)
    if tuple(window.shape) != (features.shape[0],):
        raise ValueError(f"window must be ({features.shape[0]},), got shape {tuple(window.shape)}")
    counts = torch.unique(window, return_counts=True)[1].tolist()
    keep = [window_keep_count(c, ratio, rounding) for c in counts]
    return select_windows(features, window, keep, importance)


def select_windows(
    features: torch.Tensor,
    window: torch.Tensor,
    keep: list[int],
    importance: torch.Tensor | None = None,
) -> torch.LongTensor:
    """Greedy (weighted) max-min diversity inside every window, all windows in one device loop.

    features: (N, D); window: (N,) long window ids (any order; the w-th smallest id is window w);
    keep: W host ints, 1 <= keep[w] <= size of window w; importance: (N,) weights or None.
    Windows may differ in size (e.g. video and audio blocks of one Stage-I drop together). Returns the kept
    global indices, sorted ascending: per window exactly what diversity_select(features[win], keep[w],
    importance[win]) keeps (ties to the lower index).
    """
    _check_features(features, importance)
    if tuple(window.shape) != (features.shape[0],):
        raise ValueError(f"window must be ({features.shape[0]},), got shape {tuple(window.shape)}")
    _, inverse, counts = torch.unique(window, return_inverse=True, return_counts=True)  # (W,), (N,), (W,)
    sizes = counts.tolist()
    if len(keep) != len(sizes) or any(not 1 <= k <= n for k, n in zip(keep, sizes)):
        raise ValueError(f"keep must give 1..size tokens for each of the {len(sizes)} windows, got {keep}")
    x = _unit_rows(features)  # (N, D)
    a = None if importance is None else importance.to(x.dtype)  # (N,)
    if bool((window[1:] >= window[:-1]).all()):  # already window by window (Stage I's blocks are)
        return _greedy_windows(x, sizes, keep, a).nonzero().squeeze(1)  # (sum keep,) ascending
    order = torch.argsort(inverse, stable=True)  # (N,) tokens grouped by window, in sequence order
    kept = _greedy_windows(x[order], sizes, keep, None if a is None else a[order])  # (N,) over the order
    return order[kept].sort().values  # (sum keep,)


def _greedy_windows(
    x: torch.Tensor, sizes: list[int], keep: list[int], a: torch.Tensor | None
) -> torch.Tensor:
    """Kept mask (N,) of the greedy max-min in consecutive windows of `sizes` tokens of the unit rows x (N, D).

    Row r of a (N, n_max) buffer holds the weighted distances a_j * (1 - cos(x_r, x_j)) from token r to the
    tokens j of its own window (columns past the window's size are 0), computed once per window (windows of
    equal size in one batched product), and -inf from r to itself. A (W, n_max) score row per window holds
    every candidate's a_j * min distance to the window's kept set: -inf once kept (the picked row's own entry
    sees to that) and on padding. Each greedy step is one argmax, one row gather and one minimum for all
    windows together. The only host values are the window sizes and keep counts, known before the loop.
    """
    device, dtype = x.device, x.dtype
    W, n_max = len(sizes), max(sizes)
    start = [0]
    for n in sizes:
        start.append(start[-1] + n)  # token offsets of the windows
    dist = torch.empty(len(x), n_max, dtype=dtype, device=device)  # (N, n_max)
    nearest = torch.empty(len(x), dtype=dtype, device=device)  # (N,) distance to the nearest other token
    w = 0
    while w < W:  # runs of equal-size windows: one batched product each
        n, g = sizes[w], 1
        while w + g < W and sizes[w + g] == n:
            g += 1
        lo, hi = start[w], start[w + g]
        xs = x[lo:hi].view(g, n, -1)  # (g, n, D)
        if n == n_max:
            sim = dist[lo:hi].view(g, n, n)  # written in place
            torch.bmm(xs, xs.transpose(1, 2), out=sim)
        else:
            sim = torch.bmm(xs, xs.transpose(1, 2))  # (g, n, n)
        diag = sim.diagonal(dim1=1, dim2=2)  # (g, n)
        diag.fill_(float("-inf"))  # not its own neighbour
        near = 1 - sim.amax(dim=2)  # (g, n); single-token windows: inf -> 0 below
        nearest[lo:hi] = torch.where(near.isinf(), torch.zeros_like(near), near).view(-1)
        sim.neg_().add_(1)  # distances 1 - s, exactly
        if a is not None:
            sim.mul_(a[lo:hi].view(g, 1, n))  # a_j * (1 - s_ij): column j's weight
        diag.fill_(float("-inf"))  # a picked token's own entry: it is never a candidate again
        if n < n_max:
            dist[lo:hi, :n] = sim.view(-1, n)
            dist[lo:hi, n:] = 0
        w += g

    col = torch.arange(n_max, device=device)  # (n_max,)
    size_t = torch.tensor(sizes, device=device)  # (W,)
    base = torch.tensor(start[:-1], device=device)  # (W,) first token of each window
    valid = col < size_t[:, None]  # (W, n_max)
    tok = base[:, None] + col.clamp_max(size_t[:, None] - 1)  # (W, n_max) token at each slot
    value = nearest[tok] if a is None else a[tok] * nearest[tok]
    first = torch.where(valid, value, float("-inf")).argmax(dim=1)  # (W,) first maximum: ties -> lower index
    score = dist.index_select(0, base + first).masked_fill_(~valid, float("-inf"))  # (W, n_max)
    # Windows that keep every token need no greedy; the loop runs for the longest of the others.
    need = [k if k < n else 0 for k, n in zip(keep, sizes)]
    steps = max(need)
    picks = [first]  # picks[s][w]: window w's (s+1)-th pick
    row = torch.empty_like(score)
    for _ in range(1, steps):
        j = score.argmax(dim=1)  # (W,) windows with all their picks pick junk, ignored
        picks.append(j)
        torch.index_select(dist, 0, base + j, out=row)
        torch.minimum(score, row, out=score)
    picks = torch.stack(picks)  # (steps, W)
    useful = torch.arange(len(picks), device=device)[:, None] < torch.tensor(need, device=device)  # (s, W)
    kept = torch.zeros(len(x), dtype=torch.bool, device=device)
    kept[(base + picks)[useful]] = True
    for w, (k, n) in enumerate(zip(keep, sizes)):
        if k == n:
            kept[start[w] : start[w + 1]] = True
    return kept


def random_select(n: int, k: int, generator: torch.Generator | None = None) -> torch.LongTensor:
    """Random baseline (spec §5): sorted indices of a uniform random k-subset of range(n), 1 <= k <= n."""
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] for {n} tokens, got {k}")
    device = generator.device if generator is not None else None
    return torch.randperm(n, generator=generator, device=device)[:k].sort().values  # (k,)


def visionzip_select(
    features: torch.Tensor,
    importance: torch.Tensor,
    k: int,
    contextual_fraction: float = VISIONZIP_CONTEXTUAL_FRACTION,
    rounding: str = "half_even",
) -> tuple[torch.LongTensor, torch.Tensor]:
    """VisionZip-om inside one window of N tokens (spec §5): dominant tokens plus merged contextual tokens.

    features: (N, D); importance: (N,); 1 <= k <= N tokens are kept in total.
    n_ctx = max(1, round(contextual_fraction * N)) if k >= 2 else 0, at most k - 1 (rounding as `rounding`).
    Dominant: the top k - n_ctx tokens by importance (ties lower index), kept unchanged.
    Contextual: of the R remaining tokens (in position order) targets are every (R // n_ctx)-th one starting at
    the first; each other remaining token joins its most cosine-similar target (ties lower target), and a target
    becomes the mean of itself and its members.
    Returns (kept indices (k,) ascending, their features (k, D) in the same order, dtype of `features`).
    """
    _check_features(features, importance)
    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] for {n} tokens, got {k}")
    if not 0 <= contextual_fraction <= 1:
        raise ValueError(f"contextual_fraction must be in [0, 1], got {contextual_fraction}")
    n_ctx = min(max(1, round_count(contextual_fraction * n, rounding)), k - 1) if k >= 2 else 0
    order = torch.sort(importance, descending=True, stable=True).indices  # (N,) ties keep lower index first
    dominant = order[: k - n_ctx]  # (k - n_ctx,)
    out = features.clone()  # (N, D)
    if n_ctx == 0:
        kept = dominant.sort().values  # (k,)
        return kept, out[kept]
    rest = order[k - n_ctx :].sort().values  # (R,) remaining, in position order
    step = len(rest) // n_ctx
    is_target = torch.zeros(len(rest), dtype=torch.bool, device=features.device)  # (R,)
    is_target[torch.arange(n_ctx, device=features.device) * step] = True
    targets, others = rest[is_target], rest[~is_target]  # (n_ctx,), (R - n_ctx,)

    x = _unit_rows(features)  # (N, D)
    assign = (x[others] @ x[targets].T).argmax(dim=1)  # (R - n_ctx,) first max -> lower target
    values = features.to(x.dtype)  # (N, D)
    sums = values[targets].index_add(0, assign, values[others])  # (n_ctx, D)
    counts = 1 + torch.bincount(assign, minlength=n_ctx).to(x.dtype)  # (n_ctx,)
    out[targets] = (sums / counts[:, None]).to(features.dtype)  # (n_ctx, D)
    kept = torch.cat([dominant, targets]).sort().values  # (k,)
    return kept, out[kept]


def received_attention(q: torch.Tensor, k: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Attention each token receives inside one window (spec §1 importance a_j).

    q, k: (H, n, d) queries and keys of one window. Non-causal softmax over keys (float32 or wider),
    mean over heads, summed over query rows -> (n,). The result sums to n (every query row sums to 1).
    scale defaults to d ** -0.5.
    """
    if q.dim() != 3 or q.shape != k.shape:
        raise ValueError(
            f"q and k must both be (H, n, d) with equal shapes, got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    dtype = _compute_dtype(q.dtype)
    logits = q.to(dtype) @ k.to(dtype).transpose(1, 2) * scale  # (H, n, n) query x key
    attn = logits.softmax(dim=-1).mean(dim=0)  # (n, n)
    return attn.sum(dim=0)  # (n,)


def pool_pairs(x: torch.Tensor, group: int) -> torch.Tensor:
    """Mean over consecutive groups of `group` rows along dim 0 (spec §1 pooling to one value per LLM token).

    x: (N, ...) -> (ceil(N / group), ...). An incomplete last group is averaged over the rows it has
    (not dropped), so every input row contributes. group=2 matches the audio stride-2 pooling; group=4 the
    2x2 vision merge (the merger's input order keeps each merge group contiguous).
    """
    if group < 1:
        raise ValueError(f"group must be >= 1, got {group}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"x must have at least one row along dim 0, got shape {tuple(x.shape)}")
    ids = torch.arange(x.shape[0], device=x.device) // group  # (N,)
    dtype = _compute_dtype(x.dtype)
    sums = torch.zeros((int(ids[-1]) + 1, *x.shape[1:]), dtype=dtype, device=x.device)  # (G, ...)
    sums.index_add_(0, ids, x.to(dtype))
    counts = torch.bincount(ids).to(dtype).reshape(-1, *([1] * (x.dim() - 1)))  # (G, 1, ...)
    return (sums / counts).to(x.dtype) if x.is_floating_point() else sums / counts  # (G, ...)
