"""The token layout agrees with the model's own M-RoPE index (get_rope_index) position by position."""

from __future__ import annotations

import pytest
import torch

from seats_core.models.adapter import OmniAdapter
from seats_core.prune.layout import AUDIO, TEXT, VIDEO, build_layout
from tests.helpers import mini, random_inputs


@pytest.mark.parametrize("audio", [True, False])
@pytest.mark.parametrize("seconds", [6, 5])
def test_layout_matches_rope_index(audio, seconds):
    model, proc = mini("sdpa")
    inputs = random_inputs(proc, seconds=seconds, side=140, audio=audio)
    ad = OmniAdapter(model)
    spg = float(inputs["video_second_per_grid"][0])
    lay = build_layout(inputs["input_ids"][0], ad.token_ids, inputs["video_grid_thw"], spg)
    lengths = inputs["feature_attention_mask"].sum(-1) if audio else None
    pos, _ = model.model.get_rope_index(
        inputs["input_ids"],
        video_grid_thw=inputs["video_grid_thw"],
        attention_mask=inputs["attention_mask"],
        use_audio_in_video=audio,
        audio_seqlens=lengths,
        second_per_grids=inputs["video_second_per_grid"],
    )
    pos = pos[:, 0]  # (3, S)
    v = lay.modality == VIDEO
    start = pos[0, v].min()  # media block start position (t of the first video token)
    # video: (t, h, w) rope rows = start + (t * spg * 25, row, col)
    assert torch.equal(pos[0, v] - start, (lay.t[v].double() * spg * 25).long())
    assert torch.equal(pos[1, v] - start, lay.row[v])
    assert torch.equal(pos[2, v] - start, lay.col[v])
    # windows: 2-second chunks of the temporal position (50 position ids)
    assert torch.equal((pos[0, v] - start) // 50, lay.window[v])
    gt, gh, gw = inputs["video_grid_thw"][0].tolist()
    assert lay.grid_hw == (gh // 2, gw // 2)
    assert int(v.sum()) == gt * gh * gw // 4
    a = lay.modality == AUDIO
    if audio:
        assert torch.equal(pos[0, a] - start, lay.audio_index[a])
        assert torch.equal((pos[0, a] - start) // 50, lay.window[a])
        assert int(a.sum()) == 25 * seconds
        # interleaving: within the media block, each window's video comes before its audio
        idx = torch.arange(lay.length)
        for w in range(lay.num_windows):
            assert idx[v & (lay.window == w)].max() < idx[a & (lay.window == w)].min()
        # time spans: 40 ms audio tokens, 1 s video tokens at 2 fps
        assert torch.allclose(
            lay.end_s[a] - lay.start_s[a], torch.full((int(a.sum()),), 0.04, dtype=torch.float64)
        )
    else:
        assert not a.any()
    assert lay.num_windows == (seconds + 1) // 2
    assert (lay.window[lay.modality == TEXT] == -1).all()
