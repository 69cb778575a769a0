"""OmniZip attached to both families (issue 25): the pruned run equals the unpruned model run on OmniZip's
merged input embeddings with the dropped tokens' keys masked, and merging changes embeddings, not only which
tokens survive. Qwen3-Omni: the DeepStack rows follow the surviving video tokens."""

from __future__ import annotations

import pytest
import torch

from seats_core.models.family import get_adapter
from seats_core.models.hooks import Hooks
from seats_core.prune.attach import Pruner
from seats_core.prune.config import SeatsConfig
from tests.helpers import masked_reference, mini, mini_qwen3, random_inputs

GEN = dict(max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True)


def _generate(model, inputs):
    with torch.inference_mode():
        return model.generate(**inputs, use_audio_in_video=True, **GEN)


@pytest.mark.parametrize("build", [mini, mini_qwen3], ids=["qwen2_5_omni", "qwen3_omni"])
def test_omnizip_equals_the_masked_reference_on_its_merged_inputs(build):
    model, proc = build("sdpa")
    ad = get_adapter(model)
    inputs = random_inputs(proc, seconds=6, side=4 * ad.media_layout.token_block_px, seed=4)
    entering: list[torch.Tensor] = []  # layer 0's input as the pruned run sees it (after the Pruner's hook)

    def grab(module, args, kwargs):
        if not entering:
            entering.append(ad.split_layer_call(args, kwargs)[0].clone())  # (S_kept, D)

    with Pruner(model, SeatsConfig.make("omnizip", "R25")) as pruner, Hooks() as hooks:
        hooks.pre(ad.layers[0], grab)
        out = _generate(model, inputs)
    trace = pruner.trace
    (event,) = trace.events
    assert event["stage"] == "omnizip" and event["layer"] == 0
    absorbed = {int(a): members for a, members in event["info"]["absorbed"].items()}
    assert absorbed and all(members for members in absorbed.values())  # anchors did merge
    L = trace.num_layers
    alive = (trace.survives_to > 0).nonzero().squeeze(-1).tolist()  # original positions entering layer 0
    merged = {a: entering[0][alive.index(a)] for a in absorbed}
    for a, members in absorbed.items():  # absorbed tokens are dropped, anchors kept
        assert trace.survives_to[a] == L and all(int(trace.survives_to[m]) == 0 for m in members)

    original: list[torch.Tensor] = []

    def replace_merged(module, args, kwargs):
        hidden = ad.split_layer_call(args, kwargs)
        if hidden.shape[1] != trace.layout.length:  # decode steps: nothing to replace
            return None
        original.append(hidden[0, list(merged)].clone())
        hidden = hidden.clone()
        hidden[0, list(merged)] = torch.stack(list(merged.values())).to(hidden.dtype)
        return ad.join_layer_call(args, kwargs, hidden)

    prefill_keep = [trace.survives_to > layer for layer in range(L)]
    final = trace.survives_to >= L
    with Hooks() as hooks, masked_reference(model, prefill_keep, [final] * L):
        hooks.pre(ad.layers[0], replace_merged)
        ref = _generate(model, inputs)
    assert torch.equal(out.sequences, ref.sequences)
    for a, b in zip(out.scores, ref.scores):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    # the merged anchors are new inputs: each moved from its original towards the tokens it absorbed (the random
    # mini-qwen3's audio rows are nearly identical, so its moves are tiny but not zero)
    moved = (torch.stack(list(merged.values())) - original[0]).norm(dim=-1)
    assert bool((moved > (1e-3 if build is mini else 0)).all()), moved


@pytest.mark.parametrize("build", [mini, mini_qwen3], ids=["qwen2_5_omni", "qwen3_omni"])
def test_omnizip_keeps_the_matched_retention_before_the_llm(build):
    """rho = 1 - R per modality: every layer sees R of each modality (up to rounding), as for the other
    pre-LLM baselines; the contextual anchors count within the audio budget."""
    model, proc = build("sdpa")
    ad = get_adapter(model)
    inputs = random_inputs(proc, seconds=6, side=4 * ad.media_layout.token_block_px, seed=5)
    cfg = SeatsConfig.make("omnizip", "R35")
    with torch.inference_mode(), Pruner(model, cfg) as pruner:
        model(**inputs, use_audio_in_video=True)
    event = pruner.trace.events[0]
    v, a = pruner.config.retention
    assert event["after"]["video"] == round(v * event["before"]["video"])
    assert event["after"]["audio"] == round(a * event["before"]["audio"])
