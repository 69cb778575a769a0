"""Stage-I importance without whole attention matrices (spec §1): equal to `received_attention`, the reference.

The reference materialises each window's (H, n, n) softmax (`selection.received_attention`, window by window);
the blocked, batched statistic must give the same values on random ragged windows in float32 and bfloat16.
"""

import pytest
import torch

import seats_core.method.importance as importance
from seats_core.method import received_attention, windowed_received_attention

RTOL = 1e-5


def reference(q, k, lengths, scale=None):
    """selection.received_attention per window, concatenated."""
    bounds = torch.tensor([0, *lengths]).cumsum(0).tolist()
    return torch.cat([received_attention(q[:, s:e], k[:, s:e], scale) for s, e in zip(bounds, bounds[1:])])


def ragged_lengths(g, n_windows, full, short_last=True):
    """n_windows - 1 full windows and a shorter last one (the vision and audio layouts), or random lengths."""
    if short_last:
        return [full] * (n_windows - 1) + [int(torch.randint(1, full + 1, (1,), generator=g))]
    return torch.randint(1, full + 1, (n_windows,), generator=g).tolist()


def assert_relative(out, ref):
    assert out.dtype == ref.dtype and out.shape == ref.shape
    rel = ((out - ref).abs() / ref.abs()).max().item()
    assert rel <= RTOL, rel


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seed", range(6))
def test_equals_reference_on_ragged_windows(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    H, d = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(4, 33, (1,), generator=g))
    lengths = ragged_lengths(g, int(torch.randint(1, 7, (1,), generator=g)), 96, short_last=seed % 2 == 0)
    N = sum(lengths)
    q = (torch.randn(H, N, d, generator=g) * 2).to(dtype)  # (H, N, d), logits of a few units
    k = (torch.randn(H, N, d, generator=g) * 2).to(dtype)
    scale = None if seed % 3 else 0.3
    ref = reference(q, k, lengths, scale)
    assert_relative(windowed_received_attention(q, k, lengths, scale), ref)
    # tiny blocks: many blocks per window, a ragged last block
    assert_relative(windowed_received_attention(q, k, lengths, scale, block_elements=1), ref)


def test_one_query_row_per_block(monkeypatch):
    monkeypatch.setattr(importance, "MIN_BLOCK_ROWS", 1)
    g = torch.Generator().manual_seed(7)
    q, k = torch.randn(3, 45, 8, generator=g), torch.randn(3, 45, 8, generator=g)
    lengths = [20, 20, 5]
    assert_relative(windowed_received_attention(q, k, lengths, block_elements=1), reference(q, k, lengths))


def test_window_sums_dtype_and_isolation():
    g = torch.Generator().manual_seed(3)
    lengths = [10, 10, 4, 10]  # a short window between full ones: three batches
    q, k = torch.randn(2, 34, 8, generator=g), torch.randn(2, 34, 8, generator=g)
    out = windowed_received_attention(q, k, lengths)
    assert out.dtype == torch.float32
    sums = torch.stack([w.sum() for w in out.split(lengths)])
    torch.testing.assert_close(sums, torch.tensor(lengths, dtype=torch.float32))  # every query row sums to 1
    k2 = k.clone()
    k2[:, 20:] = 0  # changing later windows leaves the first two alone
    torch.testing.assert_close(windowed_received_attention(q, k2, lengths)[:20], out[:20], rtol=0, atol=0)
    out64 = windowed_received_attention(q.double(), k.double(), lengths)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64, reference(q.double(), k.double(), lengths))


def test_window_runs():
    assert importance._window_runs([5, 5, 5, 2]) == [(0, 5, 3), (15, 2, 1)]
    assert importance._window_runs([3, 4, 4, 3]) == [(0, 3, 1), (3, 4, 2), (11, 3, 1)]


def test_refusals():
    q = torch.randn(2, 6, 4)
    with pytest.raises(ValueError, match=r"\(H, N, d\)"):
        windowed_received_attention(q, q[:, :5], [6])
    with pytest.raises(ValueError, match="sum to N"):
        windowed_received_attention(q, q, [4, 3])
    with pytest.raises(ValueError, match=">= 1"):
        windowed_received_attention(q, q, [6, 0])
    with pytest.raises(ValueError, match="block_elements"):
        windowed_received_attention(q, q, [6], block_elements=0)
