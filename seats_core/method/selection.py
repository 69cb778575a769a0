"""Stage I token selection and the pre-LLM baselines (spec §1, §5).

- diversity_select: importance-weighted greedy max-min diversity over cosine distance (SEATS Stage I;
  with importance=None it is plain max-min diversity, i.e. DivPrune-om).
- select_per_window: the same, per 2-second window.
- received_attention / pool_pairs: the encoder statistic a_j and its pooling to one value per LLM token.
- random_select, visionzip_select: the Random and VisionZip-om baselines.

All functions are pure and deterministic; ties go to the lower index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedule import round_half_up

NORM_EPS = 1e-8  # floor on ||x|| when normalising for cosine distance
DISTANCE_CHUNK = (
    4096  # rows per block when computing nearest-neighbour distances (bounds memory to chunk x N)
)
VISIONZIP_CONTEXTUAL_FRACTION = 0.05  # VisionZip-om: 5% "contextual" tokens per window (spec §5)


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
    Returns (k,) long indices, sorted ascending. Memory is O(N * DISTANCE_CHUNK) for the first pick and
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

    # First pick: distance of every token to its nearest other token, computed in row blocks.
    nearest = torch.empty(n, dtype=x.dtype, device=device)  # (N,)
    for start in range(0, n, DISTANCE_CHUNK):
        rows = torch.arange(start, min(start + DISTANCE_CHUNK, n), device=device)  # (c,)
        dist = 1 - x[rows] @ x.T  # (c, N)
        dist[torch.arange(len(rows), device=device), rows] = float("inf")  # exclude i == j
        nearest[rows] = dist.min(dim=1).values  # (c,)
    first = _argmax_first(a * nearest)

    # Greedy: keep the min distance of every token to the kept set, add the best weighted candidate.
    kept = torch.zeros(n, dtype=torch.bool, device=device)  # (N,)
    kept[first] = True
    min_dist = 1 - x @ x[first]  # (N,)
    for _ in range(k - 1):
        value = (a * min_dist).masked_fill(kept, float("-inf"))  # (N,)
        j = _argmax_first(value)
        kept[j] = True
        min_dist = torch.minimum(min_dist, 1 - x @ x[j])  # (N,)
    return kept.nonzero().squeeze(1)  # (k,) ascending


def window_keep_count(n: int, ratio: float) -> int:
    """Tokens kept from a window of n at `ratio`: max(1, min(n, floor(ratio * n + 0.5))) (spec §1)."""
    return max(1, min(n, round_half_up(ratio * n)))


def select_per_window(
    features: torch.Tensor, window: torch.Tensor, ratio: float, importance: torch.Tensor | None = None
) -> torch.LongTensor:
    """Stage I: diversity_select inside every window (spec §1).

    features: (N, D); window: (N,) long window ids; importance: (N,) or None; 0 < ratio <= 1.
    A window with N_w tokens keeps max(1, min(N_w, floor(ratio * N_w + 0.5))) of them (round half up).
    Returns the kept global indices, sorted ascending.
    """
    _check_features(features, importance)
    if tuple(window.shape) != (features.shape[0],):
        raise ValueError(f"window must be ({features.shape[0]},), got shape {tuple(window.shape)}")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    kept = []
    for w in torch.unique(window).tolist():  # ascending window ids
        idx = (window == w).nonzero().squeeze(1)  # (N_w,)
        sub_importance = None if importance is None else importance[idx]  # (N_w,)
        local = diversity_select(features[idx], window_keep_count(len(idx), ratio), sub_importance)  # (k_w,)
        kept.append(idx[local])
    return torch.cat(kept).sort().values  # (sum k_w,)


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
) -> tuple[torch.LongTensor, torch.Tensor]:
    """VisionZip-om inside one window of N tokens (spec §5): dominant tokens plus merged contextual tokens.

    features: (N, D); importance: (N,); 1 <= k <= N tokens are kept in total.
    n_ctx = max(1, round_half_up(contextual_fraction * N)) if k >= 2 else 0, at most k - 1.
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
    n_ctx = min(max(1, round_half_up(contextual_fraction * n)), k - 1) if k >= 2 else 0
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
