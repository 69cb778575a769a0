"""Fusion, measured: how much attention each group of query tokens pays to each group of keys (issue 23).

The paper motivates SEATS with where the answer stops needing the clip (SEATS_SPEC §8) and with the block-wise
pattern of cross-modal attention (audio and video tokens read mostly their own time window). These functions
measure both from one layer's queries and keys, exactly as the model's causal softmax weighs them, without ever
holding an (H, S, S) tensor: query rows go through in blocks, each block's probabilities are reduced to per-group
masses at once.

Conventions: queries and keys arrive with (M-)RoPE (and any q/k norm) applied; grouped-query attention as
transformers' `repeat_kv` (query head h reads KV head h // (H / H_kv)); a key is visible to a query when its
original position is not later (positions stay in original token coordinates, so a pruned sequence, whose kept
tokens keep their order, is handled by the same rule); probabilities are head means, in float32 or wider.
"""

from __future__ import annotations

import torch

BLOCK_ELEMENTS = 1 << 24  # logits per query block (H x rows x keys): 64 MiB in float32, whatever the prompt


def _check(q: torch.Tensor, k: torch.Tensor) -> None:
    if q.dim() != 3 or k.dim() != 3 or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q must be (H, R, d) and k (H_kv, S, d) with the same d, got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if k.shape[0] == 0 or q.shape[0] % k.shape[0]:
        raise ValueError(f"H ({q.shape[0]}) must be a multiple of H_kv ({k.shape[0]})")


def head_mean_attention(
    q: torch.Tensor, k: torch.Tensor, scale: float, query_pos: torch.Tensor, key_pos: torch.Tensor
) -> torch.Tensor:
    """Head-mean causal attention probabilities of R query rows over S keys.

    q: (H, R, d); k: (H_kv, S, d); query_pos (R,), key_pos (S,): original positions (long). A query sees the keys
    at its own position or earlier and must see at least one. Returns (R, S) in float32 (or wider); rows sum to 1.
    """
    _check(q, k)
    heads, rows, d = q.shape
    kv_heads, keys = k.shape[:2]
    dtype = torch.promote_types(q.dtype, torch.float32)
    qg = q.to(dtype).reshape(kv_heads, heads // kv_heads, rows, d)  # (H_kv, H/H_kv, R, d)
    logits = (qg @ k.to(dtype).transpose(1, 2)[:, None]) * scale  # (H_kv, H/H_kv, R, S)
    future = key_pos[None, :] > query_pos[:, None]  # (R, S) keys after the query
    logits = logits.masked_fill(future, float("-inf"))
    return logits.softmax(dim=-1).mean(dim=(0, 1))  # (R, S)


def group_mass(
    q: torch.Tensor,
    k: torch.Tensor,
    scale: float,
    query_pos: torch.Tensor,
    key_pos: torch.Tensor,
    key_group: torch.Tensor,
    num_groups: int,
    *,
    query_window: torch.Tensor | None = None,
    key_window: torch.Tensor | None = None,
    block_elements: int = BLOCK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per query row, the head-mean attention mass on each key group, and the part of it in the query's window.

    q: (H, R, d); k: (H_kv, S, d); query_pos (R,), key_pos (S,) original positions; key_group (S,) long in
    [0, num_groups). query_window (R,) / key_window (S,): time-window ids, negative where a token has none (text);
    give both or neither. Rows go through in blocks of max(1, block_elements // (H * S)).

    Returns mass (R, G), each row summing to 1, and same (R, G): the mass on keys whose window equals the query's
    (0 for a query without a window), or None without windows.
    """
    _check(q, k)
    if (query_window is None) != (key_window is None):
        raise ValueError("give query_window and key_window together, or neither")
    heads, rows = q.shape[:2]
    onehot = torch.nn.functional.one_hot(key_group, num_groups)  # (S, G)
    block = max(1, block_elements // max(1, heads * k.shape[1]))
    mass, same = [], []
    for start in range(0, rows, block):
        sl = slice(start, start + block)
        probs = head_mean_attention(q[:, sl], k, scale, query_pos[sl], key_pos)  # (B, S)
        mass.append(probs @ onehot.to(probs.dtype))  # (B, G)
        if key_window is not None:
            qw = query_window[sl]
            own = (key_window[None, :] == qw[:, None]) & (
                qw[:, None] >= 0
            )  # (B, S) keys in the query's window
            same.append((probs * own) @ onehot.to(probs.dtype))  # (B, G)
    return torch.cat(mass), (torch.cat(same) if key_window is not None else None)


def group_means(values: torch.Tensor, query_group: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Mean of the rows of `values` (R, C) per query group (R,) -> (num_groups, C); NaN rows for empty groups.

    With `values` the per-row masses of `group_mass`, this is the modality matrix: row g = where group g's tokens
    attend on average, summing to 1.
    """
    onehot = torch.nn.functional.one_hot(query_group, num_groups).to(values.dtype)  # (R, G)
    counts = onehot.sum(0)  # (G,)
    sums = onehot.T @ values  # (G, C)
    return sums / counts[:, None].where(counts[:, None] > 0, torch.nan)


def within_window_share(
    mass: torch.Tensor, same: torch.Tensor, query_group: torch.Tensor, num_groups: int
) -> torch.Tensor:
    """Share of each cell's attention that stays in the query's own time window -> (num_groups, num_groups).

    mass, same: (R, G) from `group_mass`; query_group (R,). Cell (g, h) = sum of `same` over group g's rows / sum
    of `mass` over them (a mass-weighted share); NaN where group g has no rows or pays group h no attention.
    """
    onehot = torch.nn.functional.one_hot(query_group, num_groups).to(mass.dtype)  # (R, G)
    total = onehot.T @ mass  # (G, G)
    return (onehot.T @ same) / total.where(total > 0, torch.nan)
