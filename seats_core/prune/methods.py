"""Every pruning method in one table: its plan (which drops, at which layers, keeping what) and its selection.

A method is one `Method` entry; the CLI choices, the app's lists, the stage names and colours, the bench's rows
and the Pruner's dispatch all read this table. A stage kind (the `kind` of a Drop) is one `Stage` entry in STAGES
carrying its selection function `select(ctx) -> keep mask`; the Pruner calls it and never branches on names.
A new baseline is one selection function here (its math in `seats_core.method`) plus one Stage and one Method
entry: see docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .. import method as M
from .layout import AUDIO, TEXT, VIDEO


@dataclass(frozen=True)
class Drop:
    """One drop point: before decoder layer `layer` (0-based; = "after layer `layer`" 1-based)."""

    layer: int
    kind: str  # a key of STAGES
    keep_video: float = 1.0  # fraction of the current video tokens kept (Stage I: of all video tokens)
    keep_audio: float = 1.0


@dataclass
class DropContext:
    """What a stage's selection sees at one drop (batch 1; S = tokens alive entering the drop layer).

    hidden: (1, S, D) residual stream (a merging selection writes merged rows into it); modality, window: (S,)
    of the alive tokens (window = the layout's time windows); frame, patch: (S,) temporal grid and patch
    (row * cols + col) of video tokens, -1 elsewhere; original: (S,) original prompt positions;
    blocks(m, rows) -> (n,) Stage-I block of each token (SEATS_SPEC §9; the time windows under window_rule
    "time"); importance(m, rows) -> (n,) Stage-I encoder importance of the alive tokens `rows` of modality m or
    None; relevance() -> (S,) the last prompt token's attention at this drop (computed once, on demand).
    `info` collects what the trace records of the drop: Stage II's budget tensors under "parts" (read after the
    timed region), anything else as it is (JSON-ready, original coordinates).
    """

    drop: Drop
    config: object  # the resolved SeatsConfig
    hidden: torch.Tensor
    modality: torch.Tensor
    window: torch.Tensor
    frame: torch.Tensor
    patch: torch.Tensor
    original: torch.Tensor
    blocks: Callable[[int, torch.Tensor], torch.Tensor]
    importance: Callable[[int, torch.Tensor], torch.Tensor | None]
    relevance: Callable[[], torch.Tensor]
    info: dict = field(default_factory=dict)

    def count(self, ratio: float, n: int) -> int:
        """Tokens kept out of n at a keep ratio: max(1, round(ratio * n)) if any exist (spec §1, §2, §9)."""
        return M.window_keep_count(n, ratio, self.config.rounding)

    def rows(self, m: int) -> torch.Tensor:
        """(n_m,) positions of modality m in the current sequence."""
        return (self.modality == m).nonzero().squeeze(-1)


Select = Callable[[DropContext], torch.Tensor]  # -> (S,) bool keep mask over the current sequence


@dataclass(frozen=True)
class Stage:
    """One kind of drop and how it chooses. select(ctx) -> (S,) keep mask; before_llm: chooses among the
    LLM-input embeddings at layer 0 (no LLM scores); scored: ranks tokens by the last prompt token's attention at
    the drop; uses_importance: needs the encoders' Stage-I attention statistic."""

    name: str
    label: str
    colour: str
    select: Select
    before_llm: bool = False
    scored: bool = False
    uses_importance: bool = False


# ---- selections (each: one stage's choice of survivors; the method math is in seats_core.method) -----------
def _per_modality(choose: Callable) -> Select:
    """A before-LLM selection run on each modality alone: choose(ctx, m, ratio, rows) -> kept indices of rows."""

    def select(ctx: DropContext) -> torch.Tensor:
        keep = torch.ones_like(ctx.modality, dtype=torch.bool)
        for m, ratio in ((VIDEO, ctx.drop.keep_video), (AUDIO, ctx.drop.keep_audio)):
            rows = ctx.rows(m)
            if rows.numel() == 0 or ratio >= 1.0:
                continue
            keep[rows] = False
            keep[rows[choose(ctx, m, ratio, rows)]] = True
        return keep

    return select


def _random(ctx, m, ratio, rows):
    g = torch.Generator().manual_seed(ctx.config.seed + m)
    return M.random_select(rows.numel(), ctx.count(ratio, rows.numel()), generator=g).to(rows.device)


def _uniform(ctx, m, ratio, rows):
    n = rows.numel()
    return torch.linspace(0, n - 1, ctx.count(ratio, n), device=rows.device).round().long().unique()


def _divprune(ctx, m, ratio, rows):
    return M.diversity_select(ctx.hidden[0, rows].float(), ctx.count(ratio, rows.numel()))


def _visionzip(ctx, m, ratio, rows):
    """Per Stage-I window: dominant tokens by importance + merged contextual tokens (their rows are replaced)."""
    imp = ctx.importance(m, rows)
    if imp is None:
        raise RuntimeError("VisionZip needs encoder importance; the encoder hooks did not run")
    feats, win, kept_all = ctx.hidden[0, rows].float(), ctx.blocks(m, rows), []
    for w in win.unique().tolist():
        sel = (win == w).nonzero().squeeze(-1)
        kept, merged = M.visionzip_select(
            feats[sel],
            imp[sel],
            ctx.count(ratio, sel.numel()),
            ctx.config.visionzip_contextual,
            ctx.config.rounding,
        )
        ctx.hidden[0, rows[sel[kept]]] = merged.to(ctx.hidden.dtype)
        kept_all.append(sel[kept])
    return torch.cat(kept_all).sort().values


def _stage1_global(ctx, m, ratio, rows):
    """Stage I without windows: importance-weighted max-min diversity over the whole modality."""
    imp = ctx.importance(m, rows)  # recorded in the trace even when not used
    use = imp if ctx.config.use_importance else None
    return M.diversity_select(ctx.hidden[0, rows].float(), ctx.count(ratio, rows.numel()), importance=use)


def _stage1(ctx: DropContext) -> torch.Tensor:
    """Stage I over the video and audio windows together (one greedy loop, spec §1): keep mask."""
    if not ctx.config.use_windows:
        return _per_modality(_stage1_global)(ctx)
    keep = torch.ones_like(ctx.modality, dtype=torch.bool)
    rows, windows, counts, imps, offset = [], [], [], [], 0
    for m, ratio in ((VIDEO, ctx.drop.keep_video), (AUDIO, ctx.drop.keep_audio)):
        r = ctx.rows(m)
        if r.numel() == 0 or ratio >= 1.0:
            continue
        win = torch.unique(ctx.blocks(m, r), return_inverse=True)[1]  # (n_m,) windows from 0
        sizes = torch.bincount(win).tolist()
        rows.append(r)
        windows.append(win + offset)
        counts += [ctx.count(ratio, n) for n in sizes]
        offset += len(sizes)
        imp = ctx.importance(m, r)  # recorded in the trace even when not used
        imps.append(imp if ctx.config.use_importance else None)
    if not rows:
        return keep
    rows_all = torch.cat(rows)
    imp = None
    if any(i is not None for i in imps):  # a modality without a statistic gets weight 1
        imp = torch.cat([torch.ones(len(r), device=r.device) if i is None else i for r, i in zip(rows, imps)])
    kept = M.select_windows(ctx.hidden[0, rows_all].float(), torch.cat(windows), counts, imp)
    keep[rows_all] = False
    keep[rows_all[kept]] = True
    return keep


def _top_k(ctx: DropContext) -> torch.Tensor:
    """FastV (and Stage II without windows): global top-k per modality by relevance, ties to the lower index."""
    rel, nt = ctx.relevance(), (ctx.modality != TEXT).nonzero().squeeze(-1)
    is_video = ctx.modality[nt] == VIDEO
    groups = []
    for sel, ratio in ((is_video, ctx.drop.keep_video), (~is_video, ctx.drop.keep_audio)):
        idx = sel.nonzero().squeeze(-1)  # (n_m,)
        groups.append((idx, idx.numel() if ratio >= 1.0 else ctx.count(ratio, idx.numel())))
    keep = torch.ones_like(ctx.modality, dtype=torch.bool)
    keep[nt] = M.topk_mask(rel[nt], groups)
    return keep


def _stage2(ctx: DropContext) -> torch.Tensor:
    """Stage II: the window budget over the current runs (or time windows) by relevance (spec §2, §9)."""
    cfg = ctx.config
    if not cfg.use_windows:
        return _top_k(ctx)
    rel, mod = ctx.relevance(), ctx.modality
    nt = (mod != TEXT).nonzero().squeeze(-1)  # (N,) non-text positions: one host read
    win = M.run_windows(mod == VIDEO, mod == AUDIO) if cfg.window_rule == "authors" else ctx.window
    win = win[nt]
    mask, ctx.info["parts"] = M.window_budget(
        rel[nt],
        mod[nt] == VIDEO,
        win,
        int(win.max()) + 1,  # the window count (a host read: it sizes the budget tensors)
        ctx.drop.keep_video,
        ctx.drop.keep_audio,
        cfg.temperature,
        cfg.rounding,
    )
    keep = torch.ones_like(mod, dtype=torch.bool)
    keep[nt] = mask
    return keep


def _text_only(ctx: DropContext) -> torch.Tensor:
    return ctx.modality == TEXT


def _omnizip(ctx: DropContext) -> torch.Tensor:
    """OmniZip (arXiv 2511.14582): audio anchors merge their neighbours, the audio each time group keeps sets its
    video budget, and video is chosen per frame by density peaks / change from the previous frame. Time groups
    are the runs of the sequence (the i-th video run with the i-th audio run). Discard ratios are 1 - the keep
    ratios (matched layer-averaged R, as for the other pre-LLM methods); merged anchors replace their rows."""
    cfg, mod = ctx.config, ctx.modality
    keep = torch.ones_like(mod, dtype=torch.bool)
    vrows, arows = ctx.rows(VIDEO), ctx.rows(AUDIO)
    if vrows.numel() + arows.numel() == 0:
        return keep
    group = M.run_windows(mod == VIDEO, mod == AUDIO)  # (S,) time group of each non-text token
    imp = ctx.importance(AUDIO, arows) if arows.numel() else torch.zeros(0, device=mod.device)
    if imp is None:
        raise RuntimeError("OmniZip needs the audio encoder's attention; the encoder hooks did not run")
    feats = ctx.hidden[0].float()
    sel = M.omnizip_select(
        feats[vrows],
        group[vrows],
        ctx.frame[vrows],
        ctx.patch[vrows],
        feats[arows],
        group[arows],
        imp,
        1.0 - ctx.drop.keep_video,
        1.0 - ctx.drop.keep_audio,
        g=cfg.omnizip_g,
        contextual_ratio=cfg.omnizip_contextual,
        discard_min=cfg.omnizip_discard_min,
        discard_max=cfg.omnizip_discard_max,
        contextual_in_budget=True,  # matched R: the anchors count in the audio kept, as VisionZip's do
        rounding=cfg.rounding,
    )
    ctx.hidden[0, arows[sel.audio_kept]] = sel.audio_embeds.to(ctx.hidden.dtype)
    keep[vrows], keep[arows] = False, False
    keep[vrows[sel.video_kept]] = True
    keep[arows[sel.audio_kept]] = True
    at = ctx.original[arows].tolist()  # audio index -> original prompt position
    ctx.info["absorbed"] = {str(at[a]): [at[i] for i in members] for a, members in sel.absorbed.items()}
    ctx.info["video_discard"] = [round(x, 4) for x in sel.video_discard]
    ctx.info["audio_retention"] = [None if r is None else round(r, 4) for r in sel.audio_retention]
    return keep


STAGES = {
    s.name: s
    for s in (
        Stage(
            "stage1",
            "Stage I (encoder-side selection)",
            "#22c55e",
            _stage1,
            before_llm=True,
            uses_importance=True,
        ),
        Stage("stage2", "Stage II drop (query-guided)", "#a855f7", _stage2, scored=True),
        Stage("stage3", "Stage III (text only from here)", "#ef4444", _text_only),
        Stage("fastv", "FastV drop", "#f59e0b", _top_k, scored=True),
        Stage("random", "random selection", "#64748b", _per_modality(_random), before_llm=True),
        Stage("divprune", "DivPrune selection", "#0ea5e9", _per_modality(_divprune), before_llm=True),
        Stage(
            "visionzip",
            "VisionZip selection",
            "#ec4899",
            _per_modality(_visionzip),
            before_llm=True,
            uses_importance=True,
        ),
        Stage("uniform", "uniform selection", "#94a3b8", _per_modality(_uniform), before_llm=True),
        Stage("omnizip", "OmniZip selection", "#14b8a6", _omnizip, before_llm=True, uses_importance=True),
    )
}
BEFORE_LLM = tuple(k for k, s in STAGES.items() if s.before_llm)
USES_IMPORTANCE = tuple(k for k, s in STAGES.items() if s.uses_importance)


def _one_before_llm(kind: str):
    def plan(cfg, num_layers: int) -> list[Drop]:
        v, a = cfg.retention
        return [Drop(0, kind, v, a)]

    return plan


def _fastv(audio_too: bool):
    def plan(cfg, num_layers: int) -> list[Drop]:
        v, a = cfg.retention
        if not audio_too and a < 1.0:
            raise ValueError(
                f"fastv prunes video tokens only, so it cannot keep {a:.2f} of the audio; use fastv-om, or ask "
                f"for audio retention 1.0 (e.g. --retention {v},1.0)"
            )
        kv = M.fastv_keep_ratio(v, num_layers, cfg.fastv_layer)
        ka = M.fastv_keep_ratio(a, num_layers, cfg.fastv_layer) if audio_too else 1.0
        return [Drop(cfg.fastv_layer, "fastv", kv, ka)]

    return plan


def _seats(cfg, num_layers: int) -> list[Drop]:
    v, a = cfg.retention
    drops, late = cfg.drop_layers, cfg.late_layer
    keeps_v = M.retention_schedule(num_layers, drops, late, v, cfg.encoder_scale)
    keeps_a = M.retention_schedule(num_layers, drops, late, a, cfg.encoder_scale)
    plan = [Drop(0, "stage1", cfg.encoder_scale * v, cfg.encoder_scale * a)]
    plan += [Drop(d, "stage2", kv, ka) for d, kv, ka in zip(drops, keeps_v, keeps_a)]
    if late <= num_layers:
        plan.append(Drop(late - 1, "stage3", 0.0, 0.0))
    return plan


@dataclass(frozen=True)
class Method:
    """name: the CLI / config name; label: for people; plan(cfg, num_layers) -> drops (refuses what it cannot
    meet); selection: the stage kind that chooses its tokens (None for full); about: one line for people (the
    explorer's About tab); bench: a row of the benchmark."""

    name: str
    label: str
    plan: Callable
    selection: str | None
    about: str = ""
    bench: bool = True

    @property
    def colour(self) -> str:
        return STAGES[self.selection].colour if self.selection else "#334155"


METHODS_TABLE = {
    m.name: m
    for m in (
        Method(
            "full", "Full (no pruning)", lambda cfg, n: [], None, "every token in every layer", bench=False
        ),
        Method(
            "seats", "SEATS", _seats, "stage1", "diverse tokens per window, query-guided drops, text-only end"
        ),
        Method(
            "random", "Random", _one_before_llm("random"), "random", "a uniform random subset before the LLM"
        ),
        Method(
            "fastv",
            "FastV (video only)",
            _fastv(False),
            "fastv",
            "one drop after layer 2 by the last token's attention, video only",
            bench=False,
        ),
        Method("fastv-om", "FastV-om", _fastv(True), "fastv", "FastV's single drop on video and audio"),
        Method(
            "divprune-om",
            "DivPrune-om",
            _one_before_llm("divprune"),
            "divprune",
            "plain max-min diversity per modality",
        ),
        Method(
            "visionzip-om",
            "VisionZip-om",
            _one_before_llm("visionzip"),
            "visionzip",
            "per window, the most attended tokens plus a few merged contextual ones",
        ),
        Method(
            "omnizip",
            "OmniZip",
            _one_before_llm("omnizip"),
            "omnizip",
            "audio anchors merge their neighbours; the audio a moment keeps sets how much of its video stays",
        ),
    )
}
METHOD_NAMES = tuple(METHODS_TABLE)


def get_method(name: str) -> Method:
    if name not in METHODS_TABLE:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHOD_NAMES)}")
    return METHODS_TABLE[name]


def build_plan(cfg, num_layers: int) -> list[Drop]:
    """The drops a method makes at a layer-averaged retention (refuses what it cannot meet, spec §5)."""
    return get_method(cfg.method).plan(cfg, num_layers)


def bench_methods() -> tuple[str, ...]:
    """Methods the benchmark runs, in table order."""
    return tuple(m.name for m in METHODS_TABLE.values() if m.bench)


def stage_names() -> dict[str, str]:
    return {k: s.label for k, s in STAGES.items()}


def stage_colours() -> dict[str, str]:
    return {k: s.colour for k, s in STAGES.items()}
