"""Fusion, measured (seats_core.method.fusion, seats_core.run.fusion): the grouped attention masses against references.

References: a dense softmax with repeat_kv for the pure functions; for the capture under SDPA, the eager attention
weights the model itself returns (`output_attentions=True`, summed by group) of the same run on both miniatures,
in the full run and in a Pruner-attached run (whose eager attentions cover the surviving tokens only).
"""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from seats_core.method import fusion as MF
from seats_core.models.family import get_adapter
from seats_core.prune.attach import Drop, Pruner
from seats_core.prune.config import SeatsConfig
from seats_core.prune.layout import AUDIO, TEXT, VIDEO
from seats_core.run.fusion import GROUPS, FusionCapture, measure_fusion, prompt_layout
from tests.helpers import hook_count, mini, mini_qwen3, random_inputs

ATOL = 1e-4  # the bound: fp32 on CPU, same math in another order (measured ~3e-7)
MODELS = {
    "mini": (mini, 112),
    "mini-qwen3": (mini_qwen3, 128),
}  # builder, frame side (the family's token block)


# ---- pure functions ------------------------------------------------------------------------------------------
def _dense(q, k, scale, qpos, kpos):
    """(H, R, S) causal softmax with the KV heads repeated, as transformers' eager attention computes it."""
    k = k.repeat_interleave(q.shape[0] // k.shape[0], dim=0)
    logits = (q.double() @ k.double().transpose(1, 2)) * scale
    return logits.masked_fill(kpos[None, None] > qpos[None, :, None], float("-inf")).softmax(-1)


def _random_qk(seed=0, heads=4, kv_heads=2, seq=23, d=8):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(heads, seq, d, generator=g)
    k = torch.randn(kv_heads, seq, d, generator=g)
    pos = torch.randperm(3 * seq, generator=g)[:seq].sort().values  # a pruned sequence: gaps, order kept
    return q, k, pos


def test_head_mean_attention_equals_dense_reference():
    q, k, pos = _random_qk()
    got = MF.head_mean_attention(q, k, 0.3, pos, pos)
    ref = _dense(q, k, 0.3, pos, pos).mean(0)
    torch.testing.assert_close(got.double(), ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.sum(-1), torch.ones(len(pos)), atol=1e-6, rtol=0)
    assert (got.triu(1) == 0).all()  # causal


@pytest.mark.parametrize("block_elements", [1, 4 * 23 * 5, 1 << 24])
def test_group_mass_is_the_dense_mass_whatever_the_block(block_elements):
    q, k, pos = _random_qk(seed=1)
    group = torch.tensor([i % 3 for i in range(len(pos))])
    window = torch.where(group == TEXT, -1, torch.arange(len(pos)) // 8)
    mass, same = MF.group_mass(
        q, k, 0.35, pos, pos, group, 3, query_window=window, key_window=window, block_elements=block_elements
    )
    probs = _dense(q, k, 0.35, pos, pos).mean(0)  # (S, S)
    onehot = torch.nn.functional.one_hot(group, 3).double()
    own = (window[None] == window[:, None]) & (window[:, None] >= 0)
    torch.testing.assert_close(mass.double(), probs @ onehot, atol=1e-6, rtol=0)
    torch.testing.assert_close(same.double(), (probs * own) @ onehot, atol=1e-6, rtol=0)
    torch.testing.assert_close(mass.sum(-1), torch.ones(len(pos)), atol=1e-6, rtol=0)
    assert (same[group == TEXT] == 0).all() and (same <= mass + 1e-7).all()
    assert MF.group_mass(q, k, 0.35, pos, pos, group, 3)[1] is None


def test_group_means_and_within_share_by_hand():
    mass = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6]], dtype=torch.float64)
    same = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.1, 0.3]], dtype=torch.float64)
    group = torch.tensor([0, 0, 2])
    means = MF.group_means(mass, group, 3)
    torch.testing.assert_close(means[0], torch.tensor([0.75, 0.25, 0.0], dtype=torch.float64))
    assert torch.isnan(means[1]).all()  # no query of group 1: a null row
    torch.testing.assert_close(means[2], mass[2])
    share = MF.within_window_share(mass, same, group, 3)
    assert share[2, 1] == pytest.approx(0.5) and share[2, 2] == pytest.approx(0.5)
    assert torch.isnan(share[1]).all() and torch.isnan(share[0, 2])  # no rows / no mass: undefined


def test_bad_shapes_raise():
    q, k, pos = _random_qk()
    with pytest.raises(ValueError, match="multiple"):
        MF.head_mean_attention(q[:3], k, 1.0, pos, pos)
    with pytest.raises(ValueError, match="same d"):
        MF.head_mean_attention(q, k[..., :4], 1.0, pos, pos)
    with pytest.raises(ValueError, match="together"):
        MF.group_mass(q, k, 1.0, pos, pos, torch.zeros_like(pos), 3, query_window=pos)


# ---- the capture against eager attention weights -------------------------------------------------------------
def _plan(num_layers: int) -> list[Drop]:
    """A pruned run whose survivors do not depend on numerics (SDPA and eager keep the same tokens): half the
    media before layer 0, a random half of the rest in the middle, text only for the last quarter; KV pruned."""
    return [
        Drop(0, "uniform", 0.5, 0.5),
        Drop(num_layers // 2, "random", 0.5, 0.5),
        Drop(3 * num_layers // 4, "stage3", 0.0, 0.0),
    ]


def _eager_run(model, inputs, has_audio, plan):
    """Prefill and first decode step of the eager model: (prefill attentions, decode attentions, trace or None)."""
    ad = get_adapter(model)
    spg = ad.inputs_seconds_per_grid(inputs)
    pruner = Pruner(model, SeatsConfig(), plan, seconds_per_grid=spg) if plan else None
    with torch.inference_mode(), pruner or contextlib.nullcontext():
        out = model.generate(
            **inputs,
            use_audio_in_video=has_audio,
            max_new_tokens=2,
            do_sample=False,
            output_attentions=True,
            return_dict_in_generate=True,
        )
    return out.attentions[0], out.attentions[1], (pruner.trace if pruner else None), out.sequences


def _reference(weights: torch.Tensor, mod: torch.Tensor, win: torch.Tensor):
    """Matrix (3, 3) and within-window cells from eager weights (1, H, S_l, S_l) over tokens of modality `mod`."""
    w = weights[0].double().mean(0)  # (S_l, S_l) head mean
    onehot = torch.nn.functional.one_hot(mod, 3).double()  # (S_l, 3)
    mass = w @ onehot
    own = (win[None] == win[:, None]) & (win[:, None] >= 0)
    same = (w * own) @ onehot
    counts = onehot.sum(0)[:, None]
    matrix = (onehot.T @ mass) / counts.where(counts > 0, torch.nan)
    total = onehot.T @ mass
    return matrix, (onehot.T @ same) / total.where(total > 0, torch.nan), w


def _assert_close_nan(a: torch.Tensor, b: torch.Tensor, what: str):
    assert torch.equal(torch.isnan(a), torch.isnan(b)), f"{what}: null cells differ\n{a}\n{b}"
    err = (a.double() - b.double()).abs().nan_to_num().max().item()
    assert err <= ATOL, f"{what}: off by {err}"


@pytest.fixture(scope="module", params=[(m, p) for m in MODELS for p in ("full", "pruned")], ids=str)
def case(request):
    name, run = request.param
    build, side = MODELS[name]
    sdpa, proc = build("sdpa")
    eager, _ = build("eager")
    inputs = random_inputs(proc, seconds=4, side=side, seed=0)  # the mini answers, not EOS at once
    plan = _plan(get_adapter(sdpa).num_layers) if run == "pruned" else None
    rec = measure_fusion(sdpa, inputs, config=SeatsConfig() if plan else None, plan=plan)
    prefill, decode, trace, sequences = _eager_run(eager, inputs, True, plan)
    layout = prompt_layout(get_adapter(sdpa), inputs)
    return dict(rec=rec, prefill=prefill, decode=decode, trace=trace, seq=sequences, layout=layout, plan=plan,
                model=sdpa, inputs=inputs)  # fmt: skip


def test_matrix_and_rows_equal_eager_attention(case):
    rec, prefill, decode, trace, layout = (case[k] for k in ("rec", "prefill", "decode", "trace", "layout"))
    L, S = rec.num_layers, layout.length
    assert len(prefill) == L and rec.last_position == S - 1
    assert torch.equal(rec.positions, layout.nontext.nonzero().squeeze(-1))
    for layer in range(L):
        alive = torch.arange(S) if trace is None else (trace.survives_to > layer).nonzero().squeeze(-1)
        assert prefill[layer].shape[-1] == alive.numel()  # eager attentions cover the tokens alive only
        matrix, within, w = _reference(prefill[layer], layout.modality[alive], layout.window[alive])
        _assert_close_nan(rec.matrix[layer], matrix, f"matrix at layer {layer}")
        media = [VIDEO, AUDIO]
        _assert_close_nan(rec.within[layer][media][:, media], within[media][:, media], f"within at {layer}")
        assert torch.isnan(rec.within[layer][TEXT]).all() and torch.isnan(rec.within[layer][:, TEXT]).all()
        last = torch.full((S,), float("nan"), dtype=torch.float64)
        last[alive] = w[-1]
        _assert_close_nan(rec.last[layer], last[rec.positions], f"last token row at {layer}")
        assert rec.queries[layer].tolist() == torch.bincount(layout.modality[alive], minlength=3).tolist()
        # the first answer token (position S) over the keys in this layer's cache, then itself; with KV pruning
        # the layers before the plan's last drop cache that drop's survivors only
        cached = alive if trace is None else (trace.survives_to > max(layer, case["plan"][-1].layer))
        cached = cached.nonzero().squeeze(-1) if cached.dtype == torch.bool else cached
        row = decode[layer][0].double().mean(0)[0]  # (n,)
        assert row.numel() == cached.numel() + 1
        answer = torch.full((S,), float("nan"), dtype=torch.float64)
        answer[cached] = row[:-1]
        _assert_close_nan(rec.answer[layer], answer[rec.positions], f"answer row at {layer}")
        groups = torch.cat([layout.modality[cached], torch.tensor([TEXT])])
        ref_mass = torch.zeros(3, dtype=torch.float64).index_add(0, groups, row)
        _assert_close_nan(rec.answer_mass[layer], ref_mass, f"answer mass at {layer}")
    assert rec.answer_token_id == int(case["seq"][0, S])


def test_rows_sum_to_one_and_absent_groups_are_null(case):
    rec = case["rec"]
    present = ~torch.isnan(rec.matrix[..., 0])  # (L, 3)
    sums = rec.matrix.nan_to_num().sum(-1)[present]
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-6, rtol=0)
    assert torch.equal(present, rec.queries > 0)
    if case["plan"]:  # from the text-only stage on, the video and audio rows are null and nobody reads them
        late = case["plan"][-1].layer
        assert torch.isnan(rec.matrix[late:, VIDEO]).all() and torch.isnan(rec.matrix[late:, AUDIO]).all()
        assert (rec.matrix[late:, TEXT, VIDEO] == 0).all() and torch.isnan(rec.last[late:]).all()
    one = torch.ones(rec.num_layers, dtype=torch.float64)
    torch.testing.assert_close(rec.last_mass.sum(-1), one, atol=1e-6, rtol=0)  # fp32 sums
    torch.testing.assert_close(rec.answer_mass.sum(-1), one, atol=1e-6, rtol=0)


def test_record_is_json_ready(case):
    rec, layout = case["rec"], case["layout"]
    d = json.loads(json.dumps(rec.to_dict()))
    L, N = rec.num_layers, int(layout.nontext.sum())
    assert d["groups"] == list(GROUPS) == ["text", "video", "audio"]
    assert len(d["matrix"]) == L and all(len(r) == 3 and all(len(c) == 3 for c in r) for r in d["matrix"])
    assert len(d["last_token"]["attention"]) == L and len(d["last_token"]["attention"][0]) == N
    assert d["answer_token"]["position"] == layout.length and len(d["answer_token"]["attention"][0]) == N
    assert d["within_window"][0][TEXT] == [None, None, None] and d["capture_ms"] > 0


def test_a_clip_without_audio_has_a_null_audio_row():
    model, proc = mini("sdpa")
    inputs = random_inputs(proc, seconds=2, audio=False, seed=6)
    rec = measure_fusion(model, inputs, has_audio=False)
    assert torch.isnan(rec.matrix[:, AUDIO]).all() and (rec.matrix[:, :, AUDIO].nan_to_num() == 0).all()
    assert not torch.isnan(rec.matrix[:, VIDEO]).any()
    assert all(row[AUDIO] == [None, None, None] for row in rec.to_dict()["matrix"])


def test_capture_observes_only_and_is_removed():
    model, proc = mini("sdpa")
    inputs = random_inputs(proc, seconds=2, seed=7)
    layout = prompt_layout(get_adapter(model), inputs)
    before = hook_count(model)
    with torch.inference_mode():
        ref = model(**inputs, use_audio_in_video=True, use_cache=False).logits
        with FusionCapture(model, layout) as cap:
            assert hook_count(model) > before
            out = model(**inputs, use_audio_in_video=True, use_cache=False).logits
        again = model(**inputs, use_audio_in_video=True, use_cache=False).logits
    assert torch.equal(out, ref) and torch.equal(again, ref)
    assert hook_count(model) == before
    rec = cap.record()  # a plain forward: the prefill is measured, there is no answer step
    assert rec.answer is None and rec.to_dict()["answer_token"] is None
    with pytest.raises(RuntimeError, match="no complete prefill"):
        FusionCapture(model, layout).record()


def test_a_chosen_tokens_row_and_column_equal_eager_attention(case):
    """The explorer's clicked token (opt-in `token=`): its attention to every non-text token and theirs to it, at
    every layer, against the eager weights' row and column (NaN where it or they are pruned)."""
    layout, trace, prefill = case["layout"], case["trace"], case["prefill"]
    S = layout.length
    nontext = layout.nontext.nonzero().squeeze(-1)
    lasting = (
        nontext if trace is None else nontext[trace.survives_to[nontext] == trace.survives_to[nontext].max()]
    )
    token = int(lasting[len(lasting) // 2])  # a media token alive as long as any (through the middle drop)
    model = case["model"]
    plan = case["plan"]
    rec = measure_fusion(
        model, case["inputs"], config=SeatsConfig() if plan else None, plan=plan, token=token
    )
    assert rec.token_position == token
    for layer in range(rec.num_layers):
        alive = torch.arange(S) if trace is None else (trace.survives_to > layer).nonzero().squeeze(-1)
        w = prefill[layer][0].double().mean(0)  # (S_l, S_l) head mean over the tokens alive
        row = torch.full((S,), float("nan"), dtype=torch.float64)
        column = torch.full((S,), float("nan"), dtype=torch.float64)
        at = (alive == token).nonzero().squeeze(-1)
        if at.numel():
            row[alive], column[alive] = w[int(at)], w[:, int(at)]
        _assert_close_nan(rec.token_row[layer], row[rec.positions], f"token row at {layer}")
        _assert_close_nan(rec.token_column[layer], column[rec.positions], f"token column at {layer}")
    d = json.loads(json.dumps(rec.to_dict()))
    assert d["token"]["position"] == token and len(d["token"]["attends_to"]) == rec.num_layers
    assert "token" not in case["rec"].to_dict()  # opt-in only
    with pytest.raises(ValueError, match="not a video or audio"):
        FusionCapture(model, layout, token=S - 1)
