"""`fast_vision`: batched window attention equals the stock Qwen2.5-Omni vision encoder and restores exactly."""

from __future__ import annotations

import pytest
import torch

from seats_core.models.qwen2_5_omni import fast_vision as fv
from seats_core.models.qwen2_5_omni.fast_vision import (
    batched_chunk_attention,
    build_chunk_plan,
    enable_fast_vision,
    fast_vision,
)

REL_TOL = 1e-5  # fp32: batching changes only summation order inside SDPA (seen: <= 2e-7)
BF16_REL_TOL = 3e-2  # bf16: other SDPA kernels and RoPE rounded once in bf16, a few bf16 ulps
HEAD_DIM = 8
OUTPUTS = ("pooler_output", "last_hidden_state")
GRIDS = {
    "uniform": [[4, 16, 16]],  # 8x8 merge units per frame: four equal 4x4 windows
    "ragged": [[2, 18, 26]],  # 9x13 merge units: windows 4/4/1 by 4/4/4/1, unequal sizes
    "two_videos": [[4, 16, 16], [2, 18, 26]],  # frames of unequal size: ragged full-attention blocks too
}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def _pixels(visual, grid: torch.Tensor, seed: int = 0) -> torch.Tensor:
    cfg = visual.config
    patch_dim = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size**2
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(int(grid.prod(-1).sum()), patch_dim, generator=gen)  # (patches, C*T*P*P)


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def visual(request):
    from seats_core.models.qwen2_5_omni.mini import build_model

    model, _ = build_model(attn_implementation=request.param)
    return model.model.visual


def _snapshot(visual):
    return (
        set(visual.__dict__),
        [set(blk.attn.__dict__) for blk in visual.blocks],
        len(visual._forward_pre_hooks),
        len(visual._forward_hooks),
    )


@pytest.mark.parametrize("grid_name", list(GRIDS))
def test_equals_stock(visual, grid_name):
    grid = torch.tensor(GRIDS[grid_name])
    pixels = _pixels(visual, grid)
    with torch.no_grad():
        ref = visual(pixels, grid_thw=grid)
        with fast_vision(visual):
            out = visual(pixels, grid_thw=grid)
    for name in OUTPUTS:
        assert getattr(out, name).shape == getattr(ref, name).shape
        assert _rel(getattr(ref, name), getattr(out, name)) <= REL_TOL, name


def test_restores_exactly(visual):
    grid = torch.tensor(GRIDS["two_videos"])
    pixels = _pixels(visual, grid)
    before = _snapshot(visual)
    with torch.no_grad():
        ref = visual(pixels, grid_thw=grid)
        with fast_vision(visual) as handle:
            assert _snapshot(visual) != before
            with fast_vision(visual):  # nested: inert, leaves the outer patch in place
                pass
            assert all("forward" in blk.attn.__dict__ for blk in visual.blocks)
            visual(pixels, grid_thw=grid)
        handle.remove()  # idempotent
        after = visual(pixels, grid_thw=grid)
    assert _snapshot(visual) == before
    for name in OUTPUTS:
        assert torch.equal(getattr(ref, name), getattr(after, name))


def test_bookkeeping_once_per_forward(visual, monkeypatch):
    """Plans are built in the pre-hook (one per attention kind), not per block: no per-block host syncs."""
    calls = []
    real = fv.build_chunk_plan
    monkeypatch.setattr(fv, "build_chunk_plan", lambda lengths: calls.append(lengths) or real(lengths))
    grid = torch.tensor(GRIDS["ragged"])
    with torch.no_grad(), fast_vision(visual):
        visual(_pixels(visual, grid), grid_thw=grid)
    assert len(calls) == 2  # window blocks + full-attention blocks, for all len(visual.blocks) blocks


def test_thinker_video_features(visual):
    """The thinker's own call path (grid_thw as a keyword) goes through the fast encoder too."""
    grid = torch.tensor(GRIDS["ragged"])
    pixels = _pixels(visual, grid)
    with torch.no_grad():
        ref = visual(pixels, grid_thw=grid).pooler_output
        with fast_vision(visual):
            out = visual(hidden_states=pixels, grid_thw=grid).pooler_output
    assert _rel(ref, out) <= REL_TOL


def test_chunk_plan_and_attention_reference():
    lengths = [3, 5, 1]
    plan = build_chunk_plan(lengths)
    assert not plan.uniform and plan.max_len == 5 and plan.keep.tolist() == [0, 1, 2, 5, 6, 7, 8, 9, 10]
    assert build_chunk_plan([4, 4]).uniform
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(sum(lengths), 2, HEAD_DIM, generator=gen) for _ in range(3))  # (L, H, d)
    out = batched_chunk_attention(q, k, v, plan, scale=HEAD_DIM**-0.5)  # (L, H*d)
    start = 0
    for n in lengths:
        qs, ks, vs = (x[start : start + n].transpose(0, 1) for x in (q, k, v))  # (H, n, d)
        ref = torch.softmax(qs @ ks.transpose(1, 2) * HEAD_DIM**-0.5, dim=-1) @ vs  # (H, n, d)
        assert torch.allclose(out[start : start + n], ref.transpose(0, 1).reshape(n, -1), atol=1e-6)
        start += n
    with pytest.raises(ValueError):
        build_chunk_plan([3, 0])


def test_rejects_unknown_layout():
    with pytest.raises(TypeError, match="transformers"):
        enable_fast_vision(torch.nn.Linear(2, 2))


def test_off_cpu_bf16_path_on_meta_device(visual):
    """Device and dtype come from the inputs: the index transfer and bf16 RoPE/SDPA path run on a non-CPU device.

    The meta device checks shapes/dtypes only; values on CUDA are checked by the gpu-marked test below.
    """
    import copy

    meta_visual = copy.deepcopy(visual).to("meta", torch.bfloat16)
    grid = torch.tensor(GRIDS["two_videos"])
    pixels = _pixels(visual, grid).to("meta", torch.bfloat16)
    with torch.no_grad(), fast_vision(meta_visual):
        out = meta_visual(pixels, grid_thw=grid)
    merge_unit = visual.config.spatial_merge_size**2
    assert out.pooler_output.shape == (pixels.shape[0] // merge_unit, visual.config.out_hidden_size)
    assert out.pooler_output.dtype == torch.bfloat16 and out.pooler_output.device.type == "meta"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_close_to_stock():
    import copy

    from seats_core.models.qwen2_5_omni.mini import build_model

    model, _ = build_model(attn_implementation="sdpa")
    visual = copy.deepcopy(model.model.visual).to("cuda", torch.bfloat16)
    grid = torch.tensor(GRIDS["two_videos"], device="cuda")
    pixels = _pixels(visual, grid.cpu()).to("cuda", torch.bfloat16)
    with torch.no_grad():
        ref = visual(pixels, grid_thw=grid).pooler_output.float()
        with fast_vision(visual):
            out = visual(pixels, grid_thw=grid).pooler_output.float()
    assert _rel(ref, out) <= BF16_REL_TOL


def test_bench_cli_smoke(capsys):
    """The benchmark CLI runs end to end on the miniature (a smoke test, not a timing claim)."""
    from seats_core.speed.encoder import main

    res = main(["--shape", "mini", "--seconds", "2", "--side", "56", "--repeats", "1", "--warmup", "0"])
    assert res["max_rel_diff"] <= REL_TOL
    assert "speedup" in capsys.readouterr().out
