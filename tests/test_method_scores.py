"""Query relevance at a drop (spec §2): the last prompt token's head-mean attention, GQA as repeat_kv."""

import pytest
import torch
import torch.nn.functional as F

from seats_core.method import last_token_relevance


def make(heads=8, kv_heads=2, seq=11, dim=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(heads, dim, generator=g, dtype=dtype), torch.randn(
        kv_heads, seq, dim, generator=g, dtype=dtype
    )


def test_matches_naive_loop():
    query, keys = make(dtype=torch.float64)
    rep = 8 // 2
    naive = torch.zeros(11, dtype=torch.float64)
    for h in range(8):
        logits = torch.tensor(
            [float(query[h] @ keys[h // rep, s]) / 16**0.5 for s in range(11)], dtype=torch.float64
        )
        naive += torch.exp(logits) / torch.exp(logits).sum() / 8
    torch.testing.assert_close(last_token_relevance(query, keys), naive)


def test_matches_attention_with_repeated_keys():
    query, keys = make(heads=12, kv_heads=3, seq=20, dim=8, seed=1)
    full_keys = keys[:, None].expand(3, 4, 20, 8).reshape(12, 20, 8)  # transformers' repeat_kv order
    weights = (query[:, None] @ full_keys.transpose(1, 2) * 8**-0.5).softmax(-1)  # (12, 1, 20)
    torch.testing.assert_close(last_token_relevance(query, keys), weights[:, 0].mean(0))
    # SDPA with the identity as values returns the attention weights themselves
    sdpa = F.scaled_dot_product_attention(query[:, None], full_keys, torch.eye(20).expand(12, 20, 20))
    torch.testing.assert_close(last_token_relevance(query, keys), sdpa[:, 0].mean(0))


def test_properties():
    query, keys = make(seed=2)
    out = last_token_relevance(query, keys)
    assert out.shape == (11,) and out.dtype == torch.float32
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)
    low = last_token_relevance(query.bfloat16(), keys.bfloat16())
    assert low.dtype == torch.float32  # softmax in float32
    torch.testing.assert_close(
        last_token_relevance(query, keys, scale=1.0), last_token_relevance(query * 4, keys)
    )
    # multi-head attention (H_kv == H) and multi-query (H_kv == 1) also work
    assert last_token_relevance(*make(kv_heads=8)).shape == (11,)
    assert last_token_relevance(*make(kv_heads=1)).shape == (11,)


def test_gqa_head_mapping():
    # only kv head 1 has a preferred token; query heads 2, 3 (h // 2 == 1) look at it, the others see uniform keys
    keys = torch.zeros(2, 5, 4)
    keys[1, 3] = torch.tensor([10.0, 0, 0, 0])
    query = torch.zeros(4, 4)
    query[2:, 0] = 1.0
    out = last_token_relevance(query, keys)
    peak = torch.softmax(torch.tensor([0, 0, 0, 5.0, 0]), 0)  # 10 * 1 / sqrt(4)
    torch.testing.assert_close(out, (2 * torch.full((5,), 0.2) + 2 * peak) / 4)


def test_refusals():
    query, keys = make()
    with pytest.raises(ValueError, match="divisible"):
        last_token_relevance(query[:7], keys)
    with pytest.raises(ValueError, match=r"\(H, d\)"):
        last_token_relevance(query[:, :8], keys)
    with pytest.raises(ValueError, match=r"\(H, d\)"):
        last_token_relevance(query[None], keys)
