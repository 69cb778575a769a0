"""Accuracy-retention tables from per-sample result records (the JSONL the eval harness appends).

One row per (model, method, retention): accuracy per benchmark and their mean (macro, over the benchmarks in the
table), % of full (the row's mean over the full model's mean, same model), average LLM-prefill TFLOPs and
average prefill milliseconds over the row's samples -- the columns of the paper's main table (SEATS_SPEC.md §7).
"""

from __future__ import annotations

from collections import defaultdict

from ...method import PRESETS
from ...prune.config import METHODS

FULL = "full"
NO_RETENTION = "-"  # the retention label of 'full' (it keeps every token whatever --retention says)
PERCENT = 100.0


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _order(row_key: tuple[str, str, str]) -> tuple:
    model, method, label = row_key
    presets = list(PRESETS)
    m = METHODS.index(method) if method in METHODS else len(METHODS)
    r = presets.index(label) if label in presets else len(presets)
    return (model, m, r, label)


def summarize(records: list[dict]) -> dict:
    """{'benchmarks': [...], 'rows': [{model, method, retention, accuracy{bench: %}, n{bench: k}, mean,
    pct_of_full, tflops, tflops_full, tflops_paper, prefill_ms, selection_ms, unanswered, samples}]}."""
    benchmarks = sorted({r["benchmark"] for r in records})
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["model"], r["method"], r["retention"])].append(r)
    rows = []
    for key in sorted(groups, key=_order):
        recs = groups[key]
        acc, n = {}, {}
        for b in benchmarks:
            sub = [r for r in recs if r["benchmark"] == b]
            n[b] = len(sub)
            acc[b] = PERCENT * sum(bool(r["correct"]) for r in sub) / len(sub) if sub else None
        complete = all(acc[b] is not None for b in benchmarks)
        rows.append(
            {
                "model": key[0],
                "method": key[1],
                "retention": key[2],
                "accuracy": acc,
                "n": n,
                "mean": _mean(list(acc.values())) if complete else None,
                "tflops": _mean([r["tflops"] for r in recs]),
                "tflops_full": _mean([r["tflops_full"] for r in recs]),
                "tflops_paper": _mean([r.get("tflops_paper") for r in recs]),
                "prefill_ms": _mean([r["prefill_ms"] for r in recs]),
                "selection_ms": _mean([r.get("selection_ms") for r in recs]),
                "unanswered": sum(r["pred"] is None for r in recs),
                "samples": len(recs),
            }
        )
    full_mean = {r["model"]: r["mean"] for r in rows if r["method"] == FULL}
    for r in rows:
        ref = full_mean.get(r["model"])
        r["pct_of_full"] = PERCENT * r["mean"] / ref if r["mean"] is not None and ref else None
    return {"benchmarks": benchmarks, "rows": rows}


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(summary: dict) -> str:
    """The summary as a Markdown table (also readable in a terminal)."""
    benches = summary["benchmarks"]
    head = [
        "model",
        "method",
        "retention",
        *benches,
        "mean",
        "% of full",
        "TFLOPs",
        "TFLOPs (paper)",
        "prefill ms",
        "n",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["rows"]:
        cells = [r["model"], r["method"], r["retention"]]
        cells += [_fmt(r["accuracy"][b]) for b in benches]
        cells += [_fmt(r["mean"]), _fmt(r["pct_of_full"]), _fmt(r["tflops"], 4), _fmt(r["tflops_paper"], 4)]
        cells.append(_fmt(r["prefill_ms"]))
        cells.append(str(r["samples"]))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        "Accuracy in %; mean = macro average over the benchmarks (shown only where a row covers all of them);",
        "% of full = mean / full model's mean; TFLOPs = analytic LLM prefill (seats_core.run.flops.CONVENTION) as",
        "generate() runs it (LM head on the last position); TFLOPs (paper) = as the paper counts it (LM head on",
        "every position alive after the last layer);",
        "prefill ms = measured LLM prefill (timing_ms.llm_prefill, in-LLM selection included), averaged per sample.",
    ]
    return "\n".join(lines + notes) + "\n"
