"""Fusion, seen: layer by layer, how much attention text, video and audio tokens pay to each other (issue 23).

    layout = prompt_layout(adapter, inputs)
    with FusionCapture(thinker, layout) as cap:                      # the full run
        thinker.generate(**inputs, max_new_tokens=2, do_sample=False, use_audio_in_video=True)
    cap.record().to_dict()

    with Pruner(thinker, cfg) as pruner, FusionCapture(thinker, layout, pruner=pruner) as cap:   # a pruned run
        thinker.generate(...)

`measure_fusion(thinker, inputs, config=...)` does exactly that, as one extra run of its own: the capture costs
an attention's worth of work per layer and must never sit inside a timed region of a speed measurement.

How it works (nothing of transformers is copied or patched):
- a pre-hook on every decoder layer's attention module sees what the attention sees: the normed hidden states of
  the tokens alive at that layer and their RoPE cos/sin. It re-applies the layer's q/k projections (with q_norm /
  k_norm on Qwen3-Omni) through the family adapter and reduces the causal softmax to group masses in blocks of
  query rows (`method.fusion`); no attention map, eager or otherwise, is ever built or kept.
- the same hook keeps the last prompt token's full row (head mean, over every key alive).
- at generate()'s first decode step (the first answer token as input) a forward hook on each attention module reads
  the keys the model itself attended to from the KV cache and recomputes the answer token's row against them.
- with a Pruner, the original positions alive at each layer (and in each layer's cache) are read from the Pruner
  at the moment the attention runs; every number is reported in original token coordinates.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch

from ..method import fusion as MF
from ..models.family import FamilyAdapter, apply_rope, get_adapter
from ..models.hooks import Hooks
from ..prune.layout import AUDIO, MODALITY_NAMES, TEXT, VIDEO, TokenLayout, build_layout
from .measure import sync

GROUPS = tuple(MODALITY_NAMES[m] for m in (TEXT, VIDEO, AUDIO))  # group g = modality id g
MEDIA = (VIDEO, AUDIO)  # groups with time windows: the within-window share is defined between these
# generate() steps of a fusion run: the prefill, then one decode step fed the first answer token
ANSWER_STEPS = 2
_PREFILL, _ANSWER = "prefill", "answer"


def _nan(*shape) -> torch.Tensor:
    return torch.full(shape, float("nan"), dtype=torch.float64)


@dataclass
class FusionRecord:
    """Attention between modalities at every decoder layer of one run, in original token coordinates.

    matrix (L, 3, 3): [layer, query group, key group] head-mean attention mass, averaged over the query group's
    tokens alive at that layer; rows sum to 1, NaN rows where the group has no token alive. within (L, 3, 3): share
    of a media -> media cell's mass on keys in the query's own time window (NaN elsewhere). queries (L, 3): tokens
    per group alive at each layer. positions (N,): the non-text positions, the columns of `last` and `answer`.
    last (L, N): the last prompt token's attention to each of them (NaN where pruned); last_mass (L, 3) its mass
    per group. answer / answer_mass: the same for the first answer token (its own key counts as text), None when
    the run stopped before a decode step. capture_ms: time spent in the capture's hooks.
    """

    run: str
    matrix: torch.Tensor
    within: torch.Tensor
    queries: torch.Tensor
    positions: torch.Tensor
    last_position: int
    last: torch.Tensor
    last_mass: torch.Tensor
    answer_token_id: int | None
    answer: torch.Tensor | None
    answer_mass: torch.Tensor | None
    capture_ms: float
    token_position: int | None = (
        None  # the token of an opt-in `token=` capture (original position), else None
    )
    token_row: torch.Tensor | None = (
        None  # (L, N): its attention to each non-text token (NaN: pruned or later)
    )
    token_column: torch.Tensor | None = None  # (L, N): each non-text token's attention to it (NaN: pruned)

    @property
    def num_layers(self) -> int:
        return int(self.matrix.shape[0])

    def to_dict(self) -> dict:
        """JSON-ready: NaN -> None; masses to 6 decimals, per-token rows to 4 significant digits."""

        def nums(t: torch.Tensor, fmt) -> list:
            return [nums(x, fmt) for x in t] if t.dim() else (None if torch.isnan(t) else fmt(float(t)))

        def mass(t):
            return nums(t.cpu().double(), lambda x: round(x, 6))

        def rows(t):
            return nums(t.cpu().double(), lambda x: float(f"{x:.4g}"))

        answer = None
        if self.answer is not None:
            answer = {
                "token_id": self.answer_token_id,
                "position": self.last_position + 1,
                "mass": mass(self.answer_mass),
                "attention": rows(self.answer),
            }
        token = None
        if self.token_position is not None:
            token = {
                "position": self.token_position,
                "attends_to": rows(self.token_row),
                "attended_by": rows(self.token_column),
            }
        out = {
            "run": self.run,
            "groups": list(GROUPS),
            "matrix": mass(self.matrix),
            "within_window": mass(self.within),
            "query_tokens": self.queries.tolist(),
            "positions": self.positions.tolist(),
            "last_token": {
                "position": self.last_position,
                "mass": mass(self.last_mass),
                "attention": rows(self.last),
            },
            "answer_token": answer,
            "capture_ms": round(self.capture_ms, 3),
            "method": "head-mean causal softmax of every query row at every decoder layer, recomputed from the "
            "attention's own input (normed hidden states, q/k projections, RoPE) under the model's backend, in row "
            "blocks; matrix[l][q][k]: mass on key group k averaged over query group q's tokens alive at layer l; "
            "within_window: share of a media cell's mass in the query's own time window; positions in original "
            "token coordinates",
        }
        if (
            token is not None
        ):  # opt-in (`token=`): absent otherwise, so the run record's keys stay as they were
            out["token"] = token
        return out


def prompt_layout(ad: FamilyAdapter, inputs: dict) -> TokenLayout:
    """The token layout of processor inputs holding one clip (batch 1), as the analysis and the Pruner build it."""
    ids = ad.call_input_ids(inputs)
    if ids is None or ids.shape[0] != 1:
        raise ValueError("fusion is measured one clip at a time (batch 1)")
    grid = ad.call_video_grid(inputs)
    spg = ad.inputs_seconds_per_grid(inputs) if grid is not None else 1.0
    return build_layout(ids[0], ad.token_ids, grid, spg, **ad.layout_kwargs(spg))


class FusionCapture:
    """Context manager: hooks that measure fusion in every prefill (and first decode step) of `thinker`.

    layout: the prompt's TokenLayout (`prompt_layout`). pruner: an active Pruner on the same thinker, or None for
    the full run. block_elements bounds the logits of one query block (method.fusion). Read the result with
    `record()` after the run; the model is untouched on exit (hooks only observe). token: an original prompt
    position (a video or audio token) whose own row (what it attends to) and column (who attends to it) are also
    kept at every layer (the explorer's clicked token; opt-in, an attention row's worth of work per layer).
    """

    def __init__(
        self,
        thinker: torch.nn.Module,
        layout: TokenLayout,
        pruner=None,
        *,
        block_elements: int = MF.BLOCK_ELEMENTS,
        token: int | None = None,
    ):
        self.ad = get_adapter(thinker)
        self.layout = layout
        if token is not None and not (0 <= token < layout.length and bool(layout.nontext[token])):
            raise ValueError(f"token {token} is not a video or audio position of this prompt")
        self.token = token
        self.pruner = pruner
        self.block_elements = block_elements
        self._hooks = Hooks()
        self._phase: str | None = None
        self._result: dict | None = None
        for layer in self.ad.layers:
            if getattr(layer.self_attn, "sliding_window", None) is not None:
                raise ValueError("sliding-window attention layers are not supported by the fusion capture")

    # ---- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> FusionCapture:
        if self._hooks.active:
            raise RuntimeError("this FusionCapture is already attached")
        with self._hooks.installing() as h:
            h.pre(self.ad.thinker, self._on_call)
            for i, layer in enumerate(self.ad.layers):
                h.pre(layer.self_attn, self._prefill_hook(i)).post(layer.self_attn, self._answer_hook(i))
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.remove()
        self._phase = None

    # ---- thinker calls: which step is this ----------------------------------------------------------------
    def _on_call(self, module, args, kwargs):
        ad = self.ad
        if ad.is_prefill_call(kwargs):
            ids = ad.call_input_ids(kwargs)
            if ids.shape[0] != 1 or ids.shape[-1] != self.layout.length:
                raise ValueError(
                    f"the prefill holds {tuple(ids.shape)} ids; the layout has {self.layout.length} (batch 1)"
                )
            self._phase = _PREFILL
            self._start_record(ids.device)
        elif self._phase == _PREFILL:  # generate()'s first decode step: its input is the first answer token
            ids = ad.call_input_ids(kwargs)
            self._phase = _ANSWER
            self._result["answer_token_id"] = int(ids.reshape(-1)[-1]) if ids is not None else None
        else:
            self._phase = None
        return None

    def _start_record(self, dev: torch.device) -> None:
        L, S = self.ad.num_layers, self.layout.length
        self._mod = self.layout.modality  # (S,) group of every original position (host)
        self._win = self.layout.window  # (S,) time window, -1 for text
        self._result = dict(
            matrix=[None] * L,
            within=[None] * L,
            queries=[None] * L,
            last=[None] * L,
            last_mass=[None] * L,
            answer=[None] * L,
            answer_mass=[None] * L,
            answer_token_id=None,
            ms=0.0,
            token_row=[None] * L,
            token_column=[None] * L,
        )
        self._device = dev
        self._S = S

    # ---- where the tokens are ----------------------------------------------------------------------------
    def _alive(self, layer: int, n: int) -> torch.Tensor:
        """(n,) original positions of the n tokens the attention of `layer` sees in this prefill."""
        if self.pruner is None:
            pos = torch.arange(self._S)
        else:
            pos = _pruner_alive(self.pruner, layer)
        if pos.numel() != n:
            raise RuntimeError(f"layer {layer}: {n} tokens reach the attention, {pos.numel()} are alive")
        return pos

    def _cached(self, layer: int, n: int) -> torch.Tensor:
        """(n,) original positions of the n prompt keys in `layer`'s KV cache while decoding."""
        if self.pruner is None:
            pos = torch.arange(self._S)
        else:
            pos = _pruner_cached(self.pruner, layer)
        if pos.numel() != n:
            raise RuntimeError(f"layer {layer}: the cache holds {n} prompt keys, {pos.numel()} are known")
        return pos

    def _qk(self, layer: int, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """q (H, S, d), k (H_kv, S, d) after the layer's projections, q/k norms and RoPE; and its scale."""
        attn = self.ad.layers[layer].self_attn
        q = apply_rope(self.ad._q(attn, hidden), cos.unsqueeze(1), sin.unsqueeze(1))  # (1, H, S, d)
        k = apply_rope(self.ad._k(attn, hidden), cos.unsqueeze(1), sin.unsqueeze(1))  # (1, H_kv, S, d)
        return q[0], k[0], attn.scaling

    # ---- the prefill: every query row of every layer -----------------------------------------------------------
    def _prefill_hook(self, i: int):
        def hook(module, args, kwargs):
            if self._phase == _PREFILL:
                self._timed(self._measure_prefill, i, args, kwargs)
            return None

        return hook

    def _timed(self, fn, *args) -> None:
        sync(self._device)
        t0 = time.perf_counter()
        fn(*args)
        sync(self._device)
        self._result["ms"] += (time.perf_counter() - t0) * 1e3

    def _measure_prefill(self, i: int, args, kwargs) -> None:
        hidden = self.ad.split_layer_call(args, kwargs)  # (1, S_i, D): the attention's normed input
        cos, sin = self.ad.layer_rope(kwargs)  # (1, S_i, d)
        pos = self._alive(i, hidden.shape[1])  # (S_i,) original positions, on the host
        if int(pos[-1]) != self._S - 1:
            raise RuntimeError("the last prompt token must stay alive")
        dev = hidden.device  # each layer's own device (a model may be split over several)
        mod, win, pos = self._mod[pos].to(dev), self._win[pos].to(dev), pos.to(dev)  # (S_i,)
        q, k, scale = self._qk(i, hidden, cos, sin)
        G = len(GROUPS)
        blocks = self.block_elements
        mass, same = MF.group_mass(
            q, k, scale, pos, pos, mod, G, query_window=win, key_window=win, block_elements=blocks
        )  # (S_i, G) each
        r = self._result
        r["matrix"][i] = MF.group_means(mass, mod, G)  # (G, G)
        r["within"][i] = MF.within_window_share(mass, same, mod, G)  # (G, G)
        r["queries"][i] = torch.bincount(mod, minlength=G)  # (G,)
        last = MF.head_mean_attention(q[:, -1:], k, scale, pos[-1:], pos)[0]  # (S_i,)
        r["last"][i] = self._scatter(last, pos)
        r["last_mass"][i] = mass[-1]
        if self.token is not None:
            self._measure_token(i, q, k, scale, pos)

    def _measure_token(
        self, i: int, q: torch.Tensor, k: torch.Tensor, scale: float, pos: torch.Tensor
    ) -> None:
        """The chosen token's row and column at layer i, as (S,) rows over the prompt (NaN where no token was)."""
        r, nan = self._result, torch.full((self._S,), float("nan"), device=pos.device)
        at = (pos == self.token).nonzero().squeeze(-1)  # (1,) or (0,): the token's row among the alive
        if at.numel() == 0:  # pruned before this layer: it neither reads nor is read
            r["token_row"][i], r["token_column"][i] = nan, nan
            return
        j = int(at)
        row = MF.head_mean_attention(q[:, j : j + 1], k, scale, pos[j : j + 1], pos)[0]  # (S_i,)
        key = (torch.arange(pos.numel(), device=pos.device) == j).long()  # (S_i,) group 1 = the token alone
        column = MF.group_mass(q, k, scale, pos, pos, key, 2, block_elements=self.block_elements)[0][:, 1]
        r["token_row"][i] = self._scatter(row, pos)
        r["token_column"][i] = self._scatter(column, pos)  # (S,) queries before it read it with 0

    def _scatter(self, row: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """A row over the keys at `pos` as an (S,) row over the original prompt, NaN where no key was."""
        full = torch.full((self._S,), float("nan"), dtype=row.dtype, device=row.device)
        keep = pos < self._S
        return full.index_copy(0, pos[keep], row[keep])

    # ---- the first decode step: the answer token's row ---------------------------------------------------
    def _answer_hook(self, i: int):
        def hook(module, args, kwargs, output):
            if self._phase == _ANSWER:
                self._timed(self._measure_answer, i, args, kwargs)
            return None

        return hook

    def _measure_answer(self, i: int, args, kwargs) -> None:
        hidden = self.ad.split_layer_call(args, kwargs)  # (1, 1, D) the answer token
        cos, sin = self.ad.layer_rope(kwargs)
        keys = _cached_keys(self.ad.layer_cache(kwargs), i)  # (H_kv, n, d): the prompt's, then its own
        q, _, scale = self._qk(i, hidden, cos, sin)  # (H, 1, d)
        prompt = self._cached(i, keys.shape[1] - 1)  # (n - 1,) on the host
        pos = torch.cat([prompt, prompt.new_tensor([self._S])]).to(keys.device)  # (n,) the answer sits at S
        row = MF.head_mean_attention(q, keys, scale, pos[-1:], pos)[0]  # (n,)
        groups = torch.cat([self._mod[prompt], self._mod.new_tensor([TEXT])]).to(row.device)
        r = self._result
        r["answer"][i] = self._scatter(row, pos)
        zeros = torch.zeros(len(GROUPS), dtype=row.dtype, device=row.device)
        r["answer_mass"][i] = zeros.index_add(0, groups, row)  # (G,)

    # ---- the record --------------------------------------------------------------------------------------
    def record(self, run: str = "full") -> FusionRecord:
        """What the last prefill (and its first decode step) measured; raises if no prefill went through."""
        r = self._result
        if r is None or any(m is None for m in r["matrix"]):
            raise RuntimeError("no complete prefill was captured")
        cols = self.layout.nontext.nonzero().squeeze(-1)  # (N,)
        media = torch.zeros(len(GROUPS), dtype=torch.bool)
        media[list(MEDIA)] = True

        def stack(key: str) -> torch.Tensor:
            return torch.stack([t.cpu() for t in r[key]])

        within = stack("within").double()  # (L, G, G)
        within[:, ~(media[:, None] & media[None, :])] = float("nan")
        has_answer = all(a is not None for a in r["answer"])
        return FusionRecord(
            run=run,
            matrix=stack("matrix").double(),
            within=within,
            queries=stack("queries"),
            positions=cols,
            last_position=self._S - 1,
            last=stack("last")[:, cols],
            last_mass=stack("last_mass").double(),
            answer_token_id=r["answer_token_id"] if has_answer else None,
            answer=stack("answer")[:, cols] if has_answer else None,
            answer_mass=stack("answer_mass").double() if has_answer else None,
            capture_ms=r["ms"],
            token_position=self.token,
            token_row=stack("token_row")[:, cols] if self.token is not None else None,
            token_column=stack("token_column")[:, cols] if self.token is not None else None,
        )


def _pruner_alive(pruner, layer: int) -> torch.Tensor:
    """Original positions alive at `layer` in the Pruner's current prefill, from its trace (read only).

    `trace.survives_to[p]` is the number of decoder layers that process position p, written at each drop before
    that layer's attention runs, so while layer `layer` runs the positions it sees are those with more.
    """
    if pruner.trace is None:
        raise RuntimeError("the Pruner given to FusionCapture has not seen a prefill (attach it first)")
    return (pruner.trace.survives_to > layer).nonzero().squeeze(-1)  # (S_layer,)


def _pruner_cached(pruner, layer: int) -> torch.Tensor:
    """Original positions of the prompt keys in `layer`'s KV cache after the Pruner's prefill.

    Layer l caches the tokens alive at l; with `prune_kv`, the caches of the layers before the plan's last drop are
    cut to that drop's survivors (attach.Pruner). The caller checks the count against the cache itself.
    """
    last = max((d.layer for d in pruner.plan), default=-1)
    return _pruner_alive(pruner, max(layer, last) if pruner.config.prune_kv else layer)


def _cached_keys(cache, layer: int) -> torch.Tensor:
    """(H_kv, n, d) keys in `layer`'s cache after this step's update (batch 1), as the attention read them."""
    if cache is None:
        raise RuntimeError("the decode step has no KV cache to read the answer token's keys from")
    return cache.layers[layer].keys[0]


@torch.inference_mode()
def measure_fusion(
    thinker,
    inputs: dict,
    *,
    has_audio: bool = True,
    config=None,
    plan=None,
    run: str | None = None,
    token: int | None = None,
) -> FusionRecord:
    """Fusion of one clip in a run of its own: generate() for ANSWER_STEPS steps under the capture.

    inputs: processor inputs (batch 1); config: a SeatsConfig to measure the pruned run on its surviving tokens
    (a Pruner is attached as `Engine.run` does, with `plan` if given), None for the full run. Never call this
    inside a timed region. token: also keep this original position's row and column at every layer
    (FusionCapture's `token`). Returns the FusionRecord (run = config.method, or "full").
    """
    from ..prune.attach import Pruner

    ad = get_adapter(thinker)
    layout = prompt_layout(ad, inputs)
    with contextlib.ExitStack() as stack:
        pruner = None
        if config is not None:
            spg = ad.inputs_seconds_per_grid(inputs) if ad.call_video_grid(inputs) is not None else 1.0
            pruner = stack.enter_context(Pruner(thinker, config, plan, seconds_per_grid=spg))
        cap = stack.enter_context(FusionCapture(thinker, layout, pruner, token=token))
        thinker.generate(
            **inputs, **ad.generate_kwargs(has_audio), max_new_tokens=ANSWER_STEPS, do_sample=False
        )
    return cap.record(run or (config.method if config is not None else "full"))
