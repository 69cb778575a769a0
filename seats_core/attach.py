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

import torch

from . import method as M
from .config import SeatsConfig
from .layout import AUDIO, TEXT, VIDEO, build_layout
from .methods import BEFORE_LLM, USES_IMPORTANCE, Drop, build_plan
from .models.family import get_adapter
from .trace import PruneTrace

# Drops, plans and stage kinds come from the methods registry (seats_core/methods.py).
__all__ = ["BEFORE_LLM", "USES_IMPORTANCE", "Drop", "Pruner", "build_plan"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(device: torch.device) -> float:
    """time.perf_counter() after the device's queued work is done."""
    _sync(device)
    return time.perf_counter()


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
        self.config = config.resolve(
            self.ad.num_layers, presets=self.ad.presets, layout=self.ad.drop_layout()
        )
        self.plan = build_plan(self.config, self.ad.num_layers) if plan is None else list(plan)
        self._drops = {d.layer: d for d in self.plan}
        self._last_drop = max(self._drops, default=-1)
        if len(self._drops) != len(self.plan):
            raise ValueError("two drops at the same layer")
        self._needs_importance = any(d.kind in USES_IMPORTANCE for d in self.plan)
        self._handles: list = []
        self.trace: PruneTrace | None = None
        self.traces: list[PruneTrace] = []
        self.seconds_per_grid = seconds_per_grid  # temporal_patch_size / fps; 1.0 at the paper's 2 fps
        self._prefill = False
        self._state: dict | None = None
        self._vision: dict = {}

    # ---- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Pruner:
        if self._handles:
            raise RuntimeError("this Pruner is already attached")
        ad = self.ad
        self._handles.append(ad.thinker.register_forward_pre_hook(self._on_call, with_kwargs=True))
        self._handles.append(ad.thinker.register_forward_hook(self._after_call, with_kwargs=True))
        self._handles.append(ad.visual.register_forward_pre_hook(self._on_visual, with_kwargs=True))
        self._handles.append(ad.text_model.register_forward_pre_hook(self._on_decoder, with_kwargs=True))
        if self._needs_importance:
            self._handles.append(
                ad.vision_last_block.register_forward_pre_hook(self._on_vision, with_kwargs=True)
            )
            self._handles.append(
                ad.audio_last_layer.register_forward_pre_hook(self._on_audio, with_kwargs=True)
            )
        for i, layer in enumerate(ad.layers):
            self._handles.append(layer.register_forward_pre_hook(self._layer_hook(i), with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
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
            self._state = dict(
                grid=grid,
                spg=spg,
                alive=torch.arange(layout.length, device=dev),
                cache_alive={},
                modality=layout.modality.to(dev),
                window=layout.window.to(dev),
                importance={},
                extras=None,
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
        self._state["extras"] = extras
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
            grids = M.VIDEO_BLOCK_GRIDS
        else:  # the family's interleave chunk in time
            grids = self.ad.stage1_video_grids(self.seconds_per_grid)
        chunk = grids * gh * gw  # patches per Stage-I window
        imp = M.chunked_received_attention(q, k, M.fixed_chunks(q.shape[1], chunk), scale)  # (N,) per patch
        per_token = M.pool_rows(imp, self.ad.spatial_merge_size**2)  # (N/4,) per LLM token, encoder order
        order = self.ad.vision_raster_order(grid)
        self._vision["importance"] = per_token if order is None else per_token[order]
        self._add_importance_ms(t0, dev)
        return None

    def _on_audio(self, module, args, kwargs):
        st = self._state if self._prefill else None
        if st is None:
            return None
        t0 = _clock(st["device"])
        q, k, scale, cu = self.ad.audio_qk(args, kwargs)  # (H, N, d), chunk boundaries (C+1,)
        imp = M.chunked_received_attention(q, k, cu.tolist(), scale)  # (N,) per encoder row
        st["importance"][AUDIO] = M.pool_rows(imp, self.ad.audio_pool)  # (N / pool,) per audio token
        self._add_importance_ms(t0, st["device"])
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
        extras = st["extras"]
        if extras is not None and 1 <= i <= len(extras["embeds"]):
            hidden = self._inject(hidden, extras["embeds"][i - 1])  # after layer i-1, before a drop at i
        if i in self._drops:
            hidden = self._drop(self._drops[i], hidden, kwargs)
        alive = st["alive"]
        full = self.trace.layout.length
        if alive.numel() != full:
            kwargs = ad.slice_layer_kwargs(kwargs, alive)
        st["cache_alive"][i] = alive
        return ad.join_layer_call(args, kwargs, hidden)

    def _inject(self, hidden: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """Add DeepStack features (Nv, D), one row per original video token, to the video tokens alive."""
        st = self._state
        alive = st["alive"]
        rows = (
            (st["modality"][alive] == VIDEO).nonzero().squeeze(-1)
        )  # (n,) video rows of the current sequence
        return self.ad.add_deepstack(
            hidden, rows, embeds[st["rank"][VIDEO][alive[rows]]]
        )  # rows follow survivors

    # ---- one drop --------------------------------------------------------------------------------------
    def _drop(self, drop: Drop, hidden: torch.Tensor, kwargs: dict) -> torch.Tensor:
        st, cfg, trace = self._state, self.config, self.trace
        _sync(st["device"])
        t0 = time.perf_counter()
        alive = st["alive"]
        mod, win = st["modality"][alive], st["window"][alive]  # (S_cur,)
        keep = torch.ones(alive.numel(), dtype=torch.bool, device=alive.device)
        st["copies"] = []  # (trace tensor, indices, values): written to the host after the timed region
        parts: dict | None = None  # Stage II's budget tensors, read after the timed region
        if drop.kind == "stage3":
            keep = mod == TEXT
        elif drop.kind == "stage1" and cfg.use_windows:
            keep = self._stage1(drop, hidden, mod, alive)
        elif drop.kind in BEFORE_LLM:
            for m, ratio in ((VIDEO, drop.keep_video), (AUDIO, drop.keep_audio)):
                rows = (mod == m).nonzero().squeeze(-1)  # (n_m,) positions in the current sequence
                if rows.numel() == 0 or ratio >= 1.0:
                    continue
                kept = self._select_before_llm(drop.kind, m, ratio, hidden, rows, alive)
                keep[rows] = False
                keep[rows[kept]] = True
        else:  # scored drops inside the LLM
            cos, sin = self.ad.layer_rope(kwargs)
            layer = drop.layer - 1 if cfg.score_layer == "same" else drop.layer
            layer = max(layer, 0)
            q, k = self.ad.query_key(layer, hidden, cos[:, alive], sin[:, alive])
            rel = M.last_token_relevance(q, k)  # (S_cur,)
            trace.relevance[drop.layer] = torch.full((trace.layout.length,), float("nan"))
            st["copies"].append((trace.relevance[drop.layer], alive, rel))
            nt = (mod != TEXT).nonzero().squeeze(-1)  # (N,) non-text positions: one host read
            is_video = mod[nt] == VIDEO
            if drop.kind == "stage2" and cfg.use_windows:
                if cfg.window_rule == "authors":  # runs of the current sequence (spec §9)
                    win = M.run_windows(mod == VIDEO, mod == AUDIO)  # (S_cur,)
                win = win[nt]
                mask, parts = M.window_budget(
                    rel[nt],
                    is_video,
                    win,
                    int(win.max()) + 1,  # the window count (a host read: it sizes the budget tensors)
                    drop.keep_video,
                    drop.keep_audio,
                    cfg.temperature,
                    cfg.rounding,
                )
            else:  # FastV, or Stage II without windows: global top-k per modality, ties to the lower index
                groups = []
                for sel, ratio in ((is_video, drop.keep_video), (~is_video, drop.keep_audio)):
                    idx = sel.nonzero().squeeze(-1)  # (n_m,)
                    groups.append((idx, idx.numel() if ratio >= 1.0 else self._count(ratio, idx.numel())))
                mask = M.topk_mask(rel[nt], groups)
            keep[nt] = mask
        survivors = keep.nonzero().squeeze(-1)  # (S_new,) one host read
        hidden = hidden.index_select(1, survivors)
        new_alive = alive[survivors]
        st["alive"] = new_alive
        if cfg.prune_kv and drop.layer == self._last_drop:
            # Earlier layers' caches are read only when decoding, so they are pruned once, at the plan's last
            # drop, to the final survivors (layers after it cache only those).
            cache = self.ad.layer_cache(kwargs)
            where: dict[int, torch.Tensor] = {}  # layers cached since the same drop share one index
            for j, had in st["cache_alive"].items():
                if cache is not None and had.numel() != new_alive.numel():
                    if id(had) not in where:
                        where[id(had)] = torch.searchsorted(had, new_alive)
                    self.ad.prune_cache(cache, j, where[id(had)])
                    st["cache_alive"][j] = new_alive
        _sync(st["device"])
        trace.selection_ms += (time.perf_counter() - t0) * 1e3
        trace.survives_to[alive[~keep].cpu()] = drop.layer
        for dst, idx, values in st.pop("copies"):
            dst[idx.cpu()] = values.float().cpu()
        info = M.budget_info(parts) if parts is not None else {}
        before = {n: int((mod == m).sum()) for n, m in (("video", VIDEO), ("audio", AUDIO))}
        after = {
            n: int((st["modality"][new_alive] == m).sum()) for n, m in (("video", VIDEO), ("audio", AUDIO))
        }
        trace.events.append(
            dict(
                layer=drop.layer,
                stage=drop.kind,
                keep_video=drop.keep_video,
                keep_audio=drop.keep_audio,
                before=before,
                after=after,
                info=info,
            )
        )
        return hidden

    def _count(self, ratio: float, n: int) -> int:
        """Tokens kept out of n at a keep ratio: max(1, round(ratio * n)) if any exist (spec §1, §2, §9)."""
        return M.window_keep_count(n, ratio, self.config.rounding)

    def _stage1_windows(self, m: int, rows: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """(n,) Stage-I window of each current token of modality m (rows index the current sequence)."""
        st = self._state
        if self.config.window_rule == "time":
            return st["window"][alive[rows]]  # 2-second windows of the layout
        hh, ww = self.trace.layout.grid_hw
        block = M.VIDEO_BLOCK_GRIDS * hh * ww if m == VIDEO else M.AUDIO_BLOCK_TOKENS
        return st["rank"][m][alive[rows]] // block  # fixed token blocks (spec §9)

    def _stage1(
        self, drop: Drop, hidden: torch.Tensor, mod: torch.Tensor, alive: torch.Tensor
    ) -> torch.Tensor:
        """Stage I over the video and audio windows together (one greedy loop): keep mask over `alive`."""
        cfg = self.config
        keep = torch.ones(alive.numel(), dtype=torch.bool, device=alive.device)
        rows, windows, counts, imps = [], [], [], []
        offset = 0
        for m, ratio in ((VIDEO, drop.keep_video), (AUDIO, drop.keep_audio)):
            r = (mod == m).nonzero().squeeze(-1)  # (n_m,) positions in the current sequence
            if r.numel() == 0 or ratio >= 1.0:
                continue
            win = torch.unique(self._stage1_windows(m, r, alive), return_inverse=True)[1]  # (n_m,) from 0
            sizes = torch.bincount(win).tolist()
            rows.append(r)
            windows.append(win + offset)
            counts += [self._count(ratio, n) for n in sizes]
            offset += len(sizes)
            imp = self._importance(m, r, alive)  # recorded in the trace even when not used
            imps.append(imp if cfg.use_importance else None)
        if not rows:
            return keep
        rows_all = torch.cat(rows)
        imp = None if any(i is None for i in imps) else torch.cat(imps)
        if imp is None and any(i is not None for i in imps):  # one modality without a statistic: weight 1
            imp = torch.cat(
                [torch.ones(len(r), device=r.device) if i is None else i for r, i in zip(rows, imps)]
            )
        kept = M.select_windows(hidden[0, rows_all].float(), torch.cat(windows), counts, imp)
        keep[rows_all] = False
        keep[rows_all[kept]] = True
        return keep

    def _importance(self, m: int, rows: torch.Tensor, alive: torch.Tensor) -> torch.Tensor | None:
        """(n,) Stage-I importance of the current tokens `rows` of modality m, or None when there is none."""
        st = self._state
        imp_all = st["importance"].get(m)  # (N_m,) over all tokens of modality m, in sequence order
        if m == VIDEO and imp_all is None:
            # The vision encoder ran before this prefill (generate) or inside it (plain forward): either way
            # its statistics are ready by the time layer 0 runs.
            imp_all = self._vision.get("importance")
            if imp_all is not None and abs(st["spg"] - self.seconds_per_grid) > 1e-6:
                self.trace.events.append(
                    dict(
                        layer=-1,
                        stage="warning",
                        info={"importance_window_seconds_per_grid": self.seconds_per_grid},
                    )
                )
        if imp_all is None:
            return None
        imp = imp_all.to(rows.device)[st["rank"][m][alive[rows]]]
        st["copies"].append((self.trace.importance, alive[rows], imp))
        return imp

    def _select_before_llm(self, kind, m, ratio, hidden, rows, alive) -> torch.Tensor:
        """Indices into `rows` (the current tokens of modality m) that survive a before-LLM selection."""
        cfg = self.config
        feats = hidden[0, rows].float()  # (n, D) LLM-input embeddings
        n = rows.numel()
        if kind == "random":
            g = torch.Generator().manual_seed(cfg.seed + m)
            return M.random_select(n, self._count(ratio, n), generator=g).to(rows.device)
        if kind == "uniform":
            return torch.linspace(0, n - 1, self._count(ratio, n), device=rows.device).round().long().unique()
        if kind == "divprune":
            return M.diversity_select(feats, self._count(ratio, n))
        win = self._stage1_windows(m, rows, alive)  # (n,)
        imp = self._importance(m, rows, alive)
        if kind == "stage1":
            use = imp if cfg.use_importance else None
            if cfg.use_windows:
                return M.select_per_window(feats, win, ratio, importance=use, rounding=cfg.rounding)
            return M.diversity_select(feats, self._count(ratio, n), importance=use)
        # visionzip: per window, dominant by importance + merged contextual tokens (their features are replaced)
        if imp is None:
            raise RuntimeError("VisionZip needs encoder importance; the encoder hooks did not run")
        kept_all = []
        for w in win.unique().tolist():
            sel = (win == w).nonzero().squeeze(-1)
            kept, merged = M.visionzip_select(
                feats[sel], imp[sel], self._count(ratio, sel.numel()), cfg.visionzip_contextual, cfg.rounding
            )
            hidden[0, rows[sel[kept]]] = merged.to(hidden.dtype)
            kept_all.append(sel[kept])
        return torch.cat(kept_all).sort().values
