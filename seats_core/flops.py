"""Analytic LLM FLOPs for prefill and decode, in the SEATS paper's convention (SEATS_SPEC §6).

One multiply-add counts as 1 FLOP. Per decoder layer that sees S tokens (hidden D, KV width
D_kv = kv_heads * head_dim, MLP width I):

    2*S*D^2      q and o projections
    2*S*D*D_kv   k and v projections
    2*S^2*D      QK^T and AV, counted over the full S x S score matrix (not the causal half)
    3*S*D*I      SwiGLU MLP (gate, up, down)

summed over layers, each with its own S (tokens alive in that layer), plus the LM head: D*V per position it is
applied to (1 by default: generation runs the prefill with `logits_to_keep=1`; the paper's estimator applies
it to every position alive after the last layer, see `prefill_flops_both`). Norms, RoPE, softmax, SiLU,
residual adds and biases are not counted. `torch.utils.flop_counter.FlopCounterMode` counts a multiply-add as
2 FLOPs: divide its numbers by 2 before comparing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CONVENTION = (
    "analytic LLM FLOPs, 1 multiply-add = 1 FLOP; per layer 2SD^2 + 2SD*Dkv + 2S^2D (full SxS) + 3SDI, "
    "+ LM head D*V per scored position (SEATS_SPEC §6)"
)
# The two LM-head conventions every result reports (SEATS_SPEC §9 "FLOPs as the paper counts them").
GENERATE_CONVENTION = "as generate() runs it: LM head on the last prompt position (logits_to_keep=1)"
PAPER_CONVENTION = "as the paper counts it: LM head on every position alive after the last layer"


@dataclass(frozen=True)
class LLMDims:
    """Decoder widths that the FLOP formula needs.

    hidden: D; kv_dim: D_kv = kv_heads * head_dim; intermediate: I (MLP width); vocab: V;
    num_layers: decoder depth; num_heads: query heads (informational; the formula does not need it).
    """

    hidden: int
    kv_dim: int
    intermediate: int
    vocab: int
    num_layers: int
    num_heads: int

    @classmethod
    def from_config(cls, text_config) -> LLMDims:
        """From a transformers text config (e.g. `thinker_config.text_config` or `get_text_config()`)."""
        heads = text_config.num_attention_heads
        head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // heads
        kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
        return cls(
            hidden=text_config.hidden_size,
            kv_dim=kv_heads * head_dim,
            intermediate=text_config.intermediate_size,
            vocab=text_config.vocab_size,
            num_layers=text_config.num_hidden_layers,
            num_heads=heads,
        )


def _check_per_layer(dims: LLMDims, counts: Sequence[int], what: str) -> list[int]:
    counts = [int(c) for c in counts]
    if len(counts) != dims.num_layers:
        raise ValueError(f"{what} has {len(counts)} entries, expected one per layer ({dims.num_layers})")
    if any(c < 0 for c in counts):
        raise ValueError(f"{what} must be non-negative, got {counts}")
    return counts


def layer_flops(dims: LLMDims, s: int) -> int:
    """FLOPs of one decoder layer over `s` tokens (1 multiply-add = 1 FLOP, full S x S attention)."""
    d, dkv, i = dims.hidden, dims.kv_dim, dims.intermediate
    return 2 * s * d * d + 2 * s * d * dkv + 2 * s * s * d + 3 * s * d * i


def flops_by_layer(dims: LLMDims, tokens_per_layer: Sequence[int]) -> list[int]:
    """Per-layer prefill FLOPs, `(num_layers,)`, for the token count alive in each layer."""
    return [layer_flops(dims, s) for s in _check_per_layer(dims, tokens_per_layer, "tokens_per_layer")]


def lm_head_flops(dims: LLMDims, positions: int = 1) -> int:
    """LM head FLOPs: D*V per position scored."""
    if positions < 0:
        raise ValueError(f"lm_head_positions must be >= 0, got {positions}")
    return positions * dims.hidden * dims.vocab


def prefill_flops(dims: LLMDims, tokens_per_layer: Sequence[int], lm_head_positions: int = 1) -> int:
    """Total LLM prefill FLOPs: sum of `flops_by_layer` plus the LM head on `lm_head_positions` positions."""
    return sum(flops_by_layer(dims, tokens_per_layer)) + lm_head_flops(dims, lm_head_positions)


def prefill_flops_both(dims: LLMDims, tokens_per_layer: Sequence[int]) -> dict[str, int]:
    """Prefill FLOPs in both LM-head conventions: {"generate": last position only, "paper": every position
    alive after the last layer, i.e. tokens_per_layer[-1]} (SEATS_SPEC §6, §9)."""
    counts = _check_per_layer(dims, tokens_per_layer, "tokens_per_layer")
    return {
        "generate": prefill_flops(dims, counts, lm_head_positions=1),
        "paper": prefill_flops(dims, counts, lm_head_positions=counts[-1]),
    }


def decode_flops_per_token(dims: LLMDims, kv_len_per_layer: Sequence[int]) -> int:
    """FLOPs to decode one token: 1 query per layer against `kv_len_per_layer[l]` keys (the new one included).

    Per layer 2D^2 + 2D*D_kv + 2*K*D + 3DI, plus the LM head on that one position.
    """
    d, dkv, i = dims.hidden, dims.kv_dim, dims.intermediate
    kv = _check_per_layer(dims, kv_len_per_layer, "kv_len_per_layer")
    per_layer = [2 * d * d + 2 * d * dkv + 2 * k * d + 3 * d * i for k in kv]
    return sum(per_layer) + lm_head_flops(dims, 1)
