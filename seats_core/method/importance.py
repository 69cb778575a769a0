"""Stage-I importance without whole attention matrices (spec §1 importance a_j).

The statistic is the attention each key receives inside its window in the last encoder layer: head-mean
softmax over the window's keys, summed over the window's query rows. `selection.received_attention` computes
it for one window by materialising the (H, n, n) probabilities; `windowed_received_attention` gives the same
values for a whole ragged sequence of windows while holding at most `block_elements` probabilities at a time:

- windows of equal length are stacked into one batch (a view when they are adjacent, as the vision windows of
  2 temporal grids and the audio encoder's chunks are: all full but the last);
- inside a batch the query rows are taken in blocks of about `block_elements` probabilities; each block is
  reduced over its rows (one matrix-vector product) and accumulated in float32 (or wider), then over heads.

Also here: the pooling of the statistic to one value per LLM token, and FastV's top-k. Pure torch,
no model code; deterministic (a fixed reduction order for given shapes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .selection import _compute_dtype  # at least float32, as `selection.received_attention`

BLOCK_ELEMENTS = 1 << 20  # probabilities held at once (4 MiB in float32) unless MIN_BLOCK_ROWS needs more
LOG2_E = 1.4426950408889634  # log2(e): softmax in base 2
MIN_BLOCK_ROWS = 64  # query rows per block at least: fewer make the matmul slow (measured on CPU)


def _window_runs(lengths: Sequence[int]) -> list[tuple[int, int, int]]:
    """Maximal runs of adjacent equal-length windows: (start token, window length, windows in the run)."""
    runs, start = [], 0
    for n in lengths:
        if runs and runs[-1][1] == n and runs[-1][0] + runs[-1][1] * runs[-1][2] == start:
            s, length, count = runs[-1]
            runs[-1] = (s, length, count + 1)
        else:
            runs.append((start, n, 1))
        start += n
    return runs


def _received_batch(q: torch.Tensor, k: torch.Tensor, scale: float, block_elements: int) -> torch.Tensor:
    """Received attention of B windows of n tokens each, summed over heads (not yet averaged).

    q, k: (H, B, n, d) in the compute dtype. Returns (B, n). Per block of b query rows: the logits are turned
    into unnormalised probabilities in place (2^(logit - row max), logits in base 2), and the sum over the rows of the
    normalised probabilities is one matrix-vector product with the rows' reciprocal normalisers -- no second
    pass to divide, and no strided reduction over rows.
    """
    H, B, n, _ = q.shape
    rows = max(MIN_BLOCK_ROWS, block_elements // max(1, H * B * n))  # query rows per block
    # softmax(l) = 2^(l log2 e - max) / sum: the queries carry scale * log2(e), so one exp2 per probability
    # (cheaper than exp on a CPU) gives the same probabilities.
    q, kt = q * (scale * LOG2_E), k.transpose(-1, -2)  # (H, B, n, d) scaled queries, (H, B, d, n)
    out = torch.zeros(H, B, 1, n, dtype=q.dtype, device=q.device)  # (H, B, 1, n) per head
    for r0 in range(0, n, rows):
        e = torch.matmul(q[:, :, r0 : r0 + rows], kt)  # (H, B, b, n) logits in base 2, query x key
        e.sub_(e.amax(dim=-1, keepdim=True)).exp2_()  # (H, B, b, n) 2^(logit - row max)
        inv_z = e.sum(dim=-1, keepdim=True).reciprocal_()  # (H, B, b, 1) 1 / softmax normaliser per row
        out.add_(torch.matmul(inv_z.transpose(-1, -2), e))  # (H, B, 1, n): sum over rows of softmax rows
    return out.sum(dim=0).squeeze(1)  # (B, n) summed over heads


def windowed_received_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    lengths: Sequence[int],
    scale: float | None = None,
    *,
    block_elements: int = BLOCK_ELEMENTS,
) -> torch.Tensor:
    """Attention each token receives inside its window, for consecutive ragged windows (spec §1).

    q, k: (H, N, d) queries and keys of the whole sequence; lengths: token counts of the consecutive windows
    (sum = N, each >= 1). Per window: non-causal softmax over the window's keys, mean over heads, summed over the
    window's query rows -- `selection.received_attention` of that window, computed block by block.
    Returns (N,) in float32 (float64 for float64 inputs); each window's values sum to its length.
    scale defaults to d ** -0.5. Memory: about `block_elements` probabilities at a time (plus q and k).
    """
    if q.dim() != 3 or q.shape != k.shape:
        raise ValueError(
            f"q and k must both be (H, N, d) with equal shapes, got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    lengths = [int(n) for n in lengths]
    if any(n < 1 for n in lengths) or sum(lengths) != q.shape[1]:
        raise ValueError(f"window lengths must be >= 1 and sum to N = {q.shape[1]}, got {lengths}")
    if block_elements < 1:
        raise ValueError(f"block_elements must be >= 1, got {block_elements}")
    H, _, d = q.shape
    scale = d**-0.5 if scale is None else scale
    dtype = _compute_dtype(q.dtype)
    q, k = q.to(dtype).contiguous(), k.to(dtype).contiguous()  # (H, N, d); the hooks pass transposes
    parts = []
    for start, n, count in _window_runs(lengths):
        span = slice(start, start + n * count)
        qb = q[:, span].reshape(H, count, n, d)  # (H, B, n, d): a view of adjacent windows
        kb = k[:, span].reshape(H, count, n, d)
        parts.append(_received_batch(qb, kb, scale, block_elements).reshape(-1))  # (B * n,)
    return torch.cat(parts) / H  # (N,) head mean


def chunked_received_attention(
    q: torch.Tensor, k: torch.Tensor, bounds: list[int], scale: float | None = None
) -> torch.Tensor:
    """Attention each row receives inside its chunk, chunks [bounds[i], bounds[i+1]) (spec §1 a_j).

    q, k: (H, N, d); bounds: increasing ints from 0 to N (empty chunks are skipped). Returns (N,) in row order,
    computed block by block by `windowed_received_attention`.
    """
    if not bounds or bounds[0] != 0 or bounds[-1] != q.shape[1]:
        raise ValueError(f"bounds must run from 0 to N={q.shape[1]}, got {bounds[:3]}...{bounds[-2:]}")
    lengths = [e - s for s, e in zip(bounds[:-1], bounds[1:]) if e > s]
    return windowed_received_attention(q, k, lengths, scale)  # (N,)


def fixed_chunks(n: int, size: int) -> list[int]:
    """Bounds of consecutive chunks of `size` rows over n rows (the last may be short)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [*range(0, n, size), n]


def pool_rows(x: torch.Tensor, group: int) -> torch.Tensor:
    """Mean over consecutive groups of `group` values, dropping an incomplete last group (AvgPool1d(group)).

    x: (N,) -> (N // group,). group=1 returns x. Used for the audio encoder's stride-2 pooling (Qwen2.5-Omni:
    encoder rows 2j and 2j+1 become audio token j) and the 2x2 vision merge (group 4, merge units contiguous).
    """
    if group < 1:
        raise ValueError(f"group must be >= 1, got {group}")
    if group == 1:
        return x
    n = x.shape[0] // group
    return x[: n * group].reshape(n, group).mean(1)  # (N // group,)


def topk_mask(scores: torch.Tensor, groups: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    """Global top-k per group (FastV, spec §5): keep the `k` highest `scores` among each group's indices.

    scores: (N,); groups: (indices (n_g,) long into scores, k_g). Ties go to the lower index. Returns (N,) bool.
    """
    keep = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    for idx, k in groups:
        if k <= 0 or idx.numel() == 0:
            continue
        order = torch.sort(
            scores[idx].float(), descending=True, stable=True
        ).indices  # (n_g,) ties: lower first
        keep[idx[order[:k]]] = True
    return keep


def video_token_importance(
    q: torch.Tensor,
    k: torch.Tensor,
    scale: float,
    window_patches: int,
    merge_units: int,
    order: torch.Tensor | None = None,
    received=None,
) -> torch.Tensor:
    """Stage-I importance of each LLM video token (spec §1): the attention each patch receives in the last vision
    block inside its window of `window_patches` patches, head mean, averaged per merge group of `merge_units`
    patches, in video-token order (`order`: encoder row -> raster, None when the rows are raster already).

    q, k: (H, N, d) in the encoder's row order -> (N / merge_units,). `received(q, k, bounds, scale)` computes the
    per-chunk statistic: default the in-place kernel `chunked_received_attention`; pass a differentiable one to
    keep gradients (the miniature's training script does)."""
    received = chunked_received_attention if received is None else received
    imp = received(q, k, fixed_chunks(q.shape[1], window_patches), scale)  # (N,) per patch
    per_token = pool_rows(imp, merge_units)  # (N / merge_units,) encoder order
    return per_token if order is None else per_token[order]
