"""Analytic LLM FLOPs for prefill and decode, in the SEATS paper's convention (SEATS_SPEC §6).

One multiply-add counts as 1 FLOP. Per decoder layer that sees S tokens (hidden D, query width
D_q = heads * head_dim, which is D on Qwen2.5 but not on Qwen3, KV width D_kv = kv_heads * head_dim, MLP width I):

    2*S*D*D_q    q and o projections
    2*S*D*D_kv   k and v projections
    2*S^2*D_q    QK^T and AV, counted over the full S x S score matrix (not the causal half)
    3*S*D*I      SwiGLU MLP (gate, up, down), on a dense layer
    S*D*E + 3*S*D*I_moe*k   on a sparse MoE layer: the router over E experts, then only the k active experts

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
    "analytic LLM FLOPs, 1 multiply-add = 1 FLOP; per layer 2SD*Dq + 2SD*Dkv + 2S^2*Dq (full SxS) + 3SDI "
    "(MoE: router SDE + 3SD*Imoe*k active experts), + LM head D*V per scored position (SEATS_SPEC §6)"
)
# The two LM-head conventions every result reports (SEATS_SPEC §9 "FLOPs as the paper counts them").
GENERATE_CONVENTION = "as generate() runs it: LM head on the last prompt position (logits_to_keep=1)"
PAPER_CONVENTION = "as the paper counts it: LM head on every position alive after the last layer"


@dataclass(frozen=True)
class LLMDims:
    """Decoder widths that the FLOP formula needs.

    hidden: D; kv_dim: D_kv = kv_heads * head_dim; intermediate: I (dense MLP width); vocab: V;
    num_layers: decoder depth; num_heads: query heads; q_dim: D_q = heads * head_dim (None: D).
    MoE (Qwen3-Omni): num_experts E, experts_per_tok k, moe_intermediate I_moe, and moe_layers, the 0-based
    layers whose MLP is sparse (the others are dense).
    """

    hidden: int
    kv_dim: int
    intermediate: int
    vocab: int
    num_layers: int
    num_heads: int
    q_dim: int | None = None
    num_experts: int = 0
    experts_per_tok: int = 0
    moe_intermediate: int = 0
    moe_layers: tuple[int, ...] = ()

    @classmethod
    def from_config(cls, text_config) -> LLMDims:
        """From a transformers text config (e.g. `thinker_config.text_config` or `get_text_config()`)."""
        heads = text_config.num_attention_heads
        head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // heads
        kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
        layers = text_config.num_hidden_layers
        experts = int(getattr(text_config, "num_experts", 0) or 0)
        moe_layers: tuple[int, ...] = ()
        if (
            experts
        ):  # transformers' rule: sparse unless in mlp_only_layers, every decoder_sparse_step-th layer
            step = int(getattr(text_config, "decoder_sparse_step", 1) or 1)
            dense = set(getattr(text_config, "mlp_only_layers", None) or ())
            moe_layers = tuple(i for i in range(layers) if i not in dense and (i + 1) % step == 0)
        q_dim = heads * head_dim
        return cls(
            hidden=text_config.hidden_size,
            kv_dim=kv_heads * head_dim,
            intermediate=text_config.intermediate_size,
            vocab=text_config.vocab_size,
            num_layers=layers,
            num_heads=heads,
            q_dim=None if q_dim == text_config.hidden_size else q_dim,
            num_experts=experts,
            experts_per_tok=int(getattr(text_config, "num_experts_per_tok", 0) or 0) if experts else 0,
            moe_intermediate=int(getattr(text_config, "moe_intermediate_size", 0) or 0) if experts else 0,
            moe_layers=moe_layers,
        )

    @property
    def query_dim(self) -> int:
        return self.hidden if self.q_dim is None else self.q_dim

    def mlp_flops_per_token(self, layer: int) -> int:
        """MLP FLOPs per token at 0-based `layer`: dense SwiGLU, or router + k active experts."""
        d = self.hidden
        if layer in self.moe_layers:
            return d * self.num_experts + 3 * d * self.moe_intermediate * self.experts_per_tok
        return 3 * d * self.intermediate


def _check_per_layer(dims: LLMDims, counts: Sequence[int], what: str) -> list[int]:
    counts = [int(c) for c in counts]
    if len(counts) != dims.num_layers:
        raise ValueError(f"{what} has {len(counts)} entries, expected one per layer ({dims.num_layers})")
    if any(c < 0 for c in counts):
        raise ValueError(f"{what} must be non-negative, got {counts}")
    return counts


def layer_flops(dims: LLMDims, s: int, layer: int = 0) -> int:
    """FLOPs of decoder layer `layer` (0-based) over `s` tokens (1 multiply-add = 1 FLOP, full S x S attention)."""
    d, dq, dkv = dims.hidden, dims.query_dim, dims.kv_dim
    return 2 * s * d * dq + 2 * s * d * dkv + 2 * s * s * dq + s * dims.mlp_flops_per_token(layer)


def flops_by_layer(dims: LLMDims, tokens_per_layer: Sequence[int]) -> list[int]:
    """Per-layer prefill FLOPs, `(num_layers,)`, for the token count alive in each layer."""
    counts = _check_per_layer(dims, tokens_per_layer, "tokens_per_layer")
    return [layer_flops(dims, s, i) for i, s in enumerate(counts)]


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

    Per layer 2D*D_q + 2D*D_kv + 2*K*D_q + the MLP of one token, plus the LM head on that one position.
    """
    d, dq, dkv = dims.hidden, dims.query_dim, dims.kv_dim
    kv = _check_per_layer(dims, kv_len_per_layer, "kv_len_per_layer")
    per_layer = [
        2 * d * dq + 2 * d * dkv + 2 * k * dq + dims.mlp_flops_per_token(j) for j, k in enumerate(kv)
    ]
    return sum(per_layer) + lm_head_flops(dims, 1)
