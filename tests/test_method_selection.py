"""Stage I selection and pre-LLM baselines (spec §1, §5), checked by hand and against naive references."""

import pytest
import torch

import seats_core.method.selection as selection
from seats_core.method import (
    block_windows,
    diversity_select,
    pool_pairs,
    random_select,
    received_attention,
    select_per_window,
    select_windows,
    visionzip_select,
    window_keep_count,
)

# Four 2-D points: 0 and 1 almost parallel, 2 orthogonal to 0, 3 opposite to 0.
POINTS = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])


def naive_diversity(x, k, a):
    """Reference: the full N x N cosine-distance matrix and a plain Python greedy loop."""
    xn = x / x.norm(dim=1, keepdim=True)
    dist = 1 - xn @ xn.T
    n = len(x)
    nearest = [min(dist[i, j].item() for i in range(n) if i != j) for j in range(n)]
    values = [a[j].item() * nearest[j] for j in range(n)]
    chosen = [values.index(max(values))]
    while len(chosen) < k:
        best, best_j = -float("inf"), None
        for j in range(n):
            if j not in chosen:
                v = a[j].item() * min(dist[s, j].item() for s in chosen)
                if v > best:
                    best, best_j = v, j
        chosen.append(best_j)
    return sorted(chosen)


def test_max_min_by_hand():
    # nearest-other distances: 0.0061, 0.0061, 0.8896, 1.0 -> first pick 3; then 0 (d=2), then 2 (d=1 vs 0.0061)
    assert diversity_select(POINTS, 1).tolist() == [3]
    assert diversity_select(POINTS, 2).tolist() == [0, 3]
    assert diversity_select(POINTS, 3).tolist() == [0, 2, 3]


def test_importance_changes_the_pick():
    # a_2 = 3: 3 * 0.8896 beats 1 * 1.0, so 2 goes first; then 0 and 3 tie at distance 1 -> lower index 0
    importance = torch.tensor([1.0, 1.0, 3.0, 1.0])
    assert diversity_select(POINTS, 1, importance).tolist() == [2]
    assert diversity_select(POINTS, 2, importance).tolist() == [0, 2]


@pytest.mark.parametrize("seed", range(6))
def test_matches_naive_reference(seed):
    g = torch.Generator().manual_seed(seed)
    n = 5 + seed * 7
    x = torch.randn(n, 8, generator=g, dtype=torch.float64)
    a = torch.rand(n, generator=g, dtype=torch.float64)
    for k in (1, 2, n // 2, n - 1):
        assert diversity_select(x, k, a).tolist() == naive_diversity(x, k, a)
        assert diversity_select(x, k).tolist() == naive_diversity(x, k, torch.ones(n))


def test_chunked_distances_agree(monkeypatch):
    x = torch.randn(37, 6, generator=torch.Generator().manual_seed(0))
    full = diversity_select(x, 9)
    monkeypatch.setattr(selection, "DISTANCE_CHUNK", 5)
    assert torch.equal(diversity_select(x, 9), full)


def test_sorted_unique_deterministic_and_edges():
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(1))
    a = torch.rand(50, generator=torch.Generator().manual_seed(2))
    out = diversity_select(x, 20, a)
    assert out.dtype == torch.long and len(out) == 20
    assert torch.equal(out, out.unique())  # unique() returns sorted values
    assert all(torch.equal(out, diversity_select(x, 20, a)) for _ in range(3))
    assert torch.equal(diversity_select(x, 50, a), torch.arange(50))
    assert diversity_select(x[:1], 1).tolist() == [0]
    assert len(diversity_select(x.bfloat16(), 10, a)) == 10


def test_ties_go_to_lower_index():
    same = torch.ones(6, 3)
    assert diversity_select(same, 3).tolist() == [0, 1, 2]
    # the four axis directions: every nearest distance is exactly 1 -> 0 first; then 2 (distance 2);
    # then 1 and 3 tie at distance 1 -> 1
    axes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert diversity_select(axes, 1).tolist() == [0]
    assert diversity_select(axes, 2).tolist() == [0, 2]
    assert diversity_select(axes, 3).tolist() == [0, 1, 2]


def test_diversity_refusals():
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        diversity_select(POINTS, 0)
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        diversity_select(POINTS, 5)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        diversity_select(torch.ones(4), 1)
    with pytest.raises(ValueError, match="importance must be"):
        diversity_select(POINTS, 2, torch.ones(3))


def test_select_per_window_counts_and_selection():
    g = torch.Generator().manual_seed(3)
    window = torch.tensor([0] * 10 + [2] * 7 + [1] * 3 + [3])[torch.randperm(21, generator=g)]
    x = torch.randn(21, 5, generator=g)
    a = torch.rand(21, generator=g)
    out = select_per_window(x, window, 0.25, a)
    assert torch.equal(out, out.unique())
    # round half to even (§9): 10 * 0.25 = 2.5 -> 2, 7 * 0.25 = 1.75 -> 2, 3 * 0.25 -> 1, 1 * 0.25 -> max(1, 0)
    counts = torch.bincount(window[out], minlength=4).tolist()
    assert counts == [2, 1, 2, 1]
    assert [window_keep_count(n, 0.25) for n in (10, 3, 7, 1)] == counts
    up = select_per_window(x, window, 0.25, a, rounding="half_up")  # 2.5 -> 3 in window 0
    assert torch.bincount(window[up], minlength=4).tolist() == [3, 1, 2, 1]
    assert window_keep_count(50, 0.55 * 1.4) == 38 and window_keep_count(50, 0.55 * 1.4, "half_up") == 39
    assert window_keep_count(0, 0.5) == 0
    for w in range(4):
        idx = (window == w).nonzero().squeeze(1)
        expected = idx[diversity_select(x[idx], counts[w], a[idx])]
        assert torch.equal(out[window[out] == w], expected.sort().values)
    assert block_windows(7, 3).tolist() == [0, 0, 0, 1, 1, 1, 2]
    with pytest.raises(ValueError, match="ratio"):
        select_per_window(x, window, 0.0)
    with pytest.raises(ValueError, match="window must be"):
        select_per_window(x, window[:5], 0.5)


def test_random_select():
    out = random_select(100, 30, torch.Generator().manual_seed(0))
    assert len(out) == 30 and torch.equal(out, out.unique()) and int(out.max()) < 100
    assert torch.equal(out, random_select(100, 30, torch.Generator().manual_seed(0)))
    assert torch.equal(random_select(5, 5), torch.arange(5))
    with pytest.raises(ValueError, match="k must be"):
        random_select(5, 6)


def test_visionzip_by_hand():
    importance = torch.tensor([0.0, 5.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0])
    x = torch.tensor(
        [[1.0, 0.0], [7.0, 7.0], [2.0, 0.1], [0.1, 3.0], [-7.0, 7.0], [0.0, 1.0], [1.0, 1.0], [0.2, 1.0]]
    )
    # n_ctx = round(0.25 * 8) = 2; dominant 1, 4; remaining 0 2 3 5 6 7, step 3 -> targets 0 and 5.
    # 2 -> 0, 3 -> 5, 7 -> 5, 6 is equally close to both -> the lower target 0.
    kept, feats = visionzip_select(x, importance, 4, contextual_fraction=0.25)
    assert kept.tolist() == [0, 1, 4, 5]
    expected = torch.stack([(x[0] + x[2] + x[6]) / 3, x[1], x[4], (x[5] + x[3] + x[7]) / 3])
    torch.testing.assert_close(feats, expected)


def test_visionzip_shapes_and_edges():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, 6, generator=g)
    a = torch.rand(40, generator=g)
    for k in (1, 2, 3, 10, 39, 40):
        kept, feats = visionzip_select(x, a, k)
        assert len(kept) == k and feats.shape == (k, 6) and torch.equal(kept, kept.unique())
    kept, feats = visionzip_select(x, a, 1)  # no contextual token: the top-1 by importance, unchanged
    assert kept.tolist() == [int(a.argmax())] and torch.equal(feats, x[kept])
    kept, feats = visionzip_select(x, a, 10)  # n_ctx = round(0.05 * 40) = 2: 8 dominant rows unchanged
    dominant = a.topk(8).indices
    rows = {i: r for i, r in zip(kept.tolist(), feats)}
    assert all(torch.equal(rows[i], x[i]) for i in dominant.tolist())
    with pytest.raises(ValueError, match="k must be"):
        visionzip_select(x, a, 0)


def test_received_attention():
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(3, 7, 4, generator=g), torch.randn(3, 7, 4, generator=g)
    out = received_attention(q, k)
    assert out.shape == (7,)
    assert out.sum().item() == pytest.approx(7.0, rel=1e-5)
    naive = torch.zeros(7)
    for h in range(3):
        for i in range(7):
            logits = torch.tensor([(q[h, i] @ k[h, j]).item() / 2.0 for j in range(7)])  # sqrt(4) = 2
            naive += logits.softmax(0) / 3
    torch.testing.assert_close(out, naive)
    torch.testing.assert_close(received_attention(q, k, scale=1.0), received_attention(q * 2, k))
    with pytest.raises(ValueError, match=r"\(H, n, d\)"):
        received_attention(q, k[:, :5])


def test_pool_pairs():
    x = torch.arange(7, dtype=torch.float32)
    assert pool_pairs(x, 2).tolist() == [0.5, 2.5, 4.5, 6.0]  # the incomplete tail is its own mean
    assert pool_pairs(x, 4).tolist() == [1.5, 5.0]
    m = torch.arange(12, dtype=torch.float64).reshape(6, 2)
    torch.testing.assert_close(pool_pairs(m, 2), m.reshape(3, 2, 2).mean(1))
    assert pool_pairs(x.half(), 2).dtype == torch.float16
    with pytest.raises(ValueError, match="group"):
        pool_pairs(x, 0)


@pytest.mark.parametrize("seed", range(12))
def test_select_per_window_batched_equals_per_window_loop(seed):
    """The batched greedy picks exactly what diversity_select picks window by window (the reference)."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 200, (1,), generator=g))
    feats = torch.randn(n, 6, generator=g)
    window = torch.randint(0, 5, (n,), generator=g)
    if seed % 2:
        window = window.sort().values
    importance = torch.rand(n, generator=g) if seed % 3 else None
    ratio = float(torch.rand(1, generator=g)) * 0.9 + 0.05
    expected = []
    for w in torch.unique(window).tolist():
        idx = (window == w).nonzero().squeeze(1)
        sub = None if importance is None else importance[idx]
        expected.append(idx[diversity_select(feats[idx], window_keep_count(len(idx), ratio), sub)])
    assert torch.equal(select_per_window(feats, window, ratio, importance), torch.cat(expected).sort().values)


@pytest.mark.parametrize("seed", range(10))
def test_select_windows_two_modalities_in_one_loop_equal_per_window_reference(seed):
    """Video blocks and audio blocks of different sizes and keep ratios, selected in one loop: each window keeps
    what diversity_select keeps in it alone (windows keeping everything, single tokens, fp32 and bf16)."""
    g = torch.Generator().manual_seed(100 + seed)
    dtype = torch.bfloat16 if seed % 2 else torch.float32
    nv, na = int(torch.randint(1, 300, (1,), generator=g)), int(torch.randint(1, 120, (1,), generator=g))
    bv, ba = int(torch.randint(1, 90, (1,), generator=g)), int(torch.randint(1, 40, (1,), generator=g))
    feats = torch.randn(nv + na, 8, generator=g).to(dtype)
    window = torch.cat([torch.arange(nv) // bv, (nv + bv - 1) // bv + torch.arange(na) // ba])
    importance = torch.rand(nv + na, generator=g) if seed % 3 else None
    rv, ra = float(torch.rand(1, generator=g)), 1.0 if seed == 4 else float(torch.rand(1, generator=g))
    if seed % 4 == 1:  # windows need not be contiguous: only the ids matter (ties follow the token order)
        perm = torch.randperm(nv + na, generator=g)
        feats, window = feats[perm], window[perm]
        importance = None if importance is None else importance[perm]
    keep, expected = [], []
    for w in torch.unique(window).tolist():
        idx = (window == w).nonzero().squeeze(1)
        k = window_keep_count(len(idx), rv if w < (nv + bv - 1) // bv else ra)
        keep.append(k)
        sub = None if importance is None else importance[idx]
        expected.append(idx[diversity_select(feats[idx], k, sub)])
    assert torch.equal(select_windows(feats, window, keep, importance), torch.cat(expected).sort().values)
    with pytest.raises(ValueError, match="keep"):
        select_windows(feats, window, keep[:-1], importance)


@pytest.mark.parametrize("seed", range(4))
def test_exact_ties_go_to_lower_index_everywhere(seed, monkeypatch):
    """Repeated tokens with exact distances (signed axis vectors: d is exactly 0, 1 or 2) and few distinct
    weights: the blocked first pass, the greedy without host reads and the batched windows all break the ties
    as the naive loop does, lower index first."""
    g = torch.Generator().manual_seed(seed)
    axes = torch.cat([torch.eye(4), -torch.eye(4)])  # (8, 4)
    x = axes[torch.randint(0, 8, (40,), generator=g)] * torch.randint(1, 4, (40, 1), generator=g)  # (40, 4)
    a = torch.randint(1, 3, (40,), generator=g).float()  # (40,) weights 1 or 2
    monkeypatch.setattr(selection, "DISTANCE_CHUNK", 7)  # ragged blocks, pairs read both ways
    for k in (1, 3, 6, 9):
        assert diversity_select(x, k, a).tolist() == naive_diversity(x, k, a)
        assert diversity_select(x, k).tolist() == naive_diversity(x, k, torch.ones(40))
    window = torch.arange(40) // 12  # windows of 12, 12, 12, 4
    for imp in (a, None):
        expected = []
        for w in range(4):
            idx = (window == w).nonzero().squeeze(1)
            sub = None if imp is None else imp[idx]
            kept = naive_diversity(
                x[idx], window_keep_count(len(idx), 0.4), torch.ones(len(idx)) if sub is None else sub
            )
            expected.append(idx[kept])
        assert torch.equal(select_per_window(x, window, 0.4, imp), torch.cat(expected).sort().values)
