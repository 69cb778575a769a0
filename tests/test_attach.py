"""Integration of the hooks with the real transformers thinker (miniature): equivalence and restoration."""

from __future__ import annotations

import pytest
import torch

from seats_core.models.family import Qwen25OmniAdapter
from seats_core.prune.attach import Drop, Pruner, build_plan
from seats_core.prune.config import SeatsConfig
from seats_core.prune.layout import TEXT
from tests.helpers import hook_count, masked_reference, mini, random_inputs

GEN = dict(max_new_tokens=5, do_sample=False, output_scores=True, return_dict_in_generate=True)

QWEN25_7B = Qwen25OmniAdapter.paper  # the 7B's recipe: 28 layers


def _generate(model, inputs, has_audio=True):
    with torch.inference_mode():
        return model.generate(**inputs, use_audio_in_video=has_audio, **GEN)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_keep_all_hooks_are_identical_and_restored(attn):
    model, proc = mini(attn)
    inputs = random_inputs(proc)
    before = hook_count(model)
    ref = _generate(model, inputs)
    plan = [Drop(0, "stage1", 1.0, 1.0), Drop(5, "stage2", 1.0, 1.0), Drop(20, "stage2", 1.0, 1.0)]
    with Pruner(model, SeatsConfig(), plan=plan) as pruner:
        assert hook_count(model) > before
        out = _generate(model, inputs)
    assert torch.equal(out.sequences, ref.sequences)
    for a, b in zip(out.scores, ref.scores):
        assert torch.equal(a, b)
    assert (pruner.trace.survives_to == 28).all()
    # exactly restored: no hooks left, same outputs
    assert hook_count(model) == before
    again = _generate(model, inputs)
    assert torch.equal(again.sequences, ref.sequences)
    for a, b in zip(again.scores, ref.scores):
        assert torch.equal(a, b)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize(
    "method,retention,prune_kv",
    [
        ("seats", "R10", True),
        ("seats", "R25", False),
        ("fastv-om", "R35", True),
        ("divprune-om", "R15", True),
    ],
)
def test_pruned_generate_equals_masked_reference(attn, method, retention, prune_kv):
    model, proc = mini(attn)
    inputs = random_inputs(proc, seed=1)
    cfg = SeatsConfig.make(method, retention, prune_kv=prune_kv)
    with Pruner(model, cfg) as pruner:
        out = _generate(model, inputs)
    trace = pruner.trace
    L = trace.num_layers
    prefill_keep = [trace.survives_to > layer for layer in range(L)]
    final = trace.survives_to >= L
    decode_keep = [final] * L if prune_kv else prefill_keep
    with masked_reference(model, prefill_keep, decode_keep):
        ref = _generate(model, inputs)
    assert torch.equal(out.sequences, ref.sequences)
    for a, b in zip(out.scores, ref.scores):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_kv_cache_holds_only_survivors():
    model, proc = mini("sdpa")
    inputs = random_inputs(proc, seed=2)
    with torch.inference_mode(), Pruner(model, SeatsConfig.make("seats", "R10")) as pruner:
        out = model(**inputs, use_audio_in_video=True, use_cache=True)
    trace = pruner.trace
    n_text = int((trace.layout.modality == TEXT).sum())
    for layer in out.past_key_values.layers:  # Stage III + KV pruning: every layer keeps text only
        assert layer.keys.shape[2] == n_text
    # the prefill logits cover only the surviving (text) positions, the last one being the prompt's last token
    assert out.logits.shape[1] == n_text


def test_plan_follows_schedule_and_refuses_impossible_requests():
    cfg = SeatsConfig.make("seats", "R10").resolve(QWEN25_7B)
    plan = build_plan(cfg, 28)
    assert [d.layer for d in plan] == [0, 16, 18, 20, 23]
    assert [round(d.keep_video, 4) for d in plan[1:4]] == [0.9298, 0.7949, 0.2986]
    assert plan[0].keep_video == pytest.approx(1.4 * 0.06)
    with pytest.raises(ValueError, match="FastV"):
        build_plan(SeatsConfig.make("fastv-om", "R10").resolve(QWEN25_7B), 28)
    with pytest.raises(ValueError, match="video tokens only"):
        build_plan(SeatsConfig.make("fastv", "R35").resolve(QWEN25_7B), 28)
    with pytest.raises(ValueError):
        build_plan(SeatsConfig.make("seats", "0.8,0.5").resolve(QWEN25_7B), 28)  # 1.4 * 0.8 > 1
    with pytest.raises(ValueError, match="unknown method"):
        SeatsConfig.make("tome", "R10")


def test_video_only_clip_runs_without_audio():
    model, proc = mini("sdpa")
    inputs = random_inputs(proc, audio=False)
    with Pruner(model, SeatsConfig.make("seats", "R10")) as pruner:
        out = _generate(model, inputs, has_audio=False)
    assert out.sequences.shape[1] > inputs["input_ids"].shape[1]
    ret = pruner.trace.retention()
    assert ret["video"] == pytest.approx(0.06, abs=0.01)


@pytest.mark.parametrize("via_generate", [True, False])
def test_stage1_uses_encoder_importance_in_generate_and_plain_forward(via_generate):
    """generate() runs the vision encoder before the prefill call, a plain forward inside it: both must work."""
    model, proc = mini("sdpa")
    inputs = random_inputs(proc, seed=3)
    for method in ("seats", "visionzip-om"):
        with torch.inference_mode(), Pruner(model, SeatsConfig.make(method, "R25")) as pruner:
            if via_generate:
                model.generate(**inputs, use_audio_in_video=True, max_new_tokens=1, do_sample=False)
            else:
                model(**inputs, use_audio_in_video=True)
        lay = pruner.trace.layout
        imp = pruner.trace.importance
        assert not torch.isnan(imp[lay.nontext]).any(), method  # every video and audio token was scored
        assert torch.isnan(imp[~lay.nontext]).all()
