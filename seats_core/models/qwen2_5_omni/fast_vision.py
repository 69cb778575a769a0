"""Faster Qwen2.5-Omni vision encoder: all attention windows of a block in one SDPA call.

The stock non-flash path (transformers 5.23, `Qwen2_5OmniVisionAttention.forward`) splits q/k/v at `cu_seqlens`
with a host sync (`lengths.tolist()`) and runs one attention call per window (per frame in the full-attention
blocks), in every one of the 32 blocks. Here, per encoder forward:

1. a forward pre-hook reads `grid_thw` once (the only host sync), computes the position ids, window order and
   `cu_seqlens` with transformers' own `vision_utils` helpers, plus a `ChunkPlan` for the window blocks and
   one for the full-attention blocks, moves them to the input's device in one copy, and passes the precomputed
   tensors to the encoder through its documented precompute kwargs;
2. each block's attention runs the chunks as one batch: equal-length chunks are a plain reshape
   `(L, H, d) -> (B, H, Lc, d)`; ragged ones are gathered into `(B, H, Lmax, d)` with a boolean key mask, and
   the padded query rows are dropped afterwards;
3. RoPE uses cos/sin prepared once per forward (unsqueezed, sign folded into sin, cast to the activation dtype)
   instead of re-casting per block. In fp32 this is bit-identical to the stock formula; in bf16 it skips the
   stock fp32 round trip (pass `rope_in_fp32=True` to keep it).

Attention always goes through `F.scaled_dot_product_attention` (also for an "eager" config: equal within fp32
rounding). Flash-attention configs keep the stock forward, which is already varlen-batched.

Attached per instance: each block's `attn.forward` is shadowed by an instance attribute and two hooks go on the
encoder; `handle.remove()` / leaving `with fast_vision(visual):` deletes all of it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
import transformers
from transformers import vision_utils

from ..hooks import Hooks

_MARK = "_seats_fast_vision"  # instance attribute present only while enabled
_MAX_LAZY_PLANS = 4  # plans built on the fly for cu_seqlens tensors the pre-hook did not see
_ROPE_HALVES = 2


@dataclass(frozen=True)
class ChunkPlan:
    """How to run attention over a packed sequence of L rows cut into B contiguous chunks as one batch.

    num_chunks: B. max_len: Lmax, the longest chunk. When every chunk has length Lmax (`uniform`) the tensors are
    None and the batch is a reshape. Otherwise:
    gather: `(B*Lmax,)` long, the sequence row for each padded slot (pad slots repeat their chunk's first row);
    keep: `(L,)` long, the padded slot of each sequence row, in sequence order;
    key_mask: `(B, 1, 1, Lmax)` bool, True for real keys.
    """

    num_chunks: int
    max_len: int
    gather: torch.Tensor | None = None
    keep: torch.Tensor | None = None
    key_mask: torch.Tensor | None = None

    @property
    def uniform(self) -> bool:
        return self.gather is None


def build_chunk_plan(lengths: list[int]) -> ChunkPlan:
    """A `ChunkPlan` (CPU tensors) for chunk lengths given as host ints, e.g. `cu_seqlens.diff().tolist()`."""
    if not lengths or min(lengths) <= 0:
        raise ValueError(f"chunk lengths must be positive, got {lengths}")
    num, longest = len(lengths), max(lengths)
    if min(lengths) == longest:
        return ChunkPlan(num, longest)
    lens = torch.tensor(lengths, dtype=torch.long)  # (B,)
    starts = lens.cumsum(0) - lens  # (B,)
    slot = torch.arange(longest)  # (Lmax,)
    valid = slot[None, :] < lens[:, None]  # (B, Lmax)
    gather = torch.where(valid, starts[:, None] + slot[None, :], starts[:, None])  # (B, Lmax)
    keep = valid.reshape(-1).nonzero().squeeze(1)  # (L,)
    return ChunkPlan(num, longest, gather.reshape(-1), keep, valid[:, None, None, :])


def batched_chunk_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: ChunkPlan, scale: float, dropout: float = 0.0
) -> torch.Tensor:
    """Bidirectional attention within each chunk, all chunks in one SDPA call.

    q, k, v: `(L, H, d)`, rows packed chunk after chunk. Returns `(L, H*d)` in the same row order.
    """
    seq, heads, head_dim = q.shape
    b, lmax = plan.num_chunks, plan.max_len

    def batch(x):  # (L, H, d) -> (B, H, Lmax, d)
        if not plan.uniform:
            x = x.index_select(0, plan.gather)  # (B*Lmax, H, d)
        return x.reshape(b, lmax, heads, head_dim).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        batch(q), batch(k), batch(v), attn_mask=plan.key_mask, dropout_p=dropout, scale=scale
    )  # (B, H, Lmax, d)
    out = out.transpose(1, 2).reshape(b * lmax, heads * head_dim)  # (B*Lmax, H*d)
    return out if plan.uniform else out.index_select(0, plan.keep)  # (L, H*d)


def _to_device(tensors: list[torch.Tensor | None], device: torch.device) -> list[torch.Tensor | None]:
    """Move small CPU integer/bool tensors to `device` in one copy (pinned, non-blocking on CUDA)."""
    present = [t for t in tensors if t is not None]
    if device.type == "cpu" or not present:
        return tensors
    flat = torch.cat([t.reshape(-1).to(torch.long) for t in present])
    if device.type == "cuda":
        flat = flat.pin_memory()
    flat = flat.to(device, non_blocking=True)
    moved = iter(flat.split([t.numel() for t in present]))
    return [None if t is None else next(moved).view(t.shape).to(t.dtype) for t in tensors]


def _plan_tensors(plan: ChunkPlan) -> list[torch.Tensor | None]:
    return [plan.gather, plan.keep, plan.key_mask]


def _with_tensors(plan: ChunkPlan, tensors: list[torch.Tensor | None]) -> ChunkPlan:
    return replace(plan, gather=tensors[0], keep=tensors[1], key_mask=tensors[2])


def _check_layout(visual) -> None:
    needed_encoder = ("blocks", "rotary_pos_emb", "spatial_merge_size", "window_size", "patch_size", "config")
    needed_attn = ("q", "k", "v", "proj", "num_heads", "scaling", "config")
    ok = all(hasattr(visual, a) for a in needed_encoder) and all(
        hasattr(getattr(b, "attn", None), a) for b in getattr(visual, "blocks", []) for a in needed_attn
    )
    helpers = ("get_vision_cu_seqlens", "get_vision_position_ids", "get_vision_window_index")
    if not ok or not all(hasattr(vision_utils, h) for h in helpers):
        raise TypeError(
            f"{type(visual).__name__} does not look like a Qwen2.5-Omni vision encoder as laid out in "
            f"transformers 5.23 (installed: {transformers.__version__}); fast_vision needs "
            f"{needed_encoder}, blocks[i].attn.{needed_attn} and vision_utils.{helpers}"
        )


class FastVisionHandle:
    """Undo record of one `enable_fast_vision` call; `remove()` restores the encoder exactly (idempotent)."""

    def __init__(self, visual, rope_in_fp32: bool = False):
        self.visual = visual
        self.rope_in_fp32 = rope_in_fp32
        self._plans: list[tuple[torch.Tensor, ChunkPlan]] = []  # keyed by identity of a cu_seqlens tensor
        self._rope: tuple | None = None  # (cos key, dtype, cos (L,1,d), signed sin (L,1,d))
        self._saved_forwards: list[tuple[torch.nn.Module, object]] = []
        self._hooks = Hooks()
        self._active = False

    # -- attach / detach -------------------------------------------------------------------------------------
    def _attach(self) -> None:
        for blk in self.visual.blocks:
            attn = blk.attn
            self._saved_forwards.append((attn, attn.__dict__.get("forward", _MARK)))
            attn.forward = self._make_forward(attn)
        self._hooks.pre(self.visual, self._pre_hook)
        self._hooks.post(self.visual, self._clear, with_kwargs=False, always_call=True)
        setattr(self.visual, _MARK, self)
        self._active = True

    def remove(self) -> None:
        if not self._active:
            return
        self._hooks.remove()
        for attn, saved in self._saved_forwards:
            if saved is _MARK:
                del attn.forward
            else:
                attn.forward = saved
        delattr(self.visual, _MARK)
        self._saved_forwards.clear()
        self._clear()
        self._active = False

    # -- per-forward bookkeeping -----------------------------------------------------------------------------
    def _clear(self, *_args) -> None:
        self._plans.clear()
        self._rope = None

    def _pre_hook(self, module, args, kwargs):
        precomputed = ("cu_seqlens", "position_ids", "window_index", "cu_window_seqlens")
        if any(kwargs.get(key) is not None for key in precomputed):
            return None  # caller precomputed them: plans are then built lazily per cu_seqlens tensor
        hidden = args[0] if args else kwargs["hidden_states"]
        grid_thw = args[1] if len(args) > 1 else kwargs["grid_thw"]
        grid = grid_thw.detach().to("cpu")  # (N, 3); the one host sync of the forward
        merge = module.spatial_merge_size
        cu = vision_utils.get_vision_cu_seqlens(grid)  # (frames+1,) int32
        pos = vision_utils.get_vision_position_ids(grid, merge)  # (L, 2)
        win_index, cu_win = vision_utils.get_vision_window_index(
            grid, spatial_merge_size=merge, window_size=module.window_size, patch_size=module.patch_size
        )  # (L/merge^2,), (windows+1,) int32
        full_plan = build_chunk_plan(cu.diff().tolist())
        win_plan = build_chunk_plan(cu_win.diff().tolist())
        moved = _to_device(
            [cu, pos, win_index, cu_win, *_plan_tensors(full_plan), *_plan_tensors(win_plan)], hidden.device
        )
        cu, pos, win_index, cu_win = moved[:4]
        self._plans[:] = [
            (cu, _with_tensors(full_plan, moved[4:7])),
            (cu_win, _with_tensors(win_plan, moved[7:])),
        ]
        kwargs = dict(
            kwargs, cu_seqlens=cu, position_ids=pos, window_index=win_index, cu_window_seqlens=cu_win
        )
        return args, kwargs

    def _plan_for(self, cu_seqlens: torch.Tensor) -> ChunkPlan:
        for key, plan in self._plans:
            if key is cu_seqlens:
                return plan
        plan = build_chunk_plan(
            cu_seqlens.diff().tolist()
        )  # host sync: only for tensors the hook did not make
        plan = _with_tensors(plan, _to_device(_plan_tensors(plan), cu_seqlens.device))
        self._plans.append((cu_seqlens, plan))
        del self._plans[: -(_MAX_LAZY_PLANS + 2)]
        return plan

    def _rope_tables(self, cos: torch.Tensor, sin: torch.Tensor, dtype: torch.dtype):
        """cos `(L, 1, d)` and sin with rotate_half's sign folded in, `(L, 1, d)`, once per forward."""
        if self._rope is None or self._rope[0] is not cos or self._rope[1] != dtype:
            half = sin.shape[-1] // _ROPE_HALVES
            signed_sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)
            self._rope = (cos, dtype, cos.unsqueeze(-2).to(dtype), signed_sin.unsqueeze(-2).to(dtype))
        return self._rope[2], self._rope[3]

    # -- the replacement attention forward -------------------------------------------------------------------
    def _make_forward(self, attn):
        stock_forward = attn.forward  # bound class method, used for flash configs

        def forward(hidden_states, cu_seqlens, position_embeddings=None, max_seqlen=None, **kwargs):
            if "flash" in str(attn.config._attn_implementation or ""):
                return stock_forward(hidden_states, cu_seqlens, position_embeddings, max_seqlen, **kwargs)
            seq = hidden_states.shape[0]
            q = attn.q(hidden_states).reshape(seq, attn.num_heads, -1)  # (L, H, d)
            k = attn.k(hidden_states).reshape(seq, attn.num_heads, -1)  # (L, H, d)
            v = attn.v(hidden_states).reshape(seq, attn.num_heads, -1)  # (L, H, d)
            q, k = self._apply_rope(q, k, *position_embeddings)
            dropout = attn.attention_dropout if attn.training else 0.0
            out = batched_chunk_attention(q, k, v, self._plan_for(cu_seqlens), attn.scaling, dropout)
            return attn.proj(out)  # (L, D)

        return forward

    def _apply_rope(self, q, k, cos, sin):
        """Rotary embedding on q, k `(L, H, d)`; equal to stock `apply_rotary_pos_emb_vision` (bitwise in fp32)."""
        dtype = torch.float32 if self.rope_in_fp32 else q.dtype
        cos_t, sin_t = self._rope_tables(cos, sin, dtype)
        half = q.shape[-1] // _ROPE_HALVES

        def rotate(x):  # x*cos + rotate_half(x)*sin, with rotate_half's minus sign already inside sin_t
            xf = x.to(dtype)
            swapped = torch.cat([xf[..., half:], xf[..., :half]], dim=-1)
            return (xf * cos_t + swapped * sin_t).to(x.dtype)

        return rotate(q), rotate(k)


def enable_fast_vision(visual, rope_in_fp32: bool = False) -> FastVisionHandle:
    """Patch one vision encoder instance; returns a handle whose `remove()` restores it exactly.

    Enabling an already-patched encoder returns an inert handle, so nested `with fast_vision(...)` blocks are safe.
    """
    existing = visual.__dict__.get(_MARK)
    if existing is not None:
        return FastVisionHandle(visual, rope_in_fp32)  # inactive: its remove() does nothing
    _check_layout(visual)
    handle = FastVisionHandle(visual, rope_in_fp32)
    handle._attach()
    return handle


@contextlib.contextmanager
def fast_vision(visual, rope_in_fp32: bool = False):
    """`with fast_vision(thinker.model.visual): ...` runs the batched-window encoder; restores it on exit."""
    handle = enable_fast_vision(visual, rope_in_fp32=rope_in_fp32)
    try:
        yield handle
    finally:
        handle.remove()
