"""The explorer's per-run view data: a compact digest of run records, and what is alive where.

A run record (seats_core.run.record.RunRecord, as a dict) holds its tokens as columns and its geometry. The view keeps
the token layout once (all runs of one clip and question share it), the record's geometry, and per run only what
differs (survives_to, importance, relevance). It lives in the session on the server (app.state); every slider
move re-renders from it without a model call.

Layer convention of the explorer: 0 = the encoders' output before Stage I; l = 1..L = decoder layer l (1-based).
A token is alive at layer l >= 1 iff survives_to >= l (survives_to = number of decoder layers that process it).
A drop planned at `layer` d (0-based "before layer d") sits between explorer layers d and d+1.
"""

from __future__ import annotations

import numpy as np

from seats_core.prune.methods import stage_names
from seats_core.run.record import TOKEN_COLUMNS

VIEW_VERSION = 3
RUN_KEYS = ("full", "method", "baseline")  # columns of the answers view, in order
PER_RUN = ("survives_to", "importance")
GEOMETRY = tuple(c for c in TOKEN_COLUMNS if c not in PER_RUN)  # columns shared by runs
SCORE_DIGITS = 4  # significant digits kept of importance / relevance scores (colours use ranks only)
STAGE_NAMES = stage_names()  # kind -> a name for people, from the methods registry


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.{SCORE_DIGITS}g}")


def layout(record: dict) -> dict[str, list]:
    """Token columns of a record that depend only on the prompt layout."""
    tokens = record.get("tokens") or {}
    return {c: list(tokens.get(c, [])) for c in GEOMETRY}


def compact_run(record: dict) -> dict:
    """A record without its token columns: per-token survives_to and importance as `cols`."""
    out = {k: v for k, v in record.items() if k not in ("tokens", "relevance")}
    tokens = record.get("tokens") or {}
    out["cols"] = {
        "survives_to": list(tokens.get("survives_to", [])),
        "importance": [_round(x) for x in tokens.get("importance", [])],
    }
    out["relevance"] = {k: [_round(x) for x in v] for k, v in record.get("relevance", {}).items()}
    return out


def make_view(records: dict[str, dict], source: str, notes: list[str] | None = None) -> dict:
    """View data for the page. records: RUN_KEYS -> RunRecord dict, or {"error": message} for a failed run.

    All successful runs must share one prompt layout and geometry (same clip, question and model)."""
    ok = {k: r for k, r in records.items() if "error" not in r}
    first = next(iter(ok.values()), None)
    tokens = layout(first) if first else {c: [] for c in GEOMETRY}
    for key, r in ok.items():
        if layout(r) != tokens or r["geometry"] != first["geometry"]:
            raise ValueError(f"run {key!r} has a different token layout from the others")
    return {
        "version": VIEW_VERSION,
        "source": source,
        "clip": first["clip"] if first else None,
        "geometry": first["geometry"] if first else None,
        "question": first["question"] if first else None,
        "model": first["model"] if first else None,
        "num_layers": first["num_layers"] if first else 0,
        "notes": list(notes or []),
        "warnings": list(first.get("warnings", [])) if first else [],
        "tokens": tokens,
        "runs": {k: (compact_run(r) if "error" not in r else r) for k, r in records.items()},
    }


def explorable(view: dict | None) -> list[str]:
    """Run keys of `view` that have data to explore, in display order."""
    if not view or not view.get("runs"):
        return []
    return [k for k in RUN_KEYS if k in view["runs"] and "error" not in view["runs"][k]]


def _col(run: dict, name: str, dtype=np.float64) -> np.ndarray:
    vals = run["cols"][name]
    return np.array([np.nan if v is None else v for v in vals], dtype=dtype)


def modality_mask(view: dict, modality: str) -> np.ndarray:
    """(N,) bool: which non-text tokens are `modality` ('video' | 'audio')."""
    return np.array([m == modality for m in view["tokens"]["modality"]], bool)


def alive_at(run: dict, layer: int) -> np.ndarray:
    """(N,) bool: non-text tokens alive at explorer layer `layer` (0 = before Stage I: all of them)."""
    survives = np.asarray(run["cols"]["survives_to"], np.int64)
    return np.ones_like(survives, bool) if layer <= 0 else survives >= layer


def scores_at(run: dict, layer: int) -> tuple[np.ndarray, str]:
    """(N,) scores that chose the tokens alive at `layer`, and what they are.

    The latest query-relevance scoring strictly before `layer` (a drop after layer d chose the tokens of layer
    d+1), else the Stage-I encoder importance, else all nan (the full model scores nothing).
    """
    scored = sorted(int(k) for k, v in run.get("relevance", {}).items() if any(x is not None for x in v))
    before = [d for d in scored if d < layer]
    if before:
        d = before[-1]
        vals = run["relevance"][str(d)]
        return np.array([np.nan if v is None else v for v in vals]), f"query relevance scored after layer {d}"
    imp = _col(run, "importance")
    if not np.all(np.isnan(imp)):
        return imp, "Stage-I importance (encoder attention received)"
    if not run.get("plan"):
        return imp, "no scores (nothing pruned)"
    name = STAGE_NAMES.get(run["plan"][0]["kind"], str(run.get("method"))).split(" ")[0]
    where = "before the LLM" if run["plan"][0]["layer"] == 0 else "without query scores"
    return imp, f"no relevance scores: {name} selects {where}"


def counts_at(view: dict, key: str, layer: int) -> dict[str, int]:
    """Tokens per modality ('text', 'video', 'audio') that run `key` processes at explorer layer `layer`."""
    run = view["runs"][key]
    if layer >= 1:
        return dict(run["layers"][layer - 1])
    return {
        "text": run["layers"][0]["text"] if run["layers"] else 0,
        "video": int(modality_mask(view, "video").sum()),
        "audio": int(modality_mask(view, "audio").sum()),
    }


def boundaries(run: dict) -> list[dict]:
    """Planned drops as {after (explorer layer before the drop), kind, label}, in order."""
    return [
        {"after": int(d["layer"]), "kind": d["kind"], "label": STAGE_NAMES.get(d["kind"], d["kind"])}
        for d in run.get("plan", [])
    ]


def stage_label(run: dict, layer: int) -> str:
    """Plain-language description of where explorer layer `layer` sits in the run's plan."""
    if layer <= 0:
        return "encoder output, before any selection: every video and audio token"
    drops = [b for b in boundaries(run) if b["after"] < layer]
    if not boundaries(run):
        return f"decoder layer {layer}: no pruning, every token is processed"
    if not drops:
        return f"decoder layer {layer}: before the first drop"
    last = drops[-1]
    if last["kind"] == "stage3":
        return f"decoder layer {layer}: Stage III, text tokens only"
    if last["kind"] == "stage2":
        return f"decoder layer {layer}: Stage II, after the drop at layer {last['after']}"
    if last["kind"] == "stage1":
        return f"decoder layer {layer}: tokens chosen by Stage I before the LLM"
    where = "before the LLM" if last["after"] == 0 else f"after layer {last['after']}"
    return f"decoder layer {layer}: after the {last['label']} {where}"


def window_starts(view: dict, modality: str) -> list[float]:
    """Start times (s) of each window after the first, for the tokens of `modality`."""
    sel = modality_mask(view, modality)
    win = np.asarray(view["tokens"]["window"])[sel]
    start = np.asarray(view["tokens"]["start_s"], np.float64)[sel]
    return [float(start[win == w].min()) for w in np.unique(win)[1:]]
