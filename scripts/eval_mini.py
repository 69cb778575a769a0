"""Accuracy of the trained miniature under every pruning method and retention, plus the knockout summary.

    python scripts/eval_mini.py --n 500 --json /tmp/eval_mini.json            # methods x R35..R10 table
    python scripts/eval_mini.py --n 500 --knockout 100 --minutes 60

Held-out questions come from `seats_core.scenes.make_set(--seed, n)` (a seed stream the training never used).
Each clip is decoded and processed once; every (method, retention) then runs `Engine.run` (greedy generate, as
the CLI and explorer do) and the answer letter is compared with the scene's ground truth. `fastv` prunes video
only, so it runs at the preset's video retention with all audio kept (and cannot reach R10 at 28 layers). Results are written after every question,
so a stopped run leaves a usable partial table.

The knockout summary (if `seats_core.analysis` is present) averages, over `--knockout` questions, the KL of the
first answer token to the full run when all video / audio / both are removed from layer k on (SEATS_SPEC §8).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seats_core import scenes  # noqa: E402
from seats_core.attach import build_plan  # noqa: E402
from seats_core.config import METHODS, SeatsConfig  # noqa: E402
from seats_core.method import PRESETS  # noqa: E402
from seats_core.pipeline import Engine  # noqa: E402

RETENTIONS = ("R35", "R25", "R15", "R10")
DEFAULT_SEED = 4_242  # held-out stream (training uses scenes seeds (10*seed + 0|1) * 1e7 + i)
RECOVERED_KL = 0.1  # nats: a knockout "no longer hurts" below this mean KL


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500, help="held-out questions")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--methods", default=",".join(m for m in METHODS if m != "full"))
    p.add_argument("--retentions", default=",".join(RETENTIONS))
    p.add_argument("--knockout", type=int, default=50, help="questions for the knockout summary (0: skip)")
    p.add_argument("--minutes", type=float, default=None, help="stop early (partial table) after this time")
    p.add_argument("--max-new-tokens", type=int, default=2)
    p.add_argument("--json", dest="json_out", default="eval_mini.json")
    return p.parse_args(argv)


def configs(methods: list[str], retentions: list[str], num_layers: int) -> list[tuple[str, str, SeatsConfig]]:
    """(method, retention name, config): full once, then every method at every retention it can reach.

    FastV drops once after layer 2, so its layer average cannot go below 2/L (R10's 0.06 video is out of reach
    at L = 28): such cells are skipped and shown as "n/a".
    """
    out = [("full", "-", SeatsConfig.make("full", "R10"))]
    for m in methods:
        for r in retentions:
            pair = PRESETS[r]
            if m == "fastv":  # video-only method: keeps all audio
                pair = (pair[0], 1.0)
            cfg = SeatsConfig.make(m, pair)
            try:
                build_plan(cfg.resolve(num_layers), num_layers)
            except ValueError as e:
                print(f"skip {m} at {r}: {e}", flush=True)
                continue
            out.append((m, r, cfg))
    return out


def table(rows: dict, methods: list[str], retentions: list[str], n: int) -> str:
    """Markdown accuracy table (percent) of rows[(method, r)] = list of 0/1."""

    def acc(key):
        v = rows.get(key, [])
        return f"{100 * np.mean(v):.1f}" if v else "n/a"

    lines = [f"| method (n={n}) | " + " | ".join(retentions) + " |", "|---" * (len(retentions) + 1) + "|"]
    lines.append("| full | " + " | ".join(acc(("full", "-")) for _ in retentions) + " |")
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(acc((m, r)) for r in retentions) + " |")
    return "\n".join(lines)


def by_modality(records: list[dict], key: tuple[str, str]) -> dict:
    out = {}
    for mods in ("av", "a", "v"):
        v = [r["correct"][f"{key[0]}@{key[1]}"] for r in records if r["modalities"] == mods]
        out[mods] = round(float(np.mean(v)), 4) if v else None
    return out


def knockout_summary(engine: Engine, samples: list[scenes.Sample]) -> dict | None:
    """Mean KL and answer log-prob per layer k for each knockout mode, and where each curve recovers."""
    try:
        from seats_core.analysis import analyze
    except ImportError:
        return None
    curves: dict[str, dict[str, list]] = {}
    for s in samples:
        res = analyze(engine, engine.prepare(s.clip(scenes.MINI_MEDIA), s.question))
        for mode, c in res["knockout"].items():
            curves.setdefault(mode, {"kl": [], "answer_logprob": []})
            curves[mode]["kl"].append(c["kl"])
            curves[mode]["answer_logprob"].append(c["answer_logprob"])
    out = {}
    for mode, c in curves.items():
        kl = np.asarray(c["kl"]).mean(0)  # (L+1,)
        lp = np.asarray(c["answer_logprob"]).mean(0)
        below = np.nonzero(kl < RECOVERED_KL)[0]
        # first k from which every later k stays below the threshold
        recovered = next((int(k) for k in below if (kl[k:] < RECOVERED_KL).all()), None)
        out[mode] = {
            "mean_kl": [round(float(x), 4) for x in kl],
            "mean_answer_logprob": [round(float(x), 4) for x in lp],
            "recovered_from_layer": recovered,
        }
    return {"questions": len(samples), "recovered_kl_threshold": RECOVERED_KL, "curves": out}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m]
    retentions = [r for r in args.retentions.split(",") if r]
    engine = Engine("mini", device="cpu")
    cfgs = configs(methods, retentions, engine.num_layers)
    samples = scenes.make_set(args.seed, args.n)
    rows: dict[tuple[str, str], list[int]] = {}
    records = []
    t0 = time.perf_counter()
    out_path = Path(args.json_out)

    def dump(extra=None):
        result = {
            "n_done": len(records),
            "n_planned": args.n,
            "seed": args.seed,
            "accuracy": {f"{m}@{r}": round(float(np.mean(v)), 4) for (m, r), v in rows.items()},
            "by_modality": {f"{m}@{r}": by_modality(records, (m, r)) for (m, r) in rows},
            "table_markdown": table(rows, methods, retentions, len(records)),
            "minutes": round((time.perf_counter() - t0) / 60, 2),
            "records": records,
            **(extra or {}),
        }
        out_path.write_text(json.dumps(result, indent=1) + "\n")
        return result

    for i, s in enumerate(samples):
        if args.minutes is not None and time.perf_counter() - t0 > args.minutes * 60:
            print(f"time limit: stopping after {i} questions", flush=True)
            break
        prep = engine.prepare(s.clip(scenes.MINI_MEDIA), s.question)
        rec = {"seed": s.seed, "kind": s.kind, "modalities": s.modalities, "answer": s.answer, "correct": {}}
        for m, r, cfg in cfgs:
            ans = engine.run(prep, cfg, max_new_tokens=args.max_new_tokens)["answer"]
            ok = int(scenes.parse_answer(ans) == s.answer)
            rows.setdefault((m, r), []).append(ok)
            rec["correct"][f"{m}@{r}"] = ok
        records.append(rec)
        if (i + 1) % 10 == 0:
            dump()
            el = (time.perf_counter() - t0) / 60
            print(
                f"{i + 1} questions, {el:.1f} min, full {100 * np.mean(rows[('full', '-')]):.1f}%", flush=True
            )
    result = dump()
    print(result["table_markdown"])
    if args.knockout:
        ko = knockout_summary(engine, samples[: args.knockout])
        result = dump({"knockout": ko})
        if ko:
            for mode, c in ko["curves"].items():
                kl = " ".join(f"{x:.2f}" for x in c["mean_kl"])
                print(
                    f"knockout {mode}: recovered from layer {c['recovered_from_layer']}; mean KL by k: {kl}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
