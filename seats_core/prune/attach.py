"""Attach SEATS (or a baseline) to one loaded Qwen-Omni thinker with hooks; restore it exactly on exit.

    with Pruner(thinker, SeatsConfig.make("seats", "R10")) as pruner:
        out = thinker.generate(**inputs, use_audio_in_video=True)
    pruner.trace  # PruneTrace of the last prefill, in original token coordinates

How it works (nothing of transformers is copied or patched globally):
- a pre-hook on the thinker sees each call's input_ids / video grid and builds the token layout at prefill;
- pre-hooks on the last vision block and last audio layer record Stage-I importance (a statistic only);
- a pre-hook on the text model takes per-layer injections off its call (Qwen3-Omni's DeepStack features), and
  the decoder-layer hooks add them to the visual tokens still alive, before any drop at that layer;
- a pre-hook on every decoder layer keeps the residual stream and the layer's kwargs (RoPE cos/sin, position
  ids, mask) on the tokens still alive; at a drop layer it first chooses which tokens survive, and at the
  plan's last drop it prunes the KV cache already written by earlier layers to the survivors (decoding is the
  only reader of those caches). Positions keep their original numbering throughout, so generate() continues
  decoding from the original maximum position + 1.

Every module path, kwarg name and layout constant comes from the model family's adapter (models/family).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .. import method as M
from ..models.family import get_adapter
from ..models.hooks import Hooks, sync
from .config import SeatsConfig
from .layout import AUDIO, VIDEO, build_layout
from .methods import BEFORE_LLM, STAGES, USES_IMPORTANCE, Drop, DropContext, build_plan
from .trace import PruneTrace

# Drops, plans and stage kinds come from the methods registry (seats_core/prune/methods.py).
__all__ = ["BEFORE_LLM", "USES_IMPORTANCE", "Drop", "Pruner", "build_plan"]


def _clock(device: torch.device) -> float:
    """time.perf_counter() after the device's queued work is done."""
    sync(device)
    return time.perf_counter()


@dataclass
class _Prefill:
    """Per-prefill state of the hooks (batch 1; S = prompt length, positions in original coordinates).

    alive: (S_cur,) original positions still in the sequence; cache_alive: layer -> the positions its KV cache
    holds; modality, window: (S,); rank: modality -> (S,) k-th token of that modality; importance: modality ->
    (N_m,) Stage-I statistic in sequence order; extras: per-layer injections (DeepStack); copies: (trace tensor,
    indices, values) written to the host after a drop's timed region.
    """

    grid: torch.Tensor | None
    spg: float
    alive: torch.Tensor
    modality: torch.Tensor
    window: torch.Tensor
    frame: torch.Tensor
    patch: torch.Tensor
    rank: dict
    device: torch.device
    cache_alive: dict = field(default_factory=dict)
    importance: dict = field(default_factory=dict)
    extras: dict | None = None
    copies: list = field(default_factory=list)


class Pruner:
    """Context manager that applies one pruning plan to every prefill of `thinker` while active."""

    def __init__(
        self,
        thinker: torch.nn.Module,
        config: SeatsConfig,
        plan: list[Drop] | None = None,
        *,
        seconds_per_grid: float = 1.0,
    ):
        self.ad = get_adapter(thinker)
        self.recipe = self.ad.recipe
        self.config = config.resolve(self.ad)
        self.plan = build_plan(self.config, self.ad.num_layers) if plan is None else list(plan)
        self._drops = {d.layer: d for d in self.plan}
        self._last_drop = max(self._drops, default=-1)
        if len(self._drops) != len(self.plan):
            raise ValueError("two drops at the same layer")
        self._needs_importance = any(d.kind in USES_IMPORTANCE for d in self.plan)
        self._hooks = Hooks()
        self.trace: PruneTrace | None = None
        self.traces: list[PruneTrace] = []
        self.seconds_per_grid = seconds_per_grid  # temporal_patch_size / fps; 1.0 at the paper's 2 fps
        self._prefill = False
        self._state: _Prefill | None = None
        self._vision: dict = {}

    # ---- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Pruner:
        if self._hooks.active:
            raise RuntimeError("this Pruner is already attached")
        ad = self.ad
        with self._hooks.installing() as h:
            h.pre(ad.thinker, self._on_call).post(ad.thinker, self._after_call)
            h.pre(ad.visual, self._on_visual).pre(ad.text_model, self._on_decoder)
            if self._needs_importance:
                h.pre(ad.vision_last_block, self._on_vision).pre(ad.audio_last_layer, self._on_audio)
            for i, layer in enumerate(ad.layers):
                h.pre(layer, self._layer_hook(i))
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.remove()
        self._prefill = False
        self._state = None
        self._vision = {}

    # ---- thinker call ----------------------------------------------------------------------------------
    def _on_call(self, module, args, kwargs):
        ad = self.ad
        ids = ad.call_input_ids(kwargs)
        cache = ad.call_cache(kwargs)
        self._prefill = ad.is_prefill_call(kwargs)
        if self._prefill:
            if ids.shape[0] != 1:
                raise ValueError("SEATS hooks support batch size 1 (the paper's evaluation setting)")
            grid = ad.call_video_grid(kwargs)
            grid = self._vision.get("grid") if grid is None else grid
            spg = ad.call_seconds_per_grid(kwargs)
            spg = self.seconds_per_grid if spg is None else spg
            layout = build_layout(ids[0], ad.token_ids, grid, spg, **ad.layout_kwargs(spg))
            dev = ids.device
            self.trace = PruneTrace.new(layout, self.ad.num_layers)
            self.trace.importance_ms = self._vision.get("importance_ms", 0.0)  # encoder ran before this call
            self._state = _Prefill(
                grid=grid,
                spg=spg,
                alive=torch.arange(layout.length, device=dev),
                modality=layout.modality.to(dev),
                window=layout.window.to(dev),
                frame=layout.t.to(dev),
                patch=(layout.row * layout.grid_hw[1] + layout.col).to(dev),
                # (S,) per modality: position k means "the k-th token of that modality" (original order)
                rank={m: (layout.modality == m).cumsum(0).sub(1).to(dev) for m in (VIDEO, AUDIO)},
                device=dev,
            )
        elif cache is not None and ids is not None:
            # Decode: layer 0's cache may be shorter than the prompt; give the 2-D mask the same key length.
            am = ad.call_mask(kwargs)
            n = ad.cache_length(cache, 0) + ids.shape[-1]
            if isinstance(am, torch.Tensor) and am.dim() == 2 and am.shape[-1] != n:
                if not bool(am.all()):
                    raise ValueError("padded batches are not supported with pruning")
                kwargs = ad.with_mask(kwargs, am[:, -n:])
        return args, kwargs

    def _on_decoder(self, module, args, kwargs):
        """Before the decoder: take per-layer injections (DeepStack) so the layer hooks can apply them."""
        if not self._prefill or self._state is None:
            return None
        kwargs, extras = self.ad.take_decoder_extras(kwargs)
        if extras is None:
            return None
        self._state.extras = extras
        return args, kwargs

    def _after_call(self, module, args, kwargs, output):
        if self._prefill and self.trace is not None:
            self.trace.kv_bytes = self.ad.cache_bytes(getattr(output, "past_key_values", None))
            self.traces.append(self.trace)
        self._prefill = False
        self._vision = {}  # consumed by this prefill
        return output

    # ---- Stage-I importance (statistics only; the encoders' outputs are untouched) ----------------------
    # generate() may run the vision encoder before the prefill call (transformers 5.x), so the vision
    # statistics are kept aside and picked up by the next prefill.
    def _on_visual(self, module, args, kwargs):
        self._vision = {"grid": self.ad.visual_grid(args, kwargs), "importance": None}

    def _on_vision(self, module, args, kwargs):
        grid = self._vision.get("grid")
        if grid is None or grid.shape[0] != 1:
            return None
        dev = next(module.parameters()).device  # where the statistic runs (grid_thw may stay on the host)
        t0 = _clock(dev)
        q, k, scale = self.ad.vision_qk(args, kwargs)  # (H, N, d) in the encoder's row order
        gt, gh, gw = (int(x) for x in grid[0])
        if self.config.window_rule == "authors":  # fixed blocks of 2 temporal grids (spec §9)
            grids = self.recipe.video_block_grids
        else:  # the family's interleave chunk in time
            grids = self.ad.stage1_video_grids(self.seconds_per_grid)
        self._vision["importance"] = M.video_token_importance(  # (N/4,) per LLM token, raster order
            q, k, scale, grids * gh * gw, self.ad.spatial_merge_size**2, self.ad.vision_raster_order(grid)
        )
        self._add_importance_ms(t0, dev)
        return None

    def _on_audio(self, module, args, kwargs):
        st = self._state if self._prefill else None
        if st is None:
            return None
        t0 = _clock(st.device)
        q, k, scale, cu = self.ad.audio_qk(args, kwargs)  # (H, N, d), chunk boundaries (C+1,)
        imp = M.chunked_received_attention(q, k, cu.tolist(), scale)  # (N,) per encoder row
        st.importance[AUDIO] = M.pool_rows(imp, self.ad.audio_pool)  # (N / pool,) per audio token
        self._add_importance_ms(t0, st.device)
        return None

    def _add_importance_ms(self, t0: float, device: torch.device) -> None:
        """Time of one Stage-I statistic into the trace (or kept for the next prefill, as the vision one)."""
        ms = (_clock(device) - t0) * 1e3
        if self._prefill and self.trace is not None:
            self.trace.importance_ms += ms
        else:
            self._vision["importance_ms"] = self._vision.get("importance_ms", 0.0) + ms

    # ---- decoder layers ------------------------------------------------------------------------------
    def _layer_hook(self, i: int):
        def hook(module, args, kwargs):
            return self._on_layer(i, args, kwargs)

        return hook

    def _on_layer(self, i: int, args, kwargs):
        ad = self.ad
        if not self._prefill:
            mask, cache = ad.call_mask(kwargs), ad.layer_cache(kwargs)
            if isinstance(mask, torch.Tensor) and mask.dim() == 4 and cache is not None:
                n = ad.cache_length(cache, i) + mask.shape[-2]
                if mask.shape[-1] != n:
                    return args, ad.with_mask(kwargs, mask[..., -n:])
            return None
        st = self._state
        hidden = ad.split_layer_call(args, kwargs)
        extras = st.extras
        if extras is not None and 1 <= i <= len(extras["embeds"]):
            hidden = self._inject(hidden, extras["embeds"][i - 1])  # after layer i-1, before a drop at i
        if i in self._drops:
            hidden = self._drop(self._drops[i], hidden, kwargs)
        alive = st.alive
        if alive.numel() != self.trace.layout.length:
            kwargs = ad.slice_layer_kwargs(kwargs, alive)
        st.cache_alive[i] = alive
        return ad.join_layer_call(args, kwargs, hidden)

    def _inject(self, hidden: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """Add DeepStack features (Nv, D), one row per original video token, to the video tokens alive."""
        st = self._state
        alive = st.alive
        rows = (st.modality[alive] == VIDEO).nonzero().squeeze(-1)  # (n,) video rows of the current sequence
        return self.ad.add_deepstack(
            hidden, rows, embeds[st.rank[VIDEO][alive[rows]]]
        )  # rows follow survivors

    # ---- one drop --------------------------------------------------------------------------------------
    def _drop(self, drop: Drop, hidden: torch.Tensor, kwargs: dict) -> torch.Tensor:
        """Choose the survivors with the drop's stage (methods registry), then slice the stream and caches."""
        st, cfg, trace = self._state, self.config, self.trace
        sync(st.device)
        t0 = time.perf_counter()
        alive = st.alive
        mod = st.modality[alive]  # (S_cur,)
        st.copies = []
        ctx = DropContext(
            drop=drop,
            config=cfg,
            hidden=hidden,
            modality=mod,
            window=st.window[alive],
            frame=st.frame[alive],
            patch=st.patch[alive],
            original=alive,
            blocks=lambda m, rows: self._stage1_windows(m, rows, alive),
            importance=lambda m, rows: self._importance(m, rows, alive),
            relevance=self._relevance(drop, hidden, kwargs, alive),
        )
        keep = STAGES[drop.kind].select(ctx)  # (S_cur,) bool
        survivors = keep.nonzero().squeeze(-1)  # (S_new,) one host read
        hidden = hidden.index_select(1, survivors)
        new_alive = alive[survivors]
        st.alive = new_alive
        if cfg.prune_kv and drop.layer == self._last_drop:
            # Earlier layers' caches are read only when decoding, so they are pruned once, at the plan's last
            # drop, to the final survivors (layers after it cache only those).
            cache = self.ad.layer_cache(kwargs)
            where: dict[int, torch.Tensor] = {}  # layers cached since the same drop share one index
            for j, had in st.cache_alive.items():
                if cache is not None and had.numel() != new_alive.numel():
                    if id(had) not in where:
                        where[id(had)] = torch.searchsorted(had, new_alive)
                    self.ad.prune_cache(cache, j, where[id(had)])
                    st.cache_alive[j] = new_alive
        sync(st.device)
        trace.selection_ms += (time.perf_counter() - t0) * 1e3
        trace.survives_to[alive[~keep].cpu()] = drop.layer
        for dst, idx, values in st.copies:
            dst[idx.cpu()] = values.float().cpu()
        st.copies = []
        parts = ctx.info.pop("parts", None)
        counts = {n: int((mod == m).sum()) for n, m in (("video", VIDEO), ("audio", AUDIO))}
        after = {n: int((st.modality[new_alive] == m).sum()) for n, m in (("video", VIDEO), ("audio", AUDIO))}
        trace.events.append(
            dict(
                layer=drop.layer,
                stage=drop.kind,
                keep_video=drop.keep_video,
                keep_audio=drop.keep_audio,
                before=counts,
                after=after,
                info={**(M.budget_info(parts) if parts is not None else {}), **ctx.info},
            )
        )
        return hidden

    def _relevance(self, drop: Drop, hidden: torch.Tensor, kwargs: dict, alive: torch.Tensor):
        """() -> (S_cur,) the last prompt token's attention at this drop, computed once when a stage asks."""
        memo: list[torch.Tensor] = []

        def relevance() -> torch.Tensor:
            if not memo:
                cos, sin = self.ad.layer_rope(kwargs)
                layer = max(drop.layer - 1 if self.config.score_layer == "same" else drop.layer, 0)
                q, k = self.ad.query_key(layer, hidden, cos[:, alive], sin[:, alive])
                memo.append(M.last_token_relevance(q, k))  # (S_cur,)
                full = torch.full((self.trace.layout.length,), float("nan"))
                self.trace.relevance[drop.layer] = full
                self._state.copies.append((full, alive, memo[0]))
            return memo[0]

        return relevance

    def _stage1_windows(self, m: int, rows: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """(n,) Stage-I window of each current token of modality m (rows index the current sequence)."""
        st = self._state
        if self.config.window_rule == "time":
            return st.window[alive[rows]]  # 2-second windows of the layout
        hh, ww = self.trace.layout.grid_hw
        r = self.recipe
        block = r.video_block_grids * hh * ww if m == VIDEO else r.audio_block_tokens
        return st.rank[m][alive[rows]] // block  # fixed token blocks (spec §9)

    def _importance(self, m: int, rows: torch.Tensor, alive: torch.Tensor) -> torch.Tensor | None:
        """(n,) Stage-I importance of the current tokens `rows` of modality m, or None when there is none."""
        st = self._state
        imp_all = st.importance.get(m)  # (N_m,) over all tokens of modality m, in sequence order
        if m == VIDEO and imp_all is None:
            # The vision encoder ran before this prefill (generate) or inside it (plain forward): either way
            # its statistics are ready by the time layer 0 runs.
            imp_all = self._vision.get("importance")
            if imp_all is not None and abs(st.spg - self.seconds_per_grid) > 1e-6:
                self.trace.events.append(
                    dict(
                        layer=-1,
                        stage="warning",
                        info={"importance_window_seconds_per_grid": self.seconds_per_grid},
                    )
                )
        if imp_all is None:
            return None
        imp = imp_all.to(rows.device)[st.rank[m][alive[rows]]]
        st.copies.append((self.trace.importance, alive[rows], imp))
        return imp
