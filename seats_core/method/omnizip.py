"""OmniZip, the published omni-modal peer, before the LLM (Tao et al., arXiv 2511.14582; issue 25, spec §5).

OmniZip works on the LLM-input embeddings after both encoders, in three steps:

    1. audio   keep the salient audio tokens (top encoder attention); among the rest, evenly spaced contextual
               anchors; every other audio token joins its most cosine-similar anchor, and each anchor absorbs up
               to g of its members (those most similar to the video), weighted by a softmax:
               new = (anchor + sum_i w_i x_i) / (1 + sum_i w_i)                   `audio_anchor_merge`
    2. budget  per time group t, audio retention r_t (share of its audio kept) gives a video discard ratio
               clamp(base - slope * r_t, lo, hi) = clamp(0.75 - 0.40 r_t, 0.35, 0.75), rescaled so the whole
               video keeps round((1 - rho_video) * N_v) tokens exactly       `audio_guided_discard`, `apportion`
    3. video   interleaved spatio-temporal compression per group and frame: even frames keep the top
               DPC-KNN density-peak scores, odd frames the tokens least similar to the same spatial position in
               the previous frame                       `dpc_knn_scores`, `temporal_select`, `istc_select`

`omnizip_select` runs all three and returns an `OmniZipSelection` (kept indices, the merged audio rows, and
which tokens every merged anchor absorbed, for the explorer). Indices are positions in the video (audio) token
list passed in, not in the whole sequence.

Decisions where the description is silent (each also stated where it is made):
- Counts round half to even (`round_count`, as the rest of the project, spec §9); `rounding="half_up"` exists.
- Audio: salient = round((1 - rho_audio) N_a) over the whole clip (not per group), n_ctx = round(ratio * N_a)
  more anchors on top, at most the rest (the authors' code; so audio keeps about (1 - rho_audio + ratio) N_a).
  `contextual_in_budget=True` takes the anchors out of the (1 - rho_audio) share instead, for matched R.
  n_ctx = 0 (0.05 * N_a < 0.5, or ratio 0) means nothing is merged: only the salient tokens survive.
- Audio without video: the audio-to-video similarity is undefined, so the similarity of a token to its own
  anchor ranks and weights the members instead (what the authors' code does).
- Video budget: a group without audio keeps the plain ratio (discard rho_video); the groups with audio share the
  rest. Their keep shares 1 - clamp(...) are scaled by one common factor (water-filling at 1), which keeps the
  ratio between groups and every ratio in [0, 1]; no second clamp to [lo, hi] (it could not meet rho_video).
  The authors' code scales the discard ratios of all but the extreme groups and clamps again, so its total is
  only close to rho_video: this is where the project differs, by design (every method is compared at one R).
- Frame parity is the frame's rank inside its group (the first frame of every group is a DPC keyframe); an odd
  frame compares with the previous frame of the same group, all of its tokens (not only the kept ones).
- DPC-KNN distance: Euclidean on the embeddings (the authors' code uses 1 - cosine). "Denser" is a total
  order: rho_j > rho_i, or equal rho and j < i, so exactly one token (the densest, lowest index) takes
  delta = its largest distance, and an exact duplicate of a kept token gets delta = 0. Selection ranks by
  log(rho * delta) = log(delta) - mean distance (same order; exp(-distance) underflows for real embeddings).
- Every top-k takes the lower index on ties; argmax over anchors takes the lower anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .budget import _top_per_group
from .schedule import round_count
from .selection import DISTANCE_CHUNK, _compute_dtype, _unit_rows

OMNIZIP_G = 3  # members merged into each contextual audio anchor at most (OmniZip, issue 25)
OMNIZIP_CONTEXTUAL_RATIO = 0.05  # contextual anchors as a share of all audio tokens (OmniZip, issue 25)
# Video discard ratio of a time group from its audio retention r: clamp(BASE - SLOPE * r, MIN, MAX) (OmniZip).
DISCARD_BASE = 0.75  # discard at r = 0 (silent or fully pruned audio)
DISCARD_SLOPE = 0.40  # less discard per unit of audio kept (dense audio keeps more video)
DISCARD_MIN = 0.35  # lower clamp bound
DISCARD_MAX = 0.75  # upper clamp bound
DPC_K = 5  # neighbours of the DPC-KNN density (OmniZip, issue 25)
DPC_CHUNK = 1 << 22  # pairwise distances held at once when scoring frames in a batch (memory, not a result)


@dataclass(frozen=True)
class OmniZipSelection:
    """What `omnizip_select` keeps, in the coordinates of the video and audio token lists it was given.

    video_kept: (K_v,) long, ascending. audio_kept: (K_a,) long, ascending. audio_embeds: (K_a, D) the rows
    for audio_kept (merged anchors replaced, the others as given; dtype of the input). absorbed: merged anchor
    -> the audio indices it absorbed, ascending (anchors that absorbed nothing are absent). Per time group
    (ascending ids in `groups`): audio_retention (None: no audio in the group), video_discard (the rescaled
    real ratio in [0, 1]) and video_keep (the integer count kept).
    """

    video_kept: torch.Tensor
    audio_kept: torch.Tensor
    audio_embeds: torch.Tensor
    absorbed: dict[int, list[int]]
    groups: list[int]
    audio_retention: list[float | None]
    video_discard: list[float]
    video_keep: list[int]


def _check_ratio(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_rows(name: str, x: torch.Tensor) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name} must be (N, D), got shape {tuple(x.shape)}")


def _check_ids(name: str, ids: torch.Tensor, n: int) -> None:
    if tuple(ids.shape) != (n,) or ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"{name} must be ({n},) integer ids, got shape {tuple(ids.shape)}, dtype {ids.dtype}"
        )


# ---- 1. audio: salient tokens, contextual anchors, similarity-weighted merging -------------------------------


def _max_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) largest cosine similarity of each unit row of a (N, D) to any unit row of b (M >= 1, D).

    In row blocks of DISTANCE_CHUNK: memory O(DISTANCE_CHUNK * M).
    """
    out = torch.empty(len(a), dtype=a.dtype, device=a.device)  # (N,)
    for i in range(0, len(a), DISTANCE_CHUNK):
        out[i : i + DISTANCE_CHUNK] = (a[i : i + DISTANCE_CHUNK] @ b.T).amax(dim=1)  # (c, M) -> (c,)
    return out


def audio_anchor_merge(
    audio: torch.Tensor,
    importance: torch.Tensor,
    rho_audio: float,
    video: torch.Tensor | None = None,
    g: int = OMNIZIP_G,
    contextual_ratio: float = OMNIZIP_CONTEXTUAL_RATIO,
    *,
    contextual_in_budget: bool = False,
    rounding: str = "half_even",
) -> tuple[torch.Tensor, torch.Tensor, dict[int, list[int]]]:
    """OmniZip's audio step (issue 25 step 1): salient tokens, contextual anchors, weighted merging.

    audio: (N_a, D) LLM-input audio embeddings; importance: (N_a,) encoder attention each token receives;
    video: (N_v, D) video embeddings or None / empty; rho_audio in [0, 1] discard ratio; g >= 0;
    contextual_ratio in [0, 1].
    - salient: the n_sal = round((1 - rho_audio) N_a) most important tokens (ties lower index), unchanged;
    - contextual anchors: n_ctx = min(round(contextual_ratio N_a), R) of the R other tokens, taken in
      position order at every (R // n_ctx)-th one from the first. With contextual_in_budget the total is
      round((1 - rho_audio) N_a), of which n_ctx = min(round(contextual_ratio N_a), total) are anchors;
    - every other token joins the anchor of largest cosine similarity (ties lower anchor) and gets a score
      s_i = max cosine to any video token (no video: cosine to its own anchor);
    - each anchor takes its min(g, members) members of highest score (ties lower index), w = softmax(s) over
      them, and becomes (anchor + sum_i w_i x_i) / (1 + sum_i w_i) (here sum_i w_i = 1: the mean of the
      anchor and the weighted members); all other tokens are dropped.
    Returns (kept (K,) long ascending, their rows (K, D) in that order with merged anchors replaced, dtype of
    `audio`; absorbed: anchor -> ascending indices it merged, anchors that merged nothing left out).
    """
    _check_rows("audio", audio)
    n, device = audio.shape[0], audio.device
    if tuple(importance.shape) != (n,):
        raise ValueError(f"importance must be ({n},), got shape {tuple(importance.shape)}")
    if video is not None:
        _check_rows("video", video)
        if len(video) and video.shape[1] != audio.shape[1]:
            raise ValueError(f"video and audio widths differ: {video.shape[1]} vs {audio.shape[1]}")
    _check_ratio("rho_audio", rho_audio)
    _check_ratio("contextual_ratio", contextual_ratio)
    if g < 0:
        raise ValueError(f"g must be >= 0, got {g}")
    keep_total = min(n, max(0, round_count((1 - rho_audio) * n, rounding)))
    n_ctx = max(0, round_count(contextual_ratio * n, rounding))
    if contextual_in_budget:
        n_ctx = min(n_ctx, keep_total)
        n_sal = keep_total - n_ctx
    else:
        n_sal = keep_total
        n_ctx = min(n_ctx, n - n_sal)

    order = torch.sort(importance, descending=True, stable=True).indices  # (N_a,) ties: lower index first
    salient = order[:n_sal]  # (n_sal,)
    out = audio.clone()  # (N_a, D)
    if n_ctx == 0:
        kept = salient.sort().values  # (n_sal,)
        return kept, out[kept], {}
    rest = order[n_sal:].sort().values  # (R,) the others, in position order
    is_anchor = torch.zeros(len(rest), dtype=torch.bool, device=device)  # (R,)
    is_anchor[torch.arange(n_ctx, device=device) * (len(rest) // n_ctx)] = True
    anchors, pool = rest[is_anchor], rest[~is_anchor]  # (C,), (P,)
    kept = torch.cat([salient, anchors]).sort().values  # (K,)
    if g == 0 or len(pool) == 0:
        return kept, out[kept], {}

    x = _unit_rows(audio)  # (N_a, D)
    sim = x[pool] @ x[anchors].T  # (P, C)
    assign = sim.argmax(dim=1)  # (P,) first maximum: ties -> lower anchor
    if video is not None and len(video):
        score = _max_similarity(x[pool], _unit_rows(video))  # (P,) audio-to-video similarity
    else:
        score = sim.gather(1, assign[:, None]).squeeze(1)  # (P,) similarity to the own anchor
    chosen = _top_per_group(score, assign, torch.full((n_ctx,), g, device=device))  # (P,) top g per anchor
    member, owner, s = pool[chosen], assign[chosen], score[chosen]  # (M,) each

    # Softmax of the scores inside each anchor's chosen members, then the weighted merge.
    top = torch.full((n_ctx,), float("-inf"), dtype=s.dtype, device=device)
    top = top.scatter_reduce(0, owner, s, reduce="amax")  # (C,)
    e = torch.exp(s - top[owner])  # (M,)
    w = e / torch.zeros_like(top).index_add(0, owner, e)[owner]  # (M,) sums to 1 per anchor
    values = audio.to(x.dtype)  # (N_a, D)
    total = values[anchors].index_add(0, owner, w[:, None] * values[member])  # (C, D) anchor + sum w_i x_i
    weight = 1 + torch.zeros_like(top).index_add(0, owner, w)  # (C,) 1 + sum w_i
    merged = torch.bincount(owner, minlength=n_ctx) > 0  # (C,) anchors that absorbed something
    out[anchors[merged]] = (total / weight[:, None])[merged].to(audio.dtype)

    absorbed: dict[int, list[int]] = {}
    for a, m in sorted(zip(anchors[owner].tolist(), member.tolist())):
        absorbed.setdefault(a, []).append(m)
    return kept, out[kept], absorbed


# ---- 2. audio-guided video budget -----------------------------------------------------------------------------


def guided_discard_ratio(
    retention: float,
    base: float = DISCARD_BASE,
    slope: float = DISCARD_SLOPE,
    lo: float = DISCARD_MIN,
    hi: float = DISCARD_MAX,
) -> float:
    """A time group's base video discard ratio from its audio retention r: clamp(base - slope r, lo, hi)."""
    return min(hi, max(lo, base - slope * retention))


def audio_guided_discard(
    retention: list[float | None],
    sizes: list[int],
    rho_video: float,
    base: float = DISCARD_BASE,
    slope: float = DISCARD_SLOPE,
    lo: float = DISCARD_MIN,
    hi: float = DISCARD_MAX,
) -> list[float]:
    """Per-group video discard ratios d_t in [0, 1] with sum_t n_t d_t = rho_video * sum_t n_t (issue 25 step 2).

    retention: audio retention r_t per group (None: the group has no audio); sizes: its video token counts n_t.
    A group without audio discards rho_video. Each group with audio starts from the keep share
    k_t = 1 - guided_discard_ratio(r_t); one factor s scales all of them, d_t = 1 - min(1, s k_t), with s
    chosen so those groups keep (1 - rho_video) of their tokens: groups whose s k_t would pass 1 keep all and
    the others share the rest (water-filling). So the ratio between groups' keep shares is that of the clamped
    line wherever it fits, and no ratio leaves [0, 1]. A group with k_t = 0 (only if hi = 1) discards all;
    if the groups with k_t > 0 cannot hold the target, every group with audio discards rho_video instead.
    Groups of no video get the ratio of their keep share too (it decides nothing).
    """
    if len(retention) != len(sizes) or any(n < 0 for n in sizes):
        raise ValueError(f"retention and sizes must be one per group, sizes >= 0; got {retention}, {sizes}")
    _check_ratio("rho_video", rho_video)
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"discard bounds must satisfy 0 <= lo <= hi <= 1, got ({lo}, {hi})")
    keep = [None if r is None else 1 - guided_discard_ratio(r, base, slope, lo, hi) for r in retention]
    guided = [t for t, k in enumerate(keep) if k is not None and sizes[t] > 0]
    positive = [t for t in guided if keep[t] > 0]
    target = (1 - rho_video) * sum(sizes[t] for t in guided)  # tokens the guided groups keep, real
    scale = None  # None: the guided groups cannot share the target by their keep shares; plain rho_video
    if positive and target <= sum(sizes[t] for t in positive):
        # Water-filling: saturate the largest keep shares one group at a time until the rest fits under 1.
        # Each saturation raises the scale, so saturated groups stay saturated.
        left = sorted(positive, key=lambda t: (-keep[t], t))
        full = 0.0  # tokens of the saturated groups
        while left:
            scale = (target - full) / sum(sizes[t] * keep[t] for t in left)
            if scale * keep[left[0]] <= 1:
                break
            full += sizes[left.pop(0)]
    return [rho_video if k is None or scale is None else 1 - min(1.0, scale * k) for k in keep]


def apportion(quota: list[float], cap: list[int], total: int, rounding: str = "half_even") -> list[int]:
    """Integer counts b_t in [0, cap_t] summing to `total`, near the real quotas q_t (host numbers).

    b_t = min(cap_t, round(q_t)) (half to even by default); then while the sum is short, +1 to the groups of
    largest q_t - b_t with room, and while it is over, -1 from the groups of smallest q_t - b_t holding one
    (ties to the lower index), one per group per pass. Needs 0 <= total <= sum(cap).
    """
    if len(quota) != len(cap) or not 0 <= total <= sum(cap):
        raise ValueError(f"need one quota per cap and 0 <= total <= {sum(cap)}, got total {total}")
    b = [min(c, max(0, round_count(q, rounding))) for q, c in zip(quota, cap)]
    residual = [q - x for q, x in zip(quota, b)]
    while sum(b) < total:
        for t in sorted(range(len(b)), key=lambda t: (-residual[t], t)):
            if sum(b) < total and b[t] < cap[t]:
                b[t] += 1
    while sum(b) > total:
        for t in sorted(range(len(b)), key=lambda t: (residual[t], t)):
            if sum(b) > total and b[t] > 0:
                b[t] -= 1
    return b


# ---- 3. interleaved spatio-temporal video compression ---------------------------------------------------------


def _dpc_knn(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean distance to the k' nearest, delta), each (..., n), of x (..., n, D); see `dpc_knn_scores`.

    The density order compares the mean distances (rho = exp(-mean) is monotone): no ties from underflow.
    """
    if x.dim() < 2 or x.shape[-2] == 0:
        raise ValueError(f"x must be (..., n, D) with n >= 1, got shape {tuple(x.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = x.to(_compute_dtype(x.dtype))  # (..., n, D)
    n = x.shape[-2]
    sq = (x * x).sum(-1)  # (..., n)
    d2 = sq[..., :, None] + sq[..., None, :] - 2 * x @ x.transpose(-1, -2)  # (..., n, n) squared distances
    d = d2.clamp_min_(0).sqrt_()  # (..., n, n)
    d.diagonal(dim1=-2, dim2=-1).zero_()
    if n == 1:
        mean = torch.zeros(d.shape[:-1], dtype=d.dtype, device=d.device)  # (..., 1)
    else:
        off = d + torch.diag_embed(torch.full(d.shape[:-1], float("inf"), dtype=d.dtype, device=d.device))
        mean = off.topk(min(k, n - 1), dim=-1, largest=False).values.mean(-1)  # (..., n)
    index = torch.arange(n, device=d.device)
    denser = (mean[..., None, :] < mean[..., :, None]) | (
        (mean[..., None, :] == mean[..., :, None]) & (index[None, :] < index[:, None])
    )  # (..., n, n) [i, j]: j denser than i
    delta = d.masked_fill(~denser, float("inf")).amin(-1)  # (..., n)
    delta = torch.where(denser.any(-1), delta, d.amax(-1))  # the densest token: its largest distance
    return mean, delta


def dpc_knn_scores(x: torch.Tensor, k: int = DPC_K) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Density-peaks (DPC-KNN) scores of the tokens of one frame, or of a batch of frames of equal size.

    x: (..., n, D). Distance: Euclidean on the embeddings, d_ij = ||x_i - x_j||. With k' = min(k, n - 1):
    rho_i = exp(-mean of the k' smallest d_ij, j != i) (1 when n = 1); token j is denser than i when
    rho_j > rho_i, or rho_j = rho_i and j < i (a total order: ties to the lower index); delta_i = min d_ij over
    the denser j, and for the densest token (none denser) delta = max_j d_ij; score = rho * delta.
    Returns (rho, delta, score), each (..., n), in float32 or wider. Memory O(n^2) per frame.
    Selection ranks by `_dpc_log_score`, the same order without exp underflowing (embeddings with distances
    ~100 give rho = 0 in float32 for every token).
    """
    mean, delta = _dpc_knn(x, k)
    rho = torch.exp(-mean)
    return rho, delta, rho * delta


def _dpc_log_score(x: torch.Tensor, k: int) -> torch.Tensor:
    """log(rho * delta) = log(delta) - mean distance, (..., n); -inf where delta = 0. Ranks as the score."""
    mean, delta = _dpc_knn(x, k)
    return delta.log() - mean


def dpc_knn_select(x: torch.Tensor, count: int, k: int = DPC_K) -> torch.Tensor:
    """The `count` tokens of one frame x (n, D) of highest DPC-KNN score (ties lower index); (count,) ascending."""
    _check_rows("x", x)
    if not 0 <= count <= len(x):
        raise ValueError(f"count must be in [0, {len(x)}], got {count}")
    score = _dpc_log_score(x, k)  # (n,)
    return torch.sort(score, descending=True, stable=True).indices[:count].sort().values  # (count,)


def temporal_select(current: torch.Tensor, previous: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` tokens of an odd frame least cosine-similar to the same position in the previous frame.

    current, previous: (n, D), row i of both at the same spatial position. Ties to the lower index.
    Returns (count,) long, ascending.
    """
    _check_rows("current", current)
    if current.shape != previous.shape:
        raise ValueError(
            f"current and previous must match, got {tuple(current.shape)}, {tuple(previous.shape)}"
        )
    if not 0 <= count <= len(current):
        raise ValueError(f"count must be in [0, {len(current)}], got {count}")
    sim = (_unit_rows(current) * _unit_rows(previous)).sum(-1)  # (n,)
    return torch.sort(sim, stable=True).indices[:count].sort().values  # (count,)


def istc_select(
    video: torch.Tensor,
    group: torch.Tensor,
    frame: torch.Tensor,
    pos: torch.Tensor,
    keep: list[int],
    k: int = DPC_K,
    rounding: str = "half_even",
) -> torch.Tensor:
    """Interleaved spatio-temporal compression (issue 25 step 3): the kept video tokens, (sum keep,) ascending.

    video: (N_v, D); group, frame, pos: (N_v,) integer time-group id, frame id and spatial position (>= 0)
    of every token; keep: one count per distinct group id, ascending ids (0 <= keep[t] <= its size).
    A group's count is shared over its frames in proportion to their sizes (`apportion`). Frames are ranked by
    id inside their group; rank 0, 2, ... (even) keep the top DPC-KNN scores (`dpc_knn_scores`, k neighbours;
    ranked in log space),
    rank 1, 3, ... (odd) the tokens least cosine-similar to the token at the same position in the frame of
    rank one lower (all of its tokens). Exactly what `dpc_knn_select` / `temporal_select` pick per frame.
    Frames of equal size are scored in batches (DPC_CHUNK distances at a time). Raises if an odd frame has a position its previous frame
    lacks, or a frame holds a position twice.
    """
    _check_rows("video", video)
    n, device = video.shape[0], video.device
    for name, ids in (("group", group), ("frame", frame), ("pos", pos)):
        _check_ids(name, ids, n)
    if n == 0:
        if any(keep):
            raise ValueError(f"no video tokens, but keep is {keep}")
        return torch.zeros(0, dtype=torch.long, device=device)
    if int(pos.min()) < 0:
        raise ValueError("pos must be >= 0")
    pair = torch.stack([group.long(), frame.long()], 1)  # (N_v, 2)
    # cells (C, 2) sorted (group, frame) pairs; cell (N_v,) each token's cell; size (C,) tokens per cell
    cells, cell, size = torch.unique(pair, dim=0, return_inverse=True, return_counts=True)
    cells, size = cells.tolist(), size.tolist()  # (group, frame) sorted, and token counts, per cell
    group_ids = sorted({c[0] for c in cells})
    if len(keep) != len(group_ids):
        raise ValueError(f"keep must give one count per group ({len(group_ids)}), got {len(keep)}")

    # Host arithmetic: each cell's count, parity and previous cell.
    cell_keep, odd, prev = [0] * len(cells), [False] * len(cells), [-1] * len(cells)
    for t, gid in enumerate(group_ids):
        members = [c for c, (cg, _) in enumerate(cells) if cg == gid]  # frame order
        counts = apportion(
            [keep[t] * size[c] / sum(size[m] for m in members) for c in members],
            [size[c] for c in members],
            keep[t],
            rounding,
        )
        for rank, (c, b) in enumerate(zip(members, counts)):
            cell_keep[c], odd[c] = b, rank % 2 == 1
            prev[c] = members[rank - 1] if odd[c] else -1
    partial = [0 < b < s for b, s in zip(cell_keep, size)]  # cells that need a score at all

    dtype = _compute_dtype(video.dtype)
    priority = torch.zeros(n, dtype=dtype, device=device)  # (N_v,) higher = kept first, per cell
    order = torch.argsort(cell, stable=True)  # (N_v,) tokens cell by cell, in sequence order
    start = [0]
    for s in size:
        start.append(start[-1] + s)
    even_cells = [c for c in range(len(cells)) if partial[c] and not odd[c]]
    for s in sorted({size[c] for c in even_cells}):  # even frames: DPC-KNN, batches of one frame size
        batch = [c for c in even_cells if size[c] == s]
        step = max(1, DPC_CHUNK // (s * s))  # frames per batch
        for i in range(0, len(batch), step):
            idx = torch.stack([order[start[c] : start[c] + s] for c in batch[i : i + step]])  # (B, s)
            priority[idx] = _dpc_log_score(video[idx], k).to(dtype)  # (B, s) log DPC score

    odd_cell = torch.tensor([partial[c] and odd[c] for c in range(len(cells))], device=device)  # (C,)
    tok = odd_cell[cell].nonzero().squeeze(1)  # (T,) tokens of odd frames to score
    if len(tok):  # odd frames: novelty against the same position one frame back
        width = int(pos.max()) + 1
        key, by_key = torch.sort(cell * width + pos.long())  # (N_v,)
        if bool((key[1:] == key[:-1]).any()):
            raise ValueError("a frame holds the same spatial position twice")
        query = torch.tensor(prev, device=device)[cell[tok]] * width + pos[tok].long()  # (T,)
        at = torch.searchsorted(key, query).clamp_max(n - 1)  # (T,)
        if not bool((key[at] == query).all()):
            raise ValueError("an odd frame has a spatial position its previous frame lacks")
        sim = (_unit_rows(video[tok]) * _unit_rows(video[by_key[at]])).sum(-1)  # (T,)
        priority[tok] = -sim.to(dtype)  # least similar first
    budget = torch.tensor(cell_keep, dtype=torch.long, device=device)  # (C,)
    return _top_per_group(priority, cell, budget).nonzero().squeeze(1)  # (sum keep,) ascending


# ---- the whole method -------------------------------------------------------------------------------------------


def omnizip_select(
    video: torch.Tensor,
    video_group: torch.Tensor,
    video_frame: torch.Tensor,
    video_pos: torch.Tensor,
    audio: torch.Tensor,
    audio_group: torch.Tensor,
    audio_importance: torch.Tensor,
    rho_video: float,
    rho_audio: float,
    *,
    g: int = OMNIZIP_G,
    contextual_ratio: float = OMNIZIP_CONTEXTUAL_RATIO,
    discard_min: float = DISCARD_MIN,
    discard_max: float = DISCARD_MAX,
    discard_base: float = DISCARD_BASE,
    discard_slope: float = DISCARD_SLOPE,
    knn: int = DPC_K,
    contextual_in_budget: bool = False,
    rounding: str = "half_even",
) -> OmniZipSelection:
    """OmniZip before the LLM (arXiv 2511.14582; issue 25): audio merge, audio-guided budget, ISTC.

    video: (N_v, D) LLM-input video embeddings with, per token, video_group (time group id; e.g. the i-th
    video run of the sequence and the i-th audio run share id i, as `run_windows` numbers them), video_frame
    (frame id) and video_pos (spatial position id, equal across the frames of a group); audio: (N_a, D) with
    audio_group and audio_importance (encoder attention received), all (N,). rho_video, rho_audio in [0, 1]:
    discard ratios at the LLM input (map a preset as rho = 1 - R). The remaining arguments are the paper's
    constants (module docstring).
    Steps: `audio_anchor_merge` -> each group's audio retention r_t = kept / present audio of the group ->
    `audio_guided_discard` -> counts `apportion`ed to exactly round((1 - rho_video) N_v) -> `istc_select`.
    rho_video = rho_audio = 0 keeps every token, unchanged. Returns an `OmniZipSelection`.
    """
    _check_rows("video", video)
    _check_rows("audio", audio)
    for name, ids, m in (
        ("video_group", video_group, len(video)),
        ("video_frame", video_frame, len(video)),
        ("video_pos", video_pos, len(video)),
        ("audio_group", audio_group, len(audio)),
    ):
        _check_ids(name, ids, m)
    _check_ratio("rho_video", rho_video)
    if knn < 1:
        raise ValueError(f"knn must be >= 1, got {knn}")
    audio_kept, audio_embeds, absorbed = audio_anchor_merge(
        audio,
        audio_importance,
        rho_audio,
        video,
        g,
        contextual_ratio,
        contextual_in_budget=contextual_in_budget,
        rounding=rounding,
    )

    # Per time group: audio present / kept, video present (host numbers, a few per clip).
    groups = sorted(set(video_group.tolist()) | set(audio_group.tolist()))
    slot = {gid: t for t, gid in enumerate(groups)}
    present, kept_audio, sizes = [0] * len(groups), [0] * len(groups), [0] * len(groups)
    for gid in audio_group.tolist():
        present[slot[gid]] += 1
    for gid in audio_group[audio_kept].tolist():
        kept_audio[slot[gid]] += 1
    for gid in video_group.tolist():
        sizes[slot[gid]] += 1
    retention = [k / p if p else None for k, p in zip(kept_audio, present)]
    discard = audio_guided_discard(
        retention, sizes, rho_video, discard_base, discard_slope, discard_min, discard_max
    )
    total = min(len(video), max(0, round_count((1 - rho_video) * len(video), rounding)))
    counts = apportion([n * (1 - d) for n, d in zip(sizes, discard)], sizes, total, rounding)
    video_kept = istc_select(
        video,
        video_group,
        video_frame,
        video_pos,
        [b for b, n in zip(counts, sizes) if n > 0],
        knn,
        rounding,
    )
    return OmniZipSelection(
        video_kept=video_kept,
        audio_kept=audio_kept,
        audio_embeds=audio_embeds,
        absorbed=absorbed,
        groups=groups,
        audio_retention=retention,
        video_discard=discard,
        video_keep=counts,
    )
