"""Every pruning method in one table: its plan (which drops, at which layers, keeping what) and its selection.

A method is one `Method` entry; the CLI choices, the app's lists, the stage names and colours, the bench's rows
and the Pruner's dispatch all read this table. A new baseline is one entry here (plus its selection function in
`seats_core.method` when it needs a new one).

Stage kinds (the `kind` of a Drop) are listed in STAGES with where they act, a name for people and a colour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import method as M


@dataclass(frozen=True)
class Drop:
    """One drop point: before decoder layer `layer` (0-based; = "after layer `layer`" 1-based)."""

    layer: int
    kind: str  # a key of STAGES
    keep_video: float = 1.0  # fraction of the current video tokens kept (Stage I: of all video tokens)
    keep_audio: float = 1.0


@dataclass(frozen=True)
class Stage:
    """One kind of drop. before_llm: chooses among the LLM-input embeddings at layer 0 (no LLM scores);
    scored: ranks tokens by the last prompt token's attention at the drop; uses_importance: needs the
    encoders' Stage-I attention statistic."""

    name: str
    label: str
    colour: str
    before_llm: bool = False
    scored: bool = False
    uses_importance: bool = False


STAGES = {
    s.name: s
    for s in (
        Stage("stage1", "Stage I (encoder-side selection)", "#22c55e", before_llm=True, uses_importance=True),
        Stage("stage2", "Stage II drop (query-guided)", "#a855f7", scored=True),
        Stage("stage3", "Stage III (text only from here)", "#ef4444"),
        Stage("fastv", "FastV drop", "#f59e0b", scored=True),
        Stage("random", "random selection", "#64748b", before_llm=True),
        Stage("divprune", "DivPrune selection", "#0ea5e9", before_llm=True),
        Stage("visionzip", "VisionZip selection", "#ec4899", before_llm=True, uses_importance=True),
        Stage("uniform", "uniform selection", "#94a3b8", before_llm=True),
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
    meet); selection: the stage kind that chooses its tokens (None for full); bench: a row of the benchmark."""

    name: str
    label: str
    plan: Callable
    selection: str | None
    bench: bool = True

    @property
    def colour(self) -> str:
        return STAGES[self.selection].colour if self.selection else "#334155"


METHODS_TABLE = {
    m.name: m
    for m in (
        Method("full", "Full (no pruning)", lambda cfg, n: [], None, bench=False),
        Method("seats", "SEATS", _seats, "stage1"),
        Method("random", "Random", _one_before_llm("random"), "random"),
        Method("fastv", "FastV (video only)", _fastv(False), "fastv", bench=False),
        Method("fastv-om", "FastV-om", _fastv(True), "fastv"),
        Method("divprune-om", "DivPrune-om", _one_before_llm("divprune"), "divprune"),
        Method("visionzip-om", "VisionZip-om", _one_before_llm("visionzip"), "visionzip"),
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
