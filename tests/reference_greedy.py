"""Reference for the one-loop Stage-I greedy: the previous implementation, one window at a time.

`_batched_max_min` is the batched greedy that `select_windows` replaced (kept here unchanged as the reference:
one batched matrix-vector step per pick, boolean kept mask, per-window loop lengths). `diversity_select` is the
plain reference on random inputs; on the test clips it can disagree with any batched product at float near-ties
(its distances come from matrix-vector products), so the hooks are compared with this one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seats_core.method.selection import NORM_EPS


def select_windows(features, window, keep, importance=None):
    """Same contract as seats_core.method.select_windows, computed window by window with `_batched_max_min`."""
    x = F.normalize(features.float(), dim=-1, eps=NORM_EPS)
    kept = []
    for w, k in zip(torch.unique(window).tolist(), keep):
        idx = (window == w).nonzero().squeeze(1)
        n = len(idx)
        a = torch.ones(1, n) if importance is None else importance.float()[idx][None]
        mask = _batched_max_min(x[idx][None], torch.ones(1, n, dtype=torch.bool), a, torch.tensor([k]))
        kept.append(idx[mask[0]])
    return torch.cat(kept).sort().values


def _argmax_first_rows(values: torch.Tensor) -> torch.Tensor:
    """(W,) per-row index of the largest value, lowest index among ties."""
    index = torch.arange(values.shape[1], device=values.device).expand_as(values)  # (W, n)
    best = values.max(dim=1, keepdim=True).values  # (W, 1)
    return torch.where(values == best, index, values.shape[1]).min(dim=1).values  # (W,)


def _batched_max_min(x: torch.Tensor, valid: torch.Tensor, a: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Greedy weighted max-min diversity in W padded windows at once (same picks as diversity_select).

    x: (W, n, D) unit rows; valid: (W, n) real tokens; a: (W, n) importance; k: (W,) picks per window.
    Returns (W, n) bool: the kept tokens.
    """
    W, n, _ = x.shape
    rows = torch.arange(W, device=x.device)  # (W,)
    neg = torch.tensor(float("-inf"), dtype=x.dtype, device=x.device)
    kept = torch.zeros(W, n, dtype=torch.bool, device=x.device)
    full = k >= valid.sum(1)  # (W,) windows that keep everything
    kept |= valid & full[:, None]
    need = k.masked_fill(full, 0)  # (W,) picks still to make; 0 for windows that keep everything
    # The only host read: the loop length, and whether any window is padded (equal windows are not).
    steps, padded = torch.stack([need.max(), (~valid).any().long()]).tolist()

    sim = x @ x.transpose(1, 2)  # (W, n, n) cosine similarities
    sim.diagonal(dim1=1, dim2=2).fill_(float("-inf"))  # not its own neighbour
    if padded:
        sim.masked_fill_(~valid[:, None, :], float("-inf"))  # padding is nobody's neighbour
    nearest = 1 - sim.amax(dim=2)  # (W, n) distance to the nearest other token (= min of 1 - sim exactly)
    nearest = torch.where(nearest.isinf(), torch.zeros_like(nearest), nearest)  # single-token windows
    first = _argmax_first_rows(torch.where(valid, a * nearest, neg))  # (W,)
    kept[rows, first] |= need > 0
    sim_rows = sim.view(W * n, n)  # (W * n, n): row w * n + j is window w's token j
    base = rows * n  # (W,)
    min_dist = 1 - sim_rows.index_select(0, base + first)  # (W, n) distance to the first pick (self: inf)
    # Inside the loop everything stays on the device (no .item/.tolist, no boolean indexing): a window that
    # has all its picks just stops changing.
    active = need > torch.arange(steps, device=x.device)[:, None]  # (steps, W): window still picking at step
    for step in range(1, steps):
        value = torch.where(valid > kept, a * min_dist, neg)  # (W, n) candidates: valid and not kept
        j = value.argmax(dim=1)  # (W,) first maximum per row: ties -> lower index
        kept[rows, j] |= active[step]
        torch.minimum(min_dist, 1 - sim_rows.index_select(0, base + j), out=min_dist)  # (W, n)
    return kept
