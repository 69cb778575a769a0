"""Stage II top-down budget (spec §2): exact totals, window and modality guarantees, hand-computed cases."""

import math

import pytest
import torch

from seats_core.method import allocate_budget, allocate_budget_detailed, round_half_up


def random_case(seed):
    g = torch.Generator().manual_seed(seed)
    num_windows = int(torch.randint(1, 9, (1,), generator=g))
    n = int(torch.randint(1, 80, (1,), generator=g))
    window = torch.randint(0, num_windows, (n,), generator=g)
    is_video = torch.rand(n, generator=g) < torch.rand(1, generator=g)
    scores = torch.rand(n, generator=g) * 10 ** -float(torch.randint(0, 5, (1,), generator=g))
    keep_v, keep_a = (float(v) for v in torch.rand(2, generator=g).clamp_min(0.01))
    return scores, is_video, window, keep_v, keep_a


@pytest.mark.parametrize("seed", range(100))
def test_random_properties(seed):
    scores, is_video, window, keep_v, keep_a = random_case(seed)
    keep, info = allocate_budget_detailed(scores, is_video, window, keep_v, keep_a)
    n_v, n_a = int(is_video.sum()), int((~is_video).sum())
    k_v = max(1, round_half_up(keep_v * n_v)) if n_v else 0
    k_a = max(1, round_half_up(keep_a * n_a)) if n_a else 0
    assert keep.dtype == torch.bool and keep.shape == scores.shape
    assert int(keep.sum()) == k_v + k_a == sum(info["window_budget"])
    assert (info["video_budget"], info["audio_budget"]) == (k_v, k_a)
    assert torch.equal(keep, allocate_budget(scores, is_video, window, keep_v, keep_a))  # deterministic

    sizes = torch.bincount(window, minlength=len(info["window_budget"])).tolist()
    if not info["fallback"] and k_v + k_a >= sum(s > 0 for s in sizes):
        assert all(b >= 1 for b, s in zip(info["window_budget"], sizes) if s > 0)
        for modality in (is_video, ~is_video):
            if modality.any():
                assert 1 <= int((keep & modality).sum()) <= int(modality.sum())
    if info["fallback"]:
        assert int((keep & is_video).sum()) == k_v and int((keep & ~is_video).sum()) == k_a
    for w in range(len(sizes)):  # the kept tokens are the top-scoring ones of each window and modality
        for modality in (is_video, ~is_video):
            group = (window == w) & modality
            kept, dropped = scores[group & keep], scores[group & ~keep]
            if info["fallback"]:
                kept, dropped = scores[modality & keep], scores[modality & ~keep]
            if len(kept) and len(dropped):
                assert kept.min() >= dropped.max()
    assert 0.0 <= info["weight_entropy"] <= 1.0 + 1e-12
    assert all(isinstance(v, float) for v in info["video_weight"] + info["audio_weight"])


def test_hand_computed_two_windows():
    # window 0: V V V A A, window 1: V V V A A
    scores = torch.tensor([0.5, 0.1, 0.3, 0.15, 0.25, 0.05, 0.2, 0.05, 0.3, 0.1])
    is_video = torch.tensor([1, 1, 1, 0, 0, 1, 1, 1, 0, 0], dtype=torch.bool)
    window = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    keep, info = allocate_budget_detailed(scores, is_video, window, 0.5, 0.5)
    # K_v = round(3) = 3, K_a = round(2) = 2, B = 5
    # mean video 0.3 / 0.1 -> w_v = softmax([3, 1]) = [0.8808, 0.1192]; mean audio 0.2 / 0.2 -> w_a = [0.5, 0.5]
    w0 = 1 / (1 + math.exp(-2))
    assert info["video_weight"] == pytest.approx([w0, 1 - w0])
    assert info["audio_weight"] == pytest.approx([0.5, 0.5])
    # B_t = round((w_v + w_a) / 2 * 5) = round(3.452) = 3, round(1.548) = 2; sum 5, no fix needed
    assert info["window_budget"] == [3, 2]
    # window 0: share = 0.8808*3 / (0.8808*3 + 0.5*2) = 0.7255 -> round(2.18) = 2 video, 1 audio
    # window 1: share = 0.1192*3 / (0.1192*3 + 0.5*2) = 0.2634 -> round(0.53) = 1 video, 1 audio
    assert info["window_video_budget"] == [2, 1] and info["window_audio_budget"] == [1, 1]
    assert keep.tolist() == [True, False, True, False, True, False, True, False, True, False]
    assert info["fallback"] is False
    p = [(w0 + 0.5) / 2, (1 - w0 + 0.5) / 2]
    assert info["weight_entropy"] == pytest.approx(-sum(q * math.log(q) for q in p) / math.log(2))


def test_rounding_fixes():
    # equal scores -> equal window weights, entropy 1
    is_video = torch.tensor([1, 0] * 6, dtype=torch.bool)
    # 3 windows of 4 tokens; B = 2 + 2 = 4; 4/3 -> 1 each, sum 3 < 4 -> the smallest with room, lowest id
    window = torch.arange(12) // 4
    keep, info = allocate_budget_detailed(torch.ones(12), is_video, window, 1 / 3, 1 / 3)
    assert info["window_budget"] == [2, 1, 1]
    assert info["weight_entropy"] == pytest.approx(1.0)
    # 2 windows of 6 tokens; B = 3 + 2 = 5; 2.5 -> 3 each, sum 6 > 5 -> take from the largest, lowest id
    window = torch.arange(12) // 6
    keep, info = allocate_budget_detailed(torch.ones(12), is_video, window, 0.5, 0.4)
    assert info["window_budget"] == [2, 3]
    assert int(keep.sum()) == 5


def test_ties_keep_lower_index():
    is_video = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    window = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    keep = allocate_budget(torch.ones(8), is_video, window, 0.5, 0.5)
    assert keep.tolist() == [True, False, True, False, True, False, True, False]


def test_global_fallback_is_plain_top_k():
    g = torch.Generator().manual_seed(7)
    scores = torch.rand(30, generator=g)
    is_video = torch.rand(30, generator=g) < 0.6
    one_window = torch.zeros(30, dtype=torch.long)
    keep, info = allocate_budget_detailed(scores, is_video, one_window, 0.3, 0.5)
    assert info["fallback"]
    for modality, ratio in ((is_video, 0.3), (~is_video, 0.5)):
        idx = modality.nonzero().squeeze(1)
        k = max(1, round_half_up(ratio * len(idx)))
        assert (
            keep.nonzero().squeeze(1)[modality[keep]].tolist()
            == idx[scores[idx].topk(k).indices].sort().values.tolist()
        )
    video_only = torch.ones(30, dtype=torch.bool)
    windows = torch.arange(30) % 3
    keep, info = allocate_budget_detailed(scores, video_only, windows, 0.2, 0.5)
    assert (
        info["fallback"]
        and keep.nonzero().squeeze(1).tolist() == scores.topk(6).indices.sort().values.tolist()
    )


def test_starved_modality_gets_one():
    # 4 windows of 1 video + 1 audio each, K_v = 1, K_a = 3: every B_t = 1 and every window prefers audio
    is_video = torch.tensor([1, 0] * 4, dtype=torch.bool)
    window = torch.arange(8) // 2
    scores = torch.tensor([0.1, 0.2, 0.1, 0.2, 0.9, 0.2, 0.1, 0.2])
    keep, info = allocate_budget_detailed(scores, is_video, window, 0.25, 0.75)
    assert info["window_budget"] == [1, 1, 1, 1]
    assert int((keep & is_video).sum()) == 1 and bool(keep[4])  # the window with the largest video weight


def test_empty_and_refusals():
    empty = torch.zeros(0)
    keep, info = allocate_budget_detailed(empty, empty.bool(), empty.long(), 0.5, 0.5)
    assert keep.shape == (0,) and info["window_budget"] == []
    scores, is_video, window = (
        torch.rand(4),
        torch.tensor([1, 0, 1, 0], dtype=torch.bool),
        torch.tensor([0, 0, 1, 1]),
    )
    with pytest.raises(ValueError, match=r"must all be \(N,\)"):
        allocate_budget(scores[:3], is_video, window, 0.5, 0.5)
    with pytest.raises(ValueError, match="bool"):
        allocate_budget(scores, is_video.long(), window, 0.5, 0.5)
    with pytest.raises(ValueError, match="keep_audio"):
        allocate_budget(scores, is_video, window, 0.5, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        allocate_budget(scores, is_video, window, 0.5, 0.5, temperature=0.0)
    with pytest.raises(ValueError, match="non-negative"):
        allocate_budget(scores, is_video, window - 1, 0.5, 0.5)
