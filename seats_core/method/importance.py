"""Stage-I importance from encoder attention, pooled to one value per LLM token (spec §1).

The adapters supply q / k of the last vision block or audio layer and the attention chunks the encoder uses;
these functions turn them into one importance value per LLM token. Torch only.
"""

from __future__ import annotations

import torch

from .selection import received_attention


def chunked_received_attention(
    q: torch.Tensor, k: torch.Tensor, bounds: list[int], scale: float | None = None
) -> torch.Tensor:
    """Attention each row receives inside its chunk, chunks [bounds[i], bounds[i+1]) (spec §1 a_j).

    q, k: (H, N, d); bounds: increasing ints from 0 to N. Returns (N,) in row order.
    """
    if not bounds or bounds[0] != 0 or bounds[-1] != q.shape[1]:
        raise ValueError(f"bounds must run from 0 to N={q.shape[1]}, got {bounds[:3]}...{bounds[-2:]}")
    parts = [
        received_attention(q[:, s:e], k[:, s:e], scale) for s, e in zip(bounds[:-1], bounds[1:]) if e > s
    ]
    return torch.cat(parts)  # (N,)


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
