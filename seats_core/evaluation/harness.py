"""`python -m seats_core eval`: accuracy retention on audio-visual multiple-choice benchmarks.

For every sample: decode the clip and run the processor once (`Engine.prepare`), then answer under every method x
retention (greedy, batch 1, fps 2 and the per-frame budget of MediaConfig = SEATS_SPEC.md §7; 'full' once).
Each answer is appended to <out>/results.jsonl and flushed as soon as it exists, so an interrupted run resumes:
keys (model, benchmark, sample, method, retention) already in the file are skipped. The final table (printed,
and <out>/results.json + results.md) is built from every record in the file, so running benchmarks one at a
time into one --out adds up to the paper's table. Rows the readers could not use go to <out>/problems.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from ..method import PRESETS
from ..prune.config import METHODS, SeatsConfig
from ..run.media import MediaConfig, MediaError
from .benchmarks import Problem, Sample, canonical_name, load_benchmark
from .benchmarks.mcq import extract_letter, format_prompt
from .benchmarks.report import FULL, NO_RETENTION, markdown, summarize

RESULTS = "results.jsonl"
RECORDS = "records.jsonl"  # one RunRecord per run (without token columns), beside its results line
PROBLEMS = "problems.jsonl"
TERA = 1e12
SHOW_PROBLEMS = 10  # problems listed on stderr (all of them go to problems.jsonl)
# Longest clip the harness decodes: LVOmniBench videos run up to 90 minutes, Video-MME "long" up to an hour
# (MediaConfig's interactive default, 10 minutes, would turn them all into problems). Frames stay capped at
# MediaConfig.max_frames (768, the paper's upper bound), so long videos are sampled below 2 fps.
EVAL_MAX_SECONDS = 2 * 3600.0


@dataclass(frozen=True)
class RunSpec:
    """One column of the evaluation: a method at a retention (label as the user wrote it)."""

    method: str
    label: str
    config: SeatsConfig


def parse_retentions(text: str) -> list[tuple[str, tuple[float, float]]]:
    """'R10,R25,0.3,0.6' -> [('R10', ...), ('R25', ...), ('0.3,0.6', (0.3, 0.6))]: presets stand alone,
    numbers pair up as (video, audio) in the order given."""
    from ..method import parse_retention

    tokens = [t.strip() for t in text.split(",") if t.strip()]
    out, i = [], 0
    while i < len(tokens):
        if tokens[i].upper() in PRESETS:
            out.append((tokens[i].upper(), parse_retention(tokens[i])))
            i += 1
            continue
        pair = ",".join(tokens[i : i + 2])
        out.append((pair, parse_retention(pair)))  # raises a clear ValueError on a lone or bad number
        i += 2
    if not out:
        raise ValueError("--retention is empty: give presets (R10,R25) or 'V,A' pairs")
    return out


def run_specs(methods: str, retentions: str, seed: int = 0) -> list[RunSpec]:
    """Every method x retention; 'full' once. Invalid combinations raise ValueError before any model loads."""
    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise ValueError(
            f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}"
        )
    specs = []
    for m in dict.fromkeys(names):
        if m == FULL:
            specs.append(RunSpec(m, NO_RETENTION, SeatsConfig.make(m, "R10", seed=seed)))
            continue
        for label, pair in parse_retentions(retentions):
            # a preset name stays a name, so the model family's own preset values apply (Qwen3-Omni's differ)
            specs.append(
                RunSpec(m, label, SeatsConfig.make(m, label if label in PRESETS else pair, seed=seed))
            )
    return specs


# ---------------------------------------------------------------------------------------------------------------
# Results on disk


def record_key(model: str, benchmark: str, sample_id: str, method: str, label: str) -> str:
    return json.dumps([model, benchmark, sample_id, method, label])


class ResultStore:
    """Append-only JSONL of per-(sample, method, retention) records; each line flushed when written."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RESULTS
        self.records_path = self.dir / RECORDS

    def records(self) -> list[dict]:
        """Every complete record (a line cut short by a kill is ignored, so that run is simply redone)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def done(self) -> set[str]:
        return {
            record_key(r["model"], r["benchmark"], r["sample_id"], r["method"], r["retention"])
            for r in self.records()
        }

    def append(self, record: dict, path: Path | None = None) -> None:
        """Write one record as one line and flush it (after a stub left by a kill: on a fresh line)."""
        path = path or self.path
        with path.open("ab") as f:
            if f.tell() > 0:
                with path.open("rb") as r:
                    r.seek(-1, 2)
                    if r.read(1) != b"\n":
                        f.write(b"\n")
            f.write((json.dumps(record) + "\n").encode("utf-8"))
            f.flush()


def make_record(model: str, sample: Sample, spec: RunSpec, result: dict, max_new_tokens: int) -> dict:
    """One results line from a run record's dict (`RunRecord.to_dict`)."""
    """The per-sample line: answer, extracted letter, correctness, cost."""
    pred = extract_letter(result["answer"], sample.options)
    flops, timing = result["flops"], result["timing_ms"]
    return {
        "model": model,
        "benchmark": sample.benchmark,
        "sample_id": sample.id,
        "method": spec.method,
        "retention": spec.label,
        "retention_pair": list(result["retention"]) if spec.method != FULL else None,
        "reply": result["answer"],
        "pred": pred,
        "gold": sample.answer,
        "correct": pred == sample.answer,
        "num_options": len(sample.options),
        "tflops": flops["prefill"] / TERA,
        "tflops_full": flops["prefill_full"] / TERA,
        "tflops_paper": flops["prefill_paper"] / TERA,  # LM head on every position alive (§9)
        "tflops_full_paper": flops["prefill_full_paper"] / TERA,
        "prefill_ms": timing["llm_prefill"],
        "selection_ms": timing["selection"],
        "first_token_ms": timing["first_token"],
        "retention_measured": result["retention_measured"],
        "prompt_tokens": result["prompt_tokens"],
        "new_tokens": result["new_tokens"],
        "max_new_tokens": max_new_tokens,
        "video": str(sample.video),
        "duration_s": result["clip"]["duration_s"],
        "device": result["device"],
        "config": result["config"],
        "extra": sample.extra,
    }


# ---------------------------------------------------------------------------------------------------------------
# The loop


def pending(samples: Iterable[Sample], specs: list[RunSpec], done: set[str], model: str):
    """[(sample, [specs not yet in the results])] for the samples with work left."""
    out = []
    for s in samples:
        todo = [sp for sp in specs if record_key(model, s.benchmark, s.id, sp.method, sp.label) not in done]
        if todo:
            out.append((s, todo))
    return out


def evaluate(
    engine,
    work: list[tuple[Sample, list[RunSpec]]],
    store: ResultStore,
    *,
    model: str,
    max_new_tokens: int,
    media: MediaConfig | None = None,
    progress: bool = True,
    warmup: int = 0,
) -> list[Problem]:
    """Run the pending work: one `prepare` per sample, one `run` per spec, one flushed record per run.

    `warmup` untimed, unrecorded runs on the first clip come first (first calls pay for allocation and
    kernel selection). Clips that fail to decode (or questions the engine refuses) become Problems, skipped.
    """
    problems = []
    total = sum(len(todo) for _, todo in work)
    with tqdm(total=total, unit="run", file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
        for sample, todo in work:
            bar.set_postfix_str(f"{sample.benchmark}/{sample.id}", refresh=False)
            try:
                prep = engine.prepare(
                    str(sample.video), format_prompt(sample.question, sample.options), engine.media(media)
                )
            except (MediaError, ValueError) as e:
                problems.append(Problem(sample.benchmark, sample.id, f"cannot prepare: {e}"))
                bar.update(len(todo))
                continue
            for _ in range(warmup):
                engine.run(prep, todo[0].config, max_new_tokens=1)
            warmup = 0
            for spec in todo:
                run = engine.run(prep, spec.config, max_new_tokens=max_new_tokens).to_dict(tokens=False)
                store.append({"key": json.loads(record_key(model, sample.benchmark, sample.id, spec.method,
                              spec.label)), **run}, store.records_path)  # fmt: skip
                store.append(make_record(model, sample, spec, run, max_new_tokens))
                bar.update(1)
    return problems


def benchmark_data(data: Path, name: str, several: bool) -> Path:
    """With one benchmark --data is its folder (or annotation file); with several, a folder holding one
    sub-folder per benchmark, named like it (WorldSense, Daily-Omni, videomme, ...; case and -/_ ignored)."""
    if not several:
        return data
    for child in sorted(data.iterdir()) if data.is_dir() else []:
        if child.is_dir():
            try:
                if canonical_name(child.name) == name:
                    return child
            except ValueError:
                continue
    raise FileNotFoundError(f"{data}: no sub-folder for benchmark {name!r} (needed with several benchmarks)")


def load_samples(data: str, benchmarks: str, limit: int | None) -> tuple[list[Sample], list[Problem]]:
    names = [canonical_name(b) for b in benchmarks.split(",") if b.strip()]
    if not names:
        raise ValueError("--benchmark is empty")
    root = Path(data).expanduser()
    samples, problems = [], []
    for name in dict.fromkeys(names):
        s, p = load_benchmark(name, benchmark_data(root, name, len(names) > 1))
        samples += s[:limit] if limit is not None else s
        problems += p
    return samples, problems


def report_problems(problems: list[Problem], store: ResultStore) -> None:
    path = store.dir / PROBLEMS
    path.write_text("".join(json.dumps(asdict(p)) + "\n" for p in problems), encoding="utf-8")
    if problems:
        print(f"{len(problems)} row(s) skipped (all listed in {path}):", file=sys.stderr)
        for p in problems[:SHOW_PROBLEMS]:
            print(f"  {p}", file=sys.stderr)


def write_report(store: ResultStore) -> str:
    summary = summarize(store.records())
    (store.dir / "results.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    table = markdown(summary)
    (store.dir / "results.md").write_text(table, encoding="utf-8")
    return table


def make_engine(args: argparse.Namespace):
    from ..run.pipeline import Engine

    return Engine(args.model, device=args.device, attn=args.attn)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..run.pipeline import add_engine_arguments

    p.add_argument("--data", required=True, help="benchmark folder (or annotation file); see docs/EVAL.md")
    p.add_argument(
        "--benchmark", required=True, help="worldsense, daily-omni, omnivideobench, videomme, lvomnibench"
    )
    p.add_argument("--methods", default="full,seats", help=f"comma list of {', '.join(METHODS)}")
    p.add_argument(
        "--retention", default="R10", help=f"comma list of presets ({', '.join(PRESETS)}) or V,A pairs"
    )
    add_engine_arguments(p)
    p.add_argument("--limit", type=int, default=None, help="first N usable samples per benchmark")
    p.add_argument("--out", default="eval_out", help="results folder (reruns resume from it)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument(
        "--max-frames", type=int, default=MediaConfig.max_frames, help="frame cap per clip (paper: 768)"
    )
    p.add_argument(
        "--max-seconds", type=float, default=EVAL_MAX_SECONDS, help="longest clip decoded (seconds)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded warm-up runs before timing (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    if args.max_new_tokens < 1:
        raise ValueError("--max-new-tokens must be at least 1")
    if args.warmup < 0:
        raise ValueError("--warmup must be >= 0")
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    specs = run_specs(args.methods, args.retention, args.seed)
    media = MediaConfig(max_frames=args.max_frames, max_seconds=args.max_seconds)
    samples, problems = load_samples(args.data, args.benchmark, args.limit)
    store = ResultStore(args.out)
    work = pending(samples, specs, store.done(), args.model)
    n_runs = sum(len(t) for _, t in work)
    print(
        f"{len(samples)} sample(s) x {len(specs)} run(s) each; {n_runs} to do, "
        f"{len(samples) * len(specs) - n_runs} already in {store.path}; {len(problems)} row(s) skipped "
        "(listed at the end)",
        file=sys.stderr,
    )
    if work:
        engine = make_engine(args)
        problems += evaluate(
            engine,
            work,
            store,
            model=args.model,
            max_new_tokens=args.max_new_tokens,
            media=media,
            progress=not args.no_progress,
            warmup=args.warmup,
        )
    report_problems(problems, store)
    print(write_report(store))
    return 0
