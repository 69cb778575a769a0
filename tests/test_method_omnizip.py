"""OmniZip's method layer (issue 25), checked by hand on tiny cases and against per-frame references."""

import math

import pytest
import torch

import seats_core.method.omnizip as omnizip
from seats_core.method.omnizip import (
    apportion,
    audio_anchor_merge,
    audio_guided_discard,
    dpc_knn_scores,
    dpc_knn_select,
    guided_discard_ratio,
    istc_select,
    omnizip_select,
    temporal_select,
)

R2 = math.sqrt(2)

# ---- 1. audio ----------------------------------------------------------------------------------------------------

# Ten audio tokens. Importance ranks 0, 2, 3, 5, 7, 8 on top (10, 9, 8, 7, 6, 5); the rest, in position order,
# are 1, 4, 6, 9 (importance 1, 2, 3, 4).
IMPORTANCE = torch.tensor([10.0, 1.0, 9.0, 8.0, 2.0, 7.0, 3.0, 6.0, 5.0, 4.0], dtype=torch.float64)
AUDIO = torch.tensor(
    [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 1.0], [0.6, 0.8],
     [5.0, 1.0], [1.0, 1.0], [7.0, 1.0], [8.0, 1.0], [0.0, 2.0]],
    dtype=torch.float64,
)  # fmt: skip
VIDEO_AXES = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)


def test_audio_anchor_and_merge_weights_by_hand():
    # rho_audio 0.4: n_sal = round(0.6 * 10) = 6 -> 0, 2, 3, 5, 7, 8. n_ctx = round(0.1 * 10) = 1 of the rest
    # R = [1, 4, 6, 9]: step 4 // 1 = 4, anchor rest[0] = 1; pool 4, 6, 9, all assigned to anchor 1.
    # Audio-to-video similarity (max cosine to the axes): x4 = (.6, .8) -> .8, x6 = (1, 1) -> 1/sqrt2 = .7071,
    # x9 = (0, 2) -> 1.0. g = 2 keeps 9 and 4; 6 is dropped.
    kept, rows, absorbed = audio_anchor_merge(AUDIO, IMPORTANCE, 0.4, VIDEO_AXES, g=2, contextual_ratio=0.1)
    assert kept.tolist() == [0, 1, 2, 3, 5, 7, 8]
    assert absorbed == {1: [4, 9]}
    # w = softmax(1.0, 0.8): w9 = 1 / (1 + e^-0.2) = 0.549834, w4 = 0.450166 (sum 1).
    w9 = 1 / (1 + math.exp(-0.2))
    w4 = 1 - w9
    assert w9 == pytest.approx(0.549834, abs=1e-6)
    # new = (x1 + w9 x9 + w4 x4) / (1 + 1) = ((1, 0) + .549834 (0, 2) + .450166 (.6, .8)) / 2
    #     = (1 + .270100, 1.099668 + .360133) / 2 = (0.635050, 0.729900)
    expected = [(1 + w4 * 0.6) / 2, (w9 * 2 + w4 * 0.8) / 2]
    assert expected == pytest.approx([0.635050, 0.729900], abs=1e-6)
    assert rows[1].tolist() == pytest.approx(expected, abs=1e-12)  # kept position 1 is token 1
    # The merged anchor changed its embedding; every other kept row is the input row.
    assert not torch.equal(rows[1], AUDIO[1])
    others = [0, 2, 3, 4, 5, 6]
    assert torch.equal(rows[others], AUDIO[kept[others]])


def test_audio_without_video_ranks_by_similarity_to_the_anchor():
    # No video: score = cosine to the own anchor x1 = (1, 0): x4 -> .6, x6 -> 1/sqrt2 = .707107, x9 -> 0.
    # g = 2 keeps 6 and 4: w6 = 1 / (1 + e^-(.707107 - .6)) = 1 / (1 + e^-.107107) = 0.526751, w4 = 0.473249.
    kept, rows, absorbed = audio_anchor_merge(AUDIO, IMPORTANCE, 0.4, None, g=2, contextual_ratio=0.1)
    assert absorbed == {1: [4, 6]}
    w6 = 1 / (1 + math.exp(-(1 / R2 - 0.6)))
    w4 = 1 - w6
    assert w6 == pytest.approx(0.526751, abs=1e-6)
    # new = ((1, 0) + .526751 (1, 1) + .473249 (.6, .8)) / 2 = (1.810700, 0.905350) / 2 = (0.905350, 0.452675)
    expected = [(1 + w6 + 0.6 * w4) / 2, (w6 + 0.8 * w4) / 2]
    assert expected == pytest.approx([0.905350, 0.452675], abs=1e-6)
    assert rows[1].tolist() == pytest.approx(expected, abs=1e-12)
    # An empty video behaves as no video.
    _, rows_empty, absorbed_empty = audio_anchor_merge(
        AUDIO, IMPORTANCE, 0.4, torch.zeros(0, 2, dtype=torch.float64), g=2, contextual_ratio=0.1
    )
    assert absorbed_empty == absorbed and torch.equal(rows_empty, rows)


def test_two_anchors_ties_and_groups_smaller_than_g():
    # Six tokens of equal importance: salient = round((1 - 2/3) * 6) = 2 -> 0, 1 (ties: lower index first).
    # n_ctx = round(6 / 3) = 2 of the rest [2, 3, 4, 5]: step 2 -> anchors 2, 4; pool 3, 5.
    # x3 = (1, 1) is equally close to x2 = (1, 0) and x4 = (0, 1): the lower anchor 2 takes it.
    # x5 = (1, 3) is closer to x4. Each anchor has 1 member < g = 3: w = softmax(one score) = 1,
    # new = (anchor + member) / 2: x2 -> ((1, 0) + (1, 1)) / 2 = (1, .5); x4 -> ((0, 1) + (1, 3)) / 2 = (.5, 2).
    audio = torch.tensor([[5.0, 5.0], [6.0, 6.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 3.0]])
    kept, rows, absorbed = audio_anchor_merge(audio, torch.zeros(6), 2 / 3, None, g=3, contextual_ratio=1 / 3)
    assert kept.tolist() == [0, 1, 2, 4]
    assert absorbed == {2: [3], 4: [5]}
    assert rows.tolist() == [[5.0, 5.0], [6.0, 6.0], [1.0, 0.5], [0.5, 2.0]]


def test_audio_to_video_ties_go_to_the_lower_index():
    # One anchor (token 0) and pool 1, 2, 3 with the same similarity to the video (all .8 with (0, 1)):
    # g = 2 merges the lower two, 1 and 2, each with weight 1/2.
    audio = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.6, 0.8]])
    kept, rows, absorbed = audio_anchor_merge(
        audio, torch.zeros(4), 1.0, torch.tensor([[0.0, 1.0]]), g=2, contextual_ratio=0.25
    )
    # rho 1: no salient token; n_ctx = round(.25 * 4) = 1, anchor = rest[0] = 0.
    assert kept.tolist() == [0] and absorbed == {0: [1, 2]}
    # (x0 + .5 x1 + .5 x2) / 2 = ((1, 0) + (.6, .8)) / 2 = (.8, .4)
    assert rows[0].tolist() == pytest.approx([0.8, 0.4])


def test_zero_contextual_anchors_keeps_only_the_salient_tokens():
    # Default ratio .05 * 10 = .5 -> 0 anchors (half to even): nothing is merged, the rest is dropped.
    kept, rows, absorbed = audio_anchor_merge(AUDIO, IMPORTANCE, 0.4, VIDEO_AXES)
    assert kept.tolist() == [0, 2, 3, 5, 7, 8] and absorbed == {}
    assert torch.equal(rows, AUDIO[kept])
    # g = 0: anchors are kept, nothing merged.
    kept, rows, absorbed = audio_anchor_merge(AUDIO, IMPORTANCE, 0.4, VIDEO_AXES, g=0, contextual_ratio=0.1)
    assert kept.tolist() == [0, 1, 2, 3, 5, 7, 8] and absorbed == {} and torch.equal(rows, AUDIO[kept])


def test_contextual_anchors_inside_the_budget():
    # Total round(.6 * 10) = 6, of which round(.1 * 10) = 1 anchor: salient are the top 5 (0, 2, 3, 5, 7);
    # rest [1, 4, 6, 8, 9] -> anchor 1; pool 4, 6, 8, 9 (x8 = (8, 1) -> .992278 with (1, 0)).
    kept, _, absorbed = audio_anchor_merge(
        AUDIO, IMPORTANCE, 0.4, VIDEO_AXES, g=2, contextual_ratio=0.1, contextual_in_budget=True
    )
    assert kept.tolist() == [0, 1, 2, 3, 5, 7]
    assert absorbed == {1: [8, 9]}  # 9 (1.0) and 8 (8 / sqrt 65 = .992278) beat 4 (.8)


def test_rho_audio_zero_keeps_audio_unchanged():
    kept, rows, absorbed = audio_anchor_merge(AUDIO, IMPORTANCE, 0.0, VIDEO_AXES, g=3, contextual_ratio=0.5)
    assert kept.tolist() == list(range(10)) and absorbed == {} and torch.equal(rows, AUDIO)


# ---- 2. audio-guided video budget ---------------------------------------------------------------------------------


def test_discard_ratio_clamp():
    assert guided_discard_ratio(0.0) == pytest.approx(0.75)  # .75 - .40 * 0
    assert guided_discard_ratio(0.5) == pytest.approx(0.55)  # .75 - .40 * .5
    assert guided_discard_ratio(1.0) == pytest.approx(0.35)  # .75 - .40 * 1
    assert guided_discard_ratio(0.0, lo=0.4, hi=0.7) == pytest.approx(0.7)  # min(.7, .75)
    assert guided_discard_ratio(1.0, lo=0.4, hi=0.7) == pytest.approx(0.4)  # max(.4, .35)


def test_rescaling_to_rho_video():
    # r = (1, .5, 0) -> discard (.35, .55, .75), keep shares (.65, .45, .25); sizes (10, 10, 20):
    # base keep .65*10 + .45*10 + .25*20 = 16. rho_video .7: target .3 * 40 = 12, scale 12 / 16 = .75:
    # keep (.4875, .3375, .1875) -> discard (.5125, .6625, .8125); counts 4.875, 3.375, 3.75 -> 5, 3, 4 = 12.
    d = audio_guided_discard([1.0, 0.5, 0.0], [10, 10, 20], 0.7)
    assert d == pytest.approx([0.5125, 0.6625, 0.8125])
    assert sum(n * dt for n, dt in zip([10, 10, 20], d)) == pytest.approx(0.7 * 40)
    assert apportion([n * (1 - x) for n, x in zip([10, 10, 20], d)], [10, 10, 20], 12) == [5, 3, 4]


def test_rescaling_saturates_at_keep_all():
    # rho_video .1: target .9 * 40 = 36. Scale 36 / 16 = 2.25 puts .65 at 1.4625 > 1: group 0 keeps all.
    # Then (36 - 10) / (.45*10 + .25*20) = 26 / 9.5 = 2.737: .45 * 2.737 = 1.23 > 1, group 1 keeps all.
    # Then (36 - 20) / (.25*20) = 3.2: .25 * 3.2 = .8 <= 1. Keep (1, 1, .8): discard (0, 0, .2).
    d = audio_guided_discard([1.0, 0.5, 0.0], [10, 10, 20], 0.1)
    assert d == pytest.approx([0.0, 0.0, 0.2])
    assert all(0 <= x <= 1 for x in d)


def test_groups_without_audio_discard_rho_video():
    # Group 0 has no audio: discard .5. Groups 1, 2 (r = 1, 0): keep (.65, .25), 10 tokens each, their target
    # .5 * 20 = 10, scale 10 / 9 -> keep (.722222, .277778), discard (.277778, .722222).
    d = audio_guided_discard([None, 1.0, 0.0], [10, 10, 10], 0.5)
    assert d == pytest.approx([0.5, 1 - 6.5 / 9, 1 - 2.5 / 9])
    # All groups without audio: the plain ratio everywhere.
    assert audio_guided_discard([None, None], [4, 6], 0.3) == pytest.approx([0.3, 0.3])


def test_apportion_fixes_rounding_deterministically():
    # 1.5 each -> 2, 2, 2, 2 (half to even) = 8 > 6: take 1 from the most over-rounded (all -.5) -> indices 0, 1.
    assert apportion([1.5, 1.5, 1.5, 1.5], [4, 4, 4, 4], 6) == [1, 1, 2, 2]
    # .5 -> 0, 2.5 -> 2, 1 -> 1 = 3 < 4: give 1 to the most under-rounded (.5, .5: the lower index 0).
    assert apportion([0.5, 2.5, 1.0], [3, 3, 3], 4) == [1, 2, 1]
    # half up: .5 -> 1, 2.5 -> 3, 1 -> 1 = 5 > 4: take from the smallest residual (-.5, -.5: index 0).
    assert apportion([0.5, 2.5, 1.0], [3, 3, 3], 4, rounding="half_up") == [0, 3, 1]
    with pytest.raises(ValueError):
        apportion([1.0], [1], 2)


# ---- 3. interleaved spatio-temporal compression --------------------------------------------------------------------

# Six points: a tight triangle 0, 1, 2 around the origin, a pair 3, 4 and an outlier 5 on the x axis.
SIX = torch.tensor(
    [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 0.0], [6.0, 0.0], [10.0, 0.0]], dtype=torch.float64
)


def test_dpc_knn_rho_and_delta_on_six_points():
    rho, delta, score = dpc_knn_scores(SIX, k=2)
    # Euclidean distances to the 2 nearest: 0: 1, 1 -> mean 1; 1: 1 (to 0), sqrt2 (to 2) -> 1.2071;
    # 2: the same; 3: 1 (to 4), 4 (to 1) -> 2.5; 4: 1 (to 3), 4 (to 5) -> 2.5; 5: 4, 5 -> 4.5.
    means = [1.0, (1 + R2) / 2, (1 + R2) / 2, 2.5, 2.5, 4.5]
    assert rho.tolist() == pytest.approx([math.exp(-m) for m in means], abs=1e-12)
    # delta: 0 is the densest -> its largest distance, 10 (to 5). 1: nearest denser is 0 -> 1.
    # 2: denser are 0 and 1 (equal rho, lower index) -> min(1, sqrt2) = 1. 3: denser 0, 1, 2 (4 ties, but
    # has the higher index) -> min(5, 4, sqrt26) = 4. 4: denser 0..3 (3: equal rho, lower index) -> 1 (to 3).
    # 5: everyone is denser -> 4 (to 4).
    assert delta.tolist() == pytest.approx([10.0, 1.0, 1.0, 4.0, 1.0, 4.0], abs=1e-12)
    # score = rho * delta: 10/e = 3.679, e^-1.2071 = .299, .299, 4 e^-2.5 = .328, e^-2.5 = .082, 4 e^-4.5 = .044
    assert score.tolist() == pytest.approx(
        [10 * math.exp(-1), math.exp(-means[1]), math.exp(-means[1]), 4 * math.exp(-2.5), math.exp(-2.5),
         4 * math.exp(-4.5)], abs=1e-12
    )  # fmt: skip
    # Top 3: 0 (3.679), 3 (.328), then 1 and 2 tie at .299 -> the lower index 1.
    assert dpc_knn_select(SIX, 3, k=2).tolist() == [0, 1, 3]


def test_dpc_knn_edge_cases():
    # k larger than n - 1 uses all the others (k = 5 on 6 points = every other point).
    rho5 = dpc_knn_scores(SIX, k=5)[0]
    assert rho5[0].item() == pytest.approx(math.exp(-(1 + 1 + 5 + 6 + 10) / 5))
    assert torch.equal(dpc_knn_scores(SIX, k=9)[0], rho5)
    # An exact duplicate of a denser token gets delta 0 (only one peak); one token: rho 1, delta 0.
    dup = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    rho, delta, _ = dpc_knn_scores(dup, k=1)
    assert delta.tolist() == pytest.approx([5.0, 0.0, 5.0])
    one = dpc_knn_scores(torch.ones(1, 3), k=5)
    assert [t.tolist() for t in one] == [[1.0], [0.0], [0.0]]
    # Large distances: exp(-100 * mean) is 0 in float32 for all but one token, yet the ranking holds (log
    # space). SIX reversed and scaled by 100: log score = log(100 delta) - 100 mean -> the triangle, now
    # indices 5 (-93.1), 4 and 3 (-116.1 each), beats the pair (-244, -245) and the outlier.
    assert dpc_knn_select(SIX.flip(0).float() * 100, 3, k=2).tolist() == [3, 4, 5]
    # Batched frames give the per-frame scores.
    batch = torch.stack([SIX, SIX.flip(0)])
    assert torch.allclose(dpc_knn_scores(batch, k=2)[2][0], dpc_knn_scores(SIX, k=2)[2])


def test_odd_frame_keeps_the_least_similar_to_the_same_position():
    # Previous frame, positions 0, 1, 2: (1, 0), (0, 1), (1, 1). Current frame rows at the same positions:
    # (0, 1) -> cos 0 with (1, 0); (1, 1) -> cos 1/sqrt2 = .7071 with (0, 1); (1, 1) -> cos 1 with (1, 1).
    previous = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    current = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    assert temporal_select(current, previous, 1).tolist() == [0]
    assert temporal_select(current, previous, 2).tolist() == [0, 1]
    # Ties go to the lower index.
    assert temporal_select(torch.ones(3, 2), torch.ones(3, 2), 2).tolist() == [0, 1]


def test_istc_aligns_odd_frames_by_position_and_parity_within_the_group():
    # One group, frames 0 and 1 of 3 tokens; frame 1 lists its positions in the order 2, 0, 1.
    # keep 2 -> quotas 2 * 3 / 6 = 1 per frame.
    # Frame 0 (DPC, k = 2): d01 = sqrt2, d02 = d12 = 1; rho: 0, 1 -> e^-(1 + sqrt2)/2, 2 -> e^-1 (densest,
    # delta = max distance 1). Scores: 2 -> e^-1 = .368; 0, 1 -> e^-1.207 * 1 = .299. Keep token 2.
    # Frame 1: token 3 (pos 2, (1, 1)) vs (1, 1): cos 1; token 4 (pos 0, (0, 1)) vs (1, 0): 0;
    # token 5 (pos 1, (1, 1)) vs (0, 1): .7071. Keep token 4.
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    group = torch.tensor([7, 7, 7, 7, 7, 7])
    frame = torch.tensor([0, 0, 0, 1, 1, 1])
    pos = torch.tensor([0, 1, 2, 2, 0, 1])
    assert istc_select(video, group, frame, pos, [2], k=2).tolist() == [2, 4]
    # keep 4 -> 2 per frame: frame 0 adds the tie 0 / 1 -> 0; frame 1 adds token 5 (.7071).
    assert istc_select(video, group, frame, pos, [4], k=2).tolist() == [0, 2, 4, 5]
    # A group whose only frame has an odd id is still rank 0: a DPC keyframe, no previous frame needed.
    assert istc_select(video[:3], torch.zeros(3, dtype=torch.long), torch.ones(3, dtype=torch.long),
                       pos[:3], [1], k=2).tolist() == [2]  # fmt: skip
    # A position missing in the previous frame is an error.
    with pytest.raises(ValueError, match="previous frame"):
        istc_select(video, group, frame, torch.tensor([0, 1, 2, 3, 0, 1]), [2], k=2)


@pytest.mark.parametrize("seed", range(4))
def test_istc_matches_per_frame_reference(seed, monkeypatch):
    # Two groups of 4 frames (ids global 0..7) on a 2 x 3 grid, positions shuffled in each frame; odd seeds
    # score one frame per batch.
    if seed % 2:
        monkeypatch.setattr(omnizip, "DPC_CHUNK", 1)
    g = torch.Generator().manual_seed(seed)
    frames, per = 8, 6
    video = torch.randn(frames * per, 5, generator=g, dtype=torch.float64)
    frame = torch.arange(frames).repeat_interleave(per)
    group = frame // 4
    pos = torch.cat([torch.randperm(per, generator=g) for _ in range(frames)])
    keep = [7 + seed, 13 - seed]
    got = istc_select(video, group, frame, pos, keep, k=3).tolist()
    expected = []
    for t, b in enumerate(keep):
        counts = apportion([b / 4] * 4, [per] * 4, b)
        for rank in range(4):
            f = 4 * t + rank
            idx = (frame == f).nonzero().squeeze(1)
            if rank % 2 == 0:
                pick = dpc_knn_select(video[idx], counts[rank], k=3)
            else:
                prev = (frame == f - 1).nonzero().squeeze(1)
                aligned = prev[torch.argsort(pos[prev])][pos[idx]]  # previous-frame token at each position
                pick = temporal_select(video[idx], video[aligned], counts[rank])
            expected += idx[pick].tolist()
    assert got == sorted(expected)


# ---- the whole method ----------------------------------------------------------------------------------------------


def clip(
    seed: int = 0, groups: int = 3, frames: int = 2, grid: int = 4, audio_per_group: int = 10, d: int = 8
):
    """A random interleaved clip: per group `frames` frames of `grid` tokens and `audio_per_group` audio tokens."""
    g = torch.Generator().manual_seed(seed)
    n_v = groups * frames * grid
    video = torch.randn(n_v, d, generator=g)
    video_frame = torch.arange(groups * frames).repeat_interleave(grid)
    video_group = video_frame // frames
    video_pos = torch.arange(grid).repeat(groups * frames)
    audio = torch.randn(groups * audio_per_group, d, generator=g)
    audio_group = torch.arange(groups).repeat_interleave(audio_per_group)
    importance = torch.rand(groups * audio_per_group, generator=g)
    return video, video_group, video_frame, video_pos, audio, audio_group, importance


def test_audio_guides_the_video_budget_by_hand():
    # Two groups; audio tokens 0-3 (group 0) are the most important. rho_audio .5: salient = 4 -> all of
    # group 0, none of group 1 (0.05 * 8 = .4 -> no anchor). Retention (1, 0) -> discard (.35, .75),
    # keep (.65, .25) of 8 video tokens each. rho_video .5: target 8, scale 8 / 7.2: keep (.7222, .2778),
    # counts 5.778 -> 6, 2.222 -> 2 (sum 8 = round(.5 * 16)); frames: 3 + 3 and 1 + 1.
    video, video_group, video_frame, video_pos, audio, audio_group, _ = clip(groups=2, audio_per_group=4)
    importance = torch.tensor([8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    out = omnizip_select(video, video_group, video_frame, video_pos, audio, audio_group, importance, 0.5, 0.5)
    assert out.audio_kept.tolist() == [0, 1, 2, 3]
    assert out.groups == [0, 1] and out.audio_retention == [1.0, 0.0]
    assert out.video_discard == pytest.approx([1 - 0.65 / 0.9, 1 - 0.25 / 0.9])
    assert out.video_keep == [6, 2]
    per_frame = torch.bincount(video_frame[out.video_kept], minlength=4).tolist()
    assert per_frame == [3, 3, 1, 1]


@pytest.mark.parametrize("rho_video", [0.0, 0.3, 0.55, 0.7, 0.94, 1.0])
def test_total_video_count_is_exact(rho_video):
    for seed in range(3):
        parts = clip(seed, groups=4, frames=3, grid=5, audio_per_group=7)
        out = omnizip_select(*parts, rho_video, 0.6, contextual_ratio=0.1)
        n_v = len(parts[0])
        assert len(out.video_kept) == round((1 - rho_video) * n_v) == sum(out.video_keep)
        assert all(0 <= d <= 1 for d in out.video_discard)


def test_merged_anchors_change_the_embeddings():
    parts = clip(1)
    out = omnizip_select(*parts, 0.5, 0.7, contextual_ratio=0.2)
    audio = parts[4]
    assert out.absorbed  # some anchor merged something
    changed = [
        i for i, a in enumerate(out.audio_kept.tolist()) if not torch.equal(out.audio_embeds[i], audio[a])
    ]
    assert [out.audio_kept[i].item() for i in changed] == sorted(out.absorbed)
    # Absorbed tokens are gone; absorbed sets are disjoint.
    gone = [m for ms in out.absorbed.values() for m in ms]
    assert len(gone) == len(set(gone)) and not set(gone) & set(out.audio_kept.tolist())


def test_rho_zero_keeps_everything_unchanged():
    parts = clip(2)
    out = omnizip_select(*parts, 0.0, 0.0, contextual_ratio=0.5)
    assert out.video_kept.tolist() == list(range(len(parts[0])))
    assert out.audio_kept.tolist() == list(range(len(parts[4])))
    assert torch.equal(out.audio_embeds, parts[4]) and out.absorbed == {}
    assert out.video_discard == pytest.approx([0.0, 0.0, 0.0])


def test_deterministic():
    parts = clip(3, groups=3, frames=4, grid=6, audio_per_group=12)
    a = omnizip_select(*parts, 0.7, 0.5, contextual_ratio=0.1)
    b = omnizip_select(*parts, 0.7, 0.5, contextual_ratio=0.1)
    assert torch.equal(a.video_kept, b.video_kept) and torch.equal(a.audio_kept, b.audio_kept)
    assert torch.equal(a.audio_embeds, b.audio_embeds) and a.absorbed == b.absorbed


def test_no_video_and_audio_only_groups():
    # Audio only: the video lists are empty; the audio step falls back to anchor similarity.
    video, _, _, _, audio, audio_group, importance = clip(4)
    empty = torch.zeros(0, dtype=torch.long)
    out = omnizip_select(video[:0], empty, empty, empty, audio, audio_group, importance, 0.5, 0.5,
                         contextual_ratio=0.1)  # fmt: skip
    assert out.video_kept.tolist() == [] and len(out.audio_kept) == 15 + 3
    # No audio: every group discards rho_video.
    video, video_group, video_frame, video_pos = clip(4)[:4]
    out = omnizip_select(
        video, video_group, video_frame, video_pos, audio[:0], empty, importance[:0], 0.5, 0.5
    )
    assert out.audio_kept.tolist() == [] and out.audio_retention == [None] * 3 and out.video_keep == [4, 4, 4]
    # A trailing audio-only group does not take video budget.
    parts = list(clip(5, groups=2))
    parts[5] = torch.tensor([0] * 10 + [2] * 10)  # group 2 has audio only
    out = omnizip_select(*parts, 0.5, 0.5)
    assert out.groups == [0, 1, 2] and out.video_keep[2] == 0 and len(out.video_kept) == 8


def test_bad_inputs():
    parts = clip(0)
    with pytest.raises(ValueError):
        omnizip_select(*parts, 1.5, 0.5)
    with pytest.raises(ValueError):
        omnizip_select(*parts, 0.5, -0.1)
    with pytest.raises(ValueError):
        omnizip_select(*parts[:3], parts[3][:-1], *parts[4:], 0.5, 0.5)
    with pytest.raises(ValueError):
        audio_anchor_merge(AUDIO, IMPORTANCE[:-1], 0.5)
