"""Stage II top-down budget (spec §2 with the authors' decisions of §9): hand-computed cases for every rule and
a scalar transcription of §9 as the reference on random inputs."""

import math

import pytest
import torch

from seats_core.method import (
    allocate_budget,
    allocate_budget_detailed,
    budget,
    retention_schedule,
    run_windows,
)


@pytest.fixture(autouse=True, params=["host", "device"])
def arithmetic(request, monkeypatch):
    """Every test runs twice: the per-window arithmetic on Python numbers (what a CPU runs) and in tensors
    (what an accelerator runs, forced here on the CPU)."""
    if request.param == "device":
        monkeypatch.setattr(budget, "_host_budget", budget._device_budget)
    return request.param


def _one_at_a_time(bt, size, total):
    """§9's fix-up as written: one token at a time (also the reference for the water levels)."""
    bt = list(bt)
    while sum(bt) > total and any(b > 1 for b in bt):
        big = max(b for b in bt if b > 1)
        bt[bt.index(big)] -= 1
    while sum(bt) < total and any(b < n for b, n in zip(bt, size)):
        small = min(b for b, n in zip(bt, size) if b < n)
        bt[next(j for j, (b, n) in enumerate(zip(bt, size)) if b == small and b < n)] += 1
    return bt


def reference_budget(scores, is_video, window, keep_v, keep_a, temperature=0.1, rnd=round):
    """SEATS_SPEC §9 transcribed token by token in plain Python (no torch): the kept token indices."""
    s, v, w = scores.tolist(), is_video.tolist(), window.tolist()
    n_v, n_a = sum(v), len(v) - sum(v)
    k_v = max(1, rnd(keep_v * n_v)) if n_v else 0
    k_a = max(1, rnd(keep_a * n_a)) if n_a else 0

    def top(members, k):  # ties: lower index first
        return sorted(members, key=lambda i: (-s[i], i))[:k]

    wins = sorted(set(w))
    if len(wins) <= 1 or not n_v or not n_a:
        vid = [i for i in range(len(s)) if v[i]]
        aud = [i for i in range(len(s)) if not v[i]]
        return sorted(top(vid, k_v) + top(aud, k_a))

    def softmax(xs):
        m = max(xs)
        e = [math.exp(x - m) for x in xs]
        return [x / sum(e) for x in e]

    vids = {t: [i for i in range(len(s)) if w[i] == t and v[i]] for t in wins}
    auds = {t: [i for i in range(len(s)) if w[i] == t and not v[i]] for t in wins}
    wv = softmax([sum(s[i] for i in vids[t]) / max(len(vids[t]), 1) / temperature for t in wins])
    wa = softmax([sum(s[i] for i in auds[t]) / max(len(auds[t]), 1) / temperature for t in wins])
    B = k_v + k_a
    size = [len(vids[t]) + len(auds[t]) for t in wins]
    bt = [min(max(rnd((x + y) / 2 * B), 1), n) for x, y, n in zip(wv, wa, size)]
    bt = _one_at_a_time(bt, size, B)
    kept = []
    for j, t in enumerate(wins):
        nv, na = len(vids[t]), len(auds[t])
        frac = wv[j] * k_v / (wv[j] * k_v + wa[j] * k_a + 1e-12)
        bv = min(rnd(bt[j] * frac), nv)
        ba = min(bt[j] - bv, na)
        bv += min(bt[j] - bv - ba, nv - bv)
        if nv > 0 and bv < 1:
            bv = 1
            if ba > 1:
                ba = max(1, min(na, bt[j] - 1))
        if na > 0 and ba < 1:
            ba = 1
            if bv > 1:
                bv = max(1, min(nv, bt[j] - 1))
        kept += top(vids[t], bv) + top(auds[t], ba)
    return sorted(kept)


def random_case(seed):
    g = torch.Generator().manual_seed(seed)
    num_windows = int(torch.randint(1, 9, (1,), generator=g))
    n = int(torch.randint(1, 80, (1,), generator=g))
    window = torch.randint(0, num_windows, (n,), generator=g)
    is_video = torch.rand(n, generator=g) < torch.rand(1, generator=g)
    scores = torch.rand(n, generator=g) * 10 ** -float(torch.randint(0, 5, (1,), generator=g))
    if seed % 3 == 0:  # coarse scores: ties and exact halves
        scores = (scores * 4).round() / 4
    keep_v, keep_a = (float(v) for v in torch.rand(2, generator=g).clamp_min(0.01))
    return scores, is_video, window, keep_v, keep_a


@pytest.mark.parametrize("seed", range(100))
def test_equals_reference_transcription(seed):
    scores, is_video, window, keep_v, keep_a = random_case(seed)
    keep, info = allocate_budget_detailed(scores, is_video, window, keep_v, keep_a)
    assert keep.dtype == torch.bool and keep.shape == scores.shape
    assert keep.nonzero().squeeze(1).tolist() == reference_budget(scores, is_video, window, keep_v, keep_a)
    assert torch.equal(keep, allocate_budget(scores, is_video, window, keep_v, keep_a))  # deterministic
    assert sum(info["window_budget"]) == int(keep.sum())
    assert 0.0 <= info["weight_entropy"] <= 1.0 + 1e-12
    half_up = allocate_budget_detailed(scores, is_video, window, keep_v, keep_a, rounding="half_up")[0]
    ref_up = reference_budget(scores, is_video, window, keep_v, keep_a, rnd=lambda x: math.floor(x + 0.5))
    assert half_up.nonzero().squeeze(1).tolist() == ref_up


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
    # window 0: frac = 0.8808*3 / (0.8808*3 + 0.5*2) = 0.7255 -> round(2.18) = 2 video, 1 audio
    # window 1: frac = 0.1192*3 / (0.1192*3 + 0.5*2) = 0.2634 -> round(0.53) = 1 video, 1 audio
    assert info["window_video_budget"] == [2, 1] and info["window_audio_budget"] == [1, 1]
    assert keep.tolist() == [True, False, True, False, True, False, True, False, True, False]
    assert info["fallback"] is False
    p = [(w0 + 0.5) / 2, (1 - w0 + 0.5) / 2]
    assert info["weight_entropy"] == pytest.approx(-sum(q * math.log(q) for q in p) / math.log(2))


def test_first_7b_drop_520_video_tokens_keeps_483():
    # The schedule's keep ratio is the 4-decimal 0.9298 (§9): round(0.9298 * 520) = round(483.496) = 483
    # (the full-precision 0.929839... would give 484).
    keep_v = retention_schedule(28, (16, 18, 20), 24, 0.06)[0]
    assert keep_v == 0.9298
    is_video = torch.tensor([True] * 520 + [False] * 100)
    window = torch.zeros(620, dtype=torch.long)
    _, info = allocate_budget_detailed(torch.rand(620), is_video, window, keep_v, 0.5)
    assert (info["video_budget"], info["audio_budget"]) == (483, 50)


def test_rounding_half_even_vs_half_up():
    # 2 windows of 1 video + 3 audio; K_v = max(1, round(0.5 * 2)) = 1, K_a = round(0.25 * 6) = round(1.5) = 2
    # half to even (authors) vs 2 half up. Equal scores: w = 0.5 everywhere, B = 3, B_t = round(1.5) = 2 each
    # (half even) -> sum 4 > 3 -> take 1 from the first window holding the largest budget: [1, 2].
    is_video = torch.tensor([1, 0, 0, 0] * 2, dtype=torch.bool)
    window = torch.arange(8) // 4
    _, info = allocate_budget_detailed(torch.ones(8), is_video, window, 0.5, 0.25)
    assert (info["video_budget"], info["audio_budget"]) == (1, 2)
    # window 0: B_t = 1, both modalities -> keeps 2 (1 + 1); window 1: B_t = 2, frac = 1/3 -> round(0.67) = 1 + 1
    assert info["window_video_budget"] == [1, 1] and info["window_audio_budget"] == [1, 1]
    _, up = allocate_budget_detailed(torch.ones(8), is_video, window, 0.5, 0.25, rounding="half_up")
    assert up["audio_budget"] == 2 and up["video_budget"] == 1  # 1.5 -> 2 either way here
    _, up = allocate_budget_detailed(torch.ones(8), is_video, window, 0.5, 5 / 12, rounding="half_up")
    _, even = allocate_budget_detailed(torch.ones(8), is_video, window, 0.5, 5 / 12)
    assert (up["audio_budget"], even["audio_budget"]) == (3, 2)  # 2.5 -> 3 (half up), 2 (half even)


def test_fix_up_overshoot_takes_from_first_largest():
    # 3 windows of 2 video + 2 audio, equal scores: w_t = 1/3. K_v = round(0.75 * 6) = round(4.5) = 4,
    # K_a = round(0.25 * 6) = round(1.5) = 2, B = 6; B_t = round(2.0) = 2 each, sum 6: no fix.
    # With K_a = round(0.5 * 6) = 3, B = 7: B_t = round(2.333) = 2 -> sum 6 < 7: give 1 to the first window
    # holding the smallest budget -> [3, 2, 2].
    is_video = torch.tensor([1, 1, 0, 0] * 3, dtype=torch.bool)
    window = torch.arange(12) // 4
    _, info = allocate_budget_detailed(torch.ones(12), is_video, window, 0.75, 0.5)
    assert info["window_budget"] == [3, 2, 2]
    # Overshoot: K_v = round(5/6 * 6) = 5, K_a = round(0.5 * 6) = 3, B = 8; B_t = round(2.667) = 3 each, sum 9
    # -> take 1 from the first window holding the largest budget -> [2, 3, 3].
    _, info = allocate_budget_detailed(torch.ones(12), is_video, window, 5 / 6, 0.5)
    assert info["window_budget"] == [2, 3, 3]


def test_fix_up_stops_when_no_window_can_give():
    # 4 windows of 1 video + 1 audio, B = K_v + K_a = 1 + 1 = 2 < 4 windows: every B_t = max(round(0.5), 1) = 1,
    # none > 1 so nothing can be taken; each window then keeps one of each modality (B_t = 1 rule): 8 tokens.
    is_video = torch.tensor([1, 0] * 4, dtype=torch.bool)
    window = torch.arange(8) // 2
    keep, info = allocate_budget_detailed(torch.rand(8), is_video, window, 0.25, 0.25)
    assert (info["video_budget"], info["audio_budget"]) == (1, 1)
    assert int(keep.sum()) == 8


def test_window_with_budget_one_keeps_both_modalities():
    # window 0 holds 1 video + 3 audio with low scores, window 1 holds 3 video + 5 audio with high scores;
    # K_v = round(0.5 * 4) = 2, K_a = round(0.25 * 8) = 2, B = 4. Window 0's weights are ~0 -> B_0 = max(0, 1) = 1.
    scores = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    is_video = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0], dtype=torch.bool)
    window = torch.tensor([0] * 4 + [1] * 8)
    keep, info = allocate_budget_detailed(scores, is_video, window, 0.5, 0.25)
    assert info["window_video_budget"][0] == 1 and info["window_audio_budget"][0] == 1  # 2 kept from B_0 = 1
    assert info["window_budget"][0] == 2


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
        k = max(1, round(ratio * len(idx)))
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


def test_run_windows():
    T, V, A = 0, 1, 2
    # <bos> V V A A V V A A A A <eos>: audio that outlasts the video follows the last audio run -> joins window 1
    seq = torch.tensor([T, V, V, A, A, V, V, A, A, A, A, T])
    win = run_windows(seq == V, seq == A)
    assert win.tolist() == [-1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, -1]
    # video outlasting the audio: V A V A V V -> the trailing video chunks form one run, a video-only window 2
    seq = torch.tensor([T, V, A, V, A, V, V, T])
    assert run_windows(seq == V, seq == A).tolist() == [-1, 0, 0, 1, 1, 2, 2, -1]
    # a pruned sequence where a whole audio chunk is gone: the two video chunks are now one run
    seq = torch.tensor([V, V, V, A, V])
    assert run_windows(seq == V, seq == A).tolist() == [0, 0, 0, 0, 1]


def test_audio_outlasting_video_joins_last_window_budget():
    # V(2) A(2) V(2) A(2) A(2): trailing audio is part of window 1, which now holds 6 tokens.
    V, A = 1, 2
    seq = torch.tensor([V, V, A, A, V, V, A, A, A, A])
    win = run_windows(seq == V, seq == A)
    scores = torch.full((10,), 0.5)
    _, info = allocate_budget_detailed(scores, seq == V, win, 0.5, 0.5)
    # K_v = 2, K_a = 3, B = 5; equal means -> w = 0.5 each -> B_t = round(2.5) = 2 (half even) each, sum 4 < 5:
    # give 1 to the first window holding the smallest budget with room -> [3, 2].
    assert info["window_budget"] == [3, 2]
    assert len(info["video_weight"]) == 2  # no third, audio-only window


def test_video_only_window_enters_audio_softmax_with_mean_zero():
    # windows: 0 = V(2) A(2), 1 = V(2) A(2), 2 = V(2) only (video outlasts the audio)
    V, A = 1, 2
    seq = torch.tensor([V, V, A, A, V, V, A, A, V, V])
    win = run_windows(seq == V, seq == A)
    scores = torch.tensor([0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    _, info = allocate_budget_detailed(scores, seq == V, win, 0.5, 0.5)
    e = [math.exp(2.0), math.exp(1.0), math.exp(0.0)]  # audio means 0.2, 0.1 and 0 (absent), / T = 0.1
    assert info["audio_weight"] == pytest.approx([x / sum(e) for x in e])
    assert info["video_weight"] == pytest.approx([1 / 3] * 3)


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
    with pytest.raises(ValueError, match="rounding"):
        allocate_budget_detailed(scores, is_video, window, 0.5, 0.5, rounding="up")


def test_window_budget_water_levels_equal_one_token_at_a_time():
    """The tensor fix-up (all levels at once) ends where §9's one-token-at-a-time loop ends: overshoot,
    undershoot with windows capped at their size, ties between equal budgets, empty windows, nothing to move
    (200 random cases)."""
    from seats_core.method.budget import _window_budgets

    for seed in range(200):
        g = torch.Generator().manual_seed(seed)
        W = int(torch.randint(1, 9, (1,), generator=g))
        size = torch.randint(0, 12, (W,), generator=g)
        weight = torch.rand(W, generator=g, dtype=torch.float64) ** 3
        weight = torch.where(size > 0, weight, 0.0)
        weight = weight / weight.sum() if weight.sum() > 0 else weight
        total = int(torch.randint(0, int(size.sum()) + 4, (1,), generator=g))
        start = [min(max(round(float(w) * total), 1), int(n)) for w, n in zip(weight, size)]
        f64 = torch.float64
        got = _window_budgets(weight, size.to(f64), torch.tensor(total, dtype=f64), "half_even", 13)
        got = [int(x) for x in got.tolist()]
        assert got == _one_at_a_time(start, size.tolist(), total), (start, size.tolist(), total)
