"""Generate the explorer's example clips (generated scenes with real sound) and precompute their runs.

    python scripts/make_examples.py [--model mini] [--out assets/examples] [--max-new-tokens 16]


Writes <name>.mp4 (each well under 2 MB), <name>.results.json ({"runs": {full, method, baseline}}: RunRecord
dicts), <name>.analysis.json when seats_core.run.analysis exists, and index.json (see app/examples.py). Rerun it
whenever the model changes (e.g. when a trained miniature lands): the app only uses precomputed results whose
settings match what the user asked for.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.examples import INDEX, file_sha256  # noqa: E402
from seats_core.data import scenes  # noqa: E402
from seats_core.prune.config import SeatsConfig  # noqa: E402
from seats_core.run.pipeline import Engine  # noqa: E402

METHOD, RETENTION, BASELINE = "seats", "R10", "divprune-om"
MAX_BYTES = 2 * 1024 * 1024
REPEATS = 5  # timed runs per answer, medians after the warm-ups Engine.run discards (the explorer's app.work.REPEATS)
SEED_STREAM = 90_000_000  # scenes.make_sample seeds of the gallery: no training or held-out stream uses them

# (name, title, question kind): one scene of each, 6 s long, answerable by the trained miniature.
EXAMPLES = [
    ("colour_at_high", "Which colour when the high tone sounds? (sound + picture)", "colour_at_high"),
    ("direction_at_nth", "Which way during the second tone? (sound + picture)", "direction_at_nth"),
    ("count_tones", "How many tones? (sound only)", "count_tones"),
    ("direction_of_colour", "Which way does a colour move? (picture only)", "direction_of_colour"),
]


def scene(kind: str, index: int) -> scenes.Sample:
    """The first 6-second scene of `kind` in the gallery's seed stream (second tone wanted for *_nth)."""
    for i in range(1000):
        s = scenes.make_sample(SEED_STREAM + 1000 * index + i, kind, seconds=6)
        if "_nth" not in kind or "second" in s.question:
            return s
    raise RuntimeError(f"no {kind} scene found")


def precompute(engine: Engine, clip: Path, question: str, max_new_tokens: int) -> tuple[dict, dict | None]:
    """The three runs the explorer shows by default, and the dependency analysis where available."""
    prep = engine.prepare(str(clip), question)
    configs = {
        "full": SeatsConfig.make("full", RETENTION),
        "method": SeatsConfig.make(METHOD, RETENTION),
        "baseline": SeatsConfig.make(BASELINE, RETENTION),
    }
    runs = {
        k: engine.run(prep, c, max_new_tokens=max_new_tokens, repeats=REPEATS, fusion=True).to_dict()
        for k, c in configs.items()
    }
    try:
        from seats_core.run import analysis
    except ModuleNotFoundError:
        return runs, None
    result = analysis.analyze(engine, prep)
    return runs, result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mini")
    p.add_argument("--out", default=str(ROOT / "assets" / "examples"))
    p.add_argument("--max-new-tokens", type=int, default=16)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = Engine(args.model)
    entries = []
    for index, (name, title, kind) in enumerate(EXAMPLES):
        sample = scene(kind, index)
        clip = out / f"{name}.mp4"
        scenes.write_sample(sample, clip)
        size = clip.stat().st_size
        if size >= MAX_BYTES:
            raise SystemExit(f"{clip.name} is {size} bytes; examples must stay under {MAX_BYTES}")
        runs, analysis = precompute(engine, clip, sample.question, args.max_new_tokens)
        results = f"{name}.results.json"
        (out / results).write_text(json.dumps({"runs": runs}))
        analysis_file = None
        if analysis is not None:
            analysis_file = f"{name}.analysis.json"
            (out / analysis_file).write_text(json.dumps(analysis))
        entries.append(
            {
                "name": name,
                "title": title,
                "clip": clip.name,
                "question": sample.question,
                "answer": sample.answer,
                "answer_text": sample.answer_text,
                "sha256": file_sha256(clip),
                "results": results,
                "analysis": analysis_file,
            }
        )
        answers = {k: r["answer"] for k, r in runs.items()}
        print(
            f"{clip.name}: {size / 1024:.0f} kB; truth {sample.answer} ({sample.answer_text}); answers {answers}"
        )
    settings = {
        "model": engine.model.name,
        "method": METHOD,
        "retention": RETENTION,
        "baseline": BASELINE,
        "max_new_tokens": args.max_new_tokens,
        "repeats": REPEATS,
    }
    (out / INDEX).write_text(json.dumps({"settings": settings, "examples": entries}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
