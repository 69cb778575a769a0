"""Query relevance at a Stage II drop (spec §2 "Query relevance score").

The score of a token is the attention the last prompt token pays to it: one query row per head, softmax over
all current tokens, mean over heads. Queries and keys arrive with (M-)RoPE already applied; only one row is
computed, so the attention kernel used by the model (SDPA, flash) does not matter.
"""

from __future__ import annotations

import torch


def last_token_relevance(query: torch.Tensor, keys: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Head-mean attention of the last prompt token to every current token (spec §2).

    query: (H, d) the last prompt token's query for all H heads; keys: (H_kv, S, d) with H divisible by H_kv.
    Grouped-query attention as transformers' repeat_kv: query head h reads kv head h // (H / H_kv).
    scale defaults to d ** -0.5. Softmax over the S keys in float32 (or wider). Returns (S,), summing to 1.
    """
    if query.dim() != 2 or keys.dim() != 3 or query.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"query must be (H, d) and keys (H_kv, S, d) with the same d, got {tuple(query.shape)} and "
            f"{tuple(keys.shape)}"
        )
    heads, head_dim = query.shape
    kv_heads, seq = keys.shape[:2]
    if seq == 0 or kv_heads == 0 or heads % kv_heads:
        raise ValueError(
            f"need S >= 1 and H ({heads}) divisible by H_kv ({kv_heads}), keys {tuple(keys.shape)}"
        )
    scale = head_dim**-0.5 if scale is None else scale
    dtype = torch.promote_types(query.dtype, torch.float32)
    q = query.to(dtype).reshape(
        kv_heads, heads // kv_heads, head_dim
    )  # (H_kv, H/H_kv, d) head h -> kv h // rep
    logits = q @ keys.to(dtype).transpose(1, 2) * scale  # (H_kv, H/H_kv, S)
    return logits.softmax(dim=-1).reshape(heads, seq).mean(dim=0)  # (S,)
