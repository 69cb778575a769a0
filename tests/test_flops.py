"""The analytic FLOP formula (SEATS_SPEC §6): a hand-computed case and torch's FlopCounterMode on the miniature."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from seats_core.run.flops import (
    CONVENTION,
    LLMDims,
    decode_flops_per_token,
    flops_by_layer,
    prefill_flops,
    prefill_flops_both,
)

TINY = LLMDims(hidden=4, kv_dim=2, intermediate=8, vocab=10, num_layers=2, num_heads=2)
# FlopCounterMode counts one multiply-add as 2 FLOPs; the convention counts it as 1.
COUNTER_FLOPS_PER_MAC = 2


def test_hand_computed_two_layers():
    # Layer 0, S=3: q,o 2*3*4*4=96; k,v 2*3*4*2=48; QK^T+AV 2*3*3*4=72; SwiGLU 3*3*4*8=288 -> 504
    # Layer 1, S=2: q,o 2*2*4*4=64; k,v 2*2*4*2=32; QK^T+AV 2*2*2*4=32; SwiGLU 3*2*4*8=192 -> 320
    # LM head on 1 position: 4*10 = 40
    assert flops_by_layer(TINY, [3, 2]) == [504, 320]
    assert prefill_flops(TINY, [3, 2]) == 504 + 320 + 40
    assert prefill_flops(TINY, [3, 2], lm_head_positions=2) == 504 + 320 + 80
    assert prefill_flops(TINY, [3, 2], lm_head_positions=0) == 504 + 320


def test_decode_hand_computed():
    # Per layer 2*4*4 + 2*4*2 + 2*K*4 + 3*4*8 = 144 + 8K; K=5 -> 184, K=4 -> 176; + LM head 40
    assert decode_flops_per_token(TINY, [5, 4]) == 184 + 176 + 40


def test_bad_inputs():
    with pytest.raises(ValueError, match="one per layer"):
        prefill_flops(TINY, [3])
    with pytest.raises(ValueError, match="non-negative"):
        prefill_flops(TINY, [3, -1])
    with pytest.raises(ValueError, match="lm_head_positions"):
        prefill_flops(TINY, [3, 2], lm_head_positions=-1)


def test_dims_from_7b_config_and_convention():
    from seats_core.models.qwen2_5_omni.shapes import thinker_config

    dims = LLMDims.from_config(thinker_config("7b").text_config)
    assert dims == LLMDims(
        hidden=3584, kv_dim=512, intermediate=18944, vocab=152064, num_layers=28, num_heads=28
    )
    assert "1 multiply-add = 1 FLOP" in CONVENTION


@pytest.fixture(scope="module")
def eager_mini():
    from seats_core.models.qwen2_5_omni.mini import build_model

    model, _ = build_model(attn_implementation="eager")
    return model


@pytest.mark.parametrize("seq_len", [7, 33])
def test_matches_flop_counter_on_miniature(eager_mini, seq_len):
    """Exact agreement, tolerance 0.

    Under eager attention every term of the formula is one matmul that FlopCounterMode sees (q/k/v/o and MLP
    projections as mm/addmm, QK^T and AV as bmm over the full S x S scores after repeat_kv, the LM head as mm).
    The pieces the formula leaves out (RMSNorm, RoPE, softmax, SiLU, residual and bias adds) are elementwise
    and FlopCounterMode does not count them either, so nothing is left to tolerate: the counts are equal.
    """
    model = eager_mini
    dims = LLMDims.from_config(model.config.text_config)
    lm = model.model.language_model
    gen = torch.Generator().manual_seed(0)
    embeds = torch.randn(1, seq_len, dims.hidden, generator=gen)  # (B, S, D)
    positions = torch.arange(seq_len).view(1, 1, seq_len).expand(3, 1, seq_len)  # (3, B, S) t/h/w rows

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        hidden = lm(inputs_embeds=embeds, position_ids=positions, use_cache=False).last_hidden_state
        model.lm_head(hidden[:, -1:])  # logits_to_keep=1

    counts = counter.get_flop_counts()
    expected_layers = flops_by_layer(dims, [seq_len] * dims.num_layers)
    for i, expected in enumerate(expected_layers):
        (key,) = [k for k in counts if k.endswith(f".layers.{i}")]
        assert sum(counts[key].values()) == COUNTER_FLOPS_PER_MAC * expected, key
    assert counter.get_total_flops() == COUNTER_FLOPS_PER_MAC * prefill_flops(
        dims, [seq_len] * dims.num_layers
    )


def test_both_lm_head_conventions_by_hand():
    # D = 2, D_kv = 1, I = 3, V = 5; layer(S) = 2*S*4 + 2*S*2 + 2*S^2*2 + 3*S*2*3
    dims = LLMDims(hidden=2, kv_dim=1, intermediate=3, vocab=5, num_layers=2, num_heads=1)
    # layer(4) = 32 + 16 + 64 + 72 = 184, layer(3) = 24 + 12 + 36 + 54 = 126; LM head D*V = 10 per position
    both = prefill_flops_both(dims, [4, 3])
    assert both == {"generate": 184 + 126 + 10, "paper": 184 + 126 + 3 * 10}  # paper: the 3 alive positions
