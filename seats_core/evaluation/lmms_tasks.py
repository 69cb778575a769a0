"""lmms-eval tasks for the paper's five benchmarks, read from local folders by `seats_core.evaluation.benchmarks`.

    seats eval-tasks --data DIR --out TASKS [--benchmark NAMES]
    accelerate launch ... -m lmms_eval --include_path TASKS --tasks seats_daily_omni,... (docs/EVAL.md)

lmms-eval 0.7.3 ships `worldsense` and `videomme` (their own prompts and scorers, data fetched from the hub) and
none of Daily-Omni, OmniVideoBench or LVOmniBench. For every benchmark found under --data this writes, into TASKS:

    seats_<name>.yaml   the task: `dataset_path: json` over the docs file, by absolute path (task YAMLs cannot
                        expand environment variables), prompt and scorer from the functions below
    seats_<name>.jsonl  one doc per usable sample (rows the reader skips are reported, never written)
    utils.py            re-exports the functions below (lmms-eval resolves `!function utils.x` next to the YAML)

The `seats_` prefix keeps the names apart from upstream tasks. Prompt and scoring are those of `seats eval`
(`benchmarks.mcq`: the options lettered under the question; the reply's letter, and a reply naming no option is
wrong and counted in `unanswered`), so lmms-eval runs and the harness agree reply for reply.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .benchmarks import BENCHMARKS, Sample, canonical_name, load_benchmark
from .benchmarks.mcq import extract_letter, format_prompt

PREFIX = "seats_"
MAX_NEW_TOKENS = 16  # answers are a letter (the harness' default)
STOP = ["\n\n"]
UTILS = '''"""Written by `seats eval-tasks`: the task functions live in seats_core.evaluation.lmms_tasks."""

from seats_core.evaluation.lmms_tasks import doc_to_text, doc_to_visual, process_results  # noqa: F401
'''


def task_name(benchmark: str) -> str:
    """'daily-omni' -> 'seats_daily_omni'."""
    return PREFIX + benchmark.replace("-", "_")


def to_doc(sample: Sample) -> dict:
    """A sample as an lmms-eval doc; `extra` is JSON text so every row has the same columns."""
    return {
        "id": sample.id,
        "video": str(Path(sample.video).resolve()),
        "question": sample.question,
        "options": list(sample.options),
        "answer": sample.answer,
        "benchmark": sample.benchmark,
        "extra": json.dumps(sample.extra, default=str),
    }


def task_yaml(name: str, docs: Path) -> str:
    q = json.dumps  # a JSON string is a valid YAML scalar
    return f"""# Written by `seats eval-tasks` (seats_core.evaluation.lmms_tasks).
task: {q(name)}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {q(str(docs.resolve()))}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: {MAX_NEW_TOKENS}
  until: {q(STOP)}
  do_sample: false
  temperature: 0
process_results: !function utils.process_results
metric_list:
  - metric: accuracy
    aggregation: mean
    higher_is_better: true
  - metric: unanswered
    aggregation: mean
    higher_is_better: false
metadata:
  version: 1.0
"""


def write_task(name: str, samples: list[Sample], out: str | Path) -> Path:
    """Write task `name` over `samples` into folder `out` (with its utils.py); returns the YAML's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    docs = out / f"{name}.jsonl"
    docs.write_text("".join(json.dumps(to_doc(s)) + "\n" for s in samples), encoding="utf-8")
    (out / "utils.py").write_text(UTILS, encoding="utf-8")
    path = out / f"{name}.yaml"
    path.write_text(task_yaml(name, docs), encoding="utf-8")
    return path


# ---- the task's functions (called by lmms-eval through the generated utils.py) ----------------------------
def doc_to_visual(doc: dict) -> list[str]:
    """The doc's video; none when the file has gone (the plugin answers "" and says so, the run goes on)."""
    return [doc["video"]] if Path(doc["video"]).is_file() else []


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    return format_prompt(doc["question"], doc["options"])


def process_results(doc: dict, results: list[str]) -> dict:
    letter = extract_letter(results[0], doc["options"])
    return {"accuracy": float(letter == doc["answer"]), "unanswered": float(letter is None)}


# ---- the `eval-tasks` command ---------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        help="a benchmark's folder with one --benchmark, else a folder of benchmark folders (docs/EVAL.md)",
    )
    p.add_argument("--out", required=True, help="folder for the task files (pass it as --include_path)")
    p.add_argument(
        "--benchmark",
        default=None,
        help=f"comma list of {', '.join(BENCHMARKS)} (default: every one with a sub-folder of --data)",
    )


def main(args: argparse.Namespace) -> int:
    from .harness import benchmark_data

    root = Path(args.data).expanduser()
    given = [canonical_name(b) for b in (args.benchmark or "").split(",") if b.strip()]
    names = list(dict.fromkeys(given)) or list(BENCHMARKS)
    written = []
    for name in names:
        try:
            data = benchmark_data(root, name, several=len(names) > 1)
        except FileNotFoundError:
            if given:
                raise
            continue
        samples, problems = load_benchmark(name, data)
        if not samples:
            raise ValueError(f"{data}: no usable {name} sample ({len(problems)} row(s) skipped)")
        task = task_name(name)
        path = write_task(task, samples, args.out)
        written.append(task)
        skipped = f"; {len(problems)} row(s) skipped, e.g. {problems[0]}" if problems else ""
        print(f"{task}: {len(samples)} docs -> {path}{skipped}")
    if not written:
        raise FileNotFoundError(
            f"{root}: no benchmark sub-folder ({', '.join(BENCHMARKS)}; case, - and _ ignored); "
            "for one benchmark's own folder, name it with --benchmark"
        )
    out = Path(args.out).resolve()
    print(f"run: lmms-eval --include_path {out} --tasks {','.join(written)} --model seats_qwen2_5_omni ...")
    print(
        "(the `seats_` tasks score like `seats eval`; docs/EVAL.md has the launch commands)", file=sys.stderr
    )
    return 0
