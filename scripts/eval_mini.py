"""Accuracy of the trained miniature under every pruning method and retention, plus the knockout summary.

    python scripts/eval_mini.py --n 500 --json /tmp/eval_mini.json            # methods x R35..R10 table
    python scripts/eval_mini.py --n 500 --knockout 100 --minutes 60

Held-out questions come from `seats_core.data.scenes.make_set(--seed, n)` (a seed stream the training never used).
Each clip is decoded and processed once; every (method, retention) then runs `Engine.run` (greedy generate, as
the CLI and explorer do) and the answer letter is compared with the scene's ground truth. `fastv` prunes video
only, so it runs at the preset's video retention with all audio kept (and cannot reach R10 at 28 layers).
`--workers N` splits the questions over N single-thread processes; each appends every finished question to
<json>.w<k>.jsonl, so a stopped run leaves its records.

The knockout summary averages, over the first `--knockout` questions, the KL of the first answer token to the
full run when all video / audio / both are removed from layer k on (SEATS_SPEC §8), and the question tokens'
attention share per modality and layer.
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

from seats_core.data import scenes  # noqa: E402
from seats_core.prune.attach import build_plan  # noqa: E402
from seats_core.prune.config import METHODS, SeatsConfig  # noqa: E402
from seats_core.run.pipeline import Engine  # noqa: E402

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
    p.add_argument("--max-new-tokens", type=int, default=1)
    p.add_argument("--json", dest="json_out", default="eval_mini.json")
    p.add_argument(
        "--workers", type=int, default=1, help="processes (one thread each), questions interleaved"
    )
    return p.parse_args(argv)


def configs(methods: list[str], retentions: list[str], recipe) -> list[tuple[str, str, SeatsConfig]]:
    """(method, retention name, config): full once, then every method at every retention it can reach.

    FastV drops once after layer 2, so its layer average cannot go below 2/L (R10's 0.06 video is out of reach
    at L = 28): such cells are skipped and shown as "n/a".
    """
    out = [("full", "-", SeatsConfig.make("full", "R10"))]
    for m in methods:
        for r in retentions:
            pair = recipe.presets[r]
            if m == "fastv":  # video-only method: keeps all audio
                pair = (pair[0], 1.0)
            cfg = SeatsConfig.make(m, pair)
            try:
                build_plan(cfg.resolve(recipe), recipe.num_layers)
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


def knockout_curves(engine: Engine, sample: scenes.Sample) -> dict:
    """One question's knockout curves and attention shares (seats_core.run.analysis.analyze)."""
    from seats_core.run.analysis import analyze

    res = analyze(engine, engine.prepare(sample.clip(engine.media()), sample.question))
    out = {
        mode: {"kl": c["kl"], "answer_logprob": c["answer_logprob"]} for mode, c in res["knockout"].items()
    }
    return {"knockout": out, "share": res["attention"]["share"], "answer_token": res["answer_token"]}


def knockout_summary(per_question: list[dict]) -> dict | None:
    """Mean KL and answer log-prob per layer k for each knockout mode, where each curve recovers, and the
    question tokens' mean attention share (text, video, audio) per layer."""
    if not per_question:
        return None
    out = {}
    for mode in per_question[0]["knockout"]:
        kl = np.asarray([q["knockout"][mode]["kl"] for q in per_question]).mean(0)  # (L+1,)
        lp = np.asarray([q["knockout"][mode]["answer_logprob"] for q in per_question]).mean(0)
        below = np.nonzero(kl < RECOVERED_KL)[0]
        # first k from which every later k stays below the threshold
        recovered = next((int(k) for k in below if (kl[k:] < RECOVERED_KL).all()), None)
        out[mode] = {
            "mean_kl": [round(float(x), 4) for x in kl],
            "mean_answer_logprob": [round(float(x), 4) for x in lp],
            "recovered_from_layer": recovered,
        }
    share = np.asarray([q["share"] for q in per_question]).mean(0)  # (L, 3)
    return {
        "questions": len(per_question),
        "recovered_kl_threshold": RECOVERED_KL,
        "curves": out,
        "mean_attention_share": [[round(float(x), 4) for x in row] for row in share],
    }


def worker(args, cfgs, indices: list[int], partial: Path) -> tuple[list[dict], list[dict]]:
    """Answer questions `indices` of the held-out set under every config; knockout for those < --knockout.

    Each finished question is appended to `partial` (JSON lines), so a stopped run leaves its records.
    """
    torch.set_num_threads(1)
    engine = Engine("mini", device="cpu")
    records, knock = [], []
    t0 = time.perf_counter()
    with partial.open("w") as f:
        for n, i in enumerate(indices):
            if args.minutes is not None and time.perf_counter() - t0 > args.minutes * 60:
                print(f"time limit: this worker stops after {n} questions", flush=True)
                break
            s = scenes.set_sample(args.seed, i)
            prep = engine.prepare(s.clip(engine.media()), s.question)
            rec = {"i": i, "seed": s.seed, "kind": s.kind, "modalities": s.modalities, "answer": s.answer}
            rec["correct"] = {}
            for m, r, cfg in cfgs:
                ans = engine.run(prep, cfg, max_new_tokens=args.max_new_tokens).answer
                rec["correct"][f"{m}@{r}"] = int(scenes.parse_answer(ans) == s.answer)
            records.append(rec)
            f.write(json.dumps(rec) + "\n")
            f.flush()
            if (n + 1) % 20 == 0:
                acc = np.mean([r["correct"]["full@-"] for r in records])
                print(
                    f"{partial.name}: {n + 1}/{len(indices)}, {(time.perf_counter() - t0) / 60:.1f} min, "
                    f"full {100 * acc:.1f}%",
                    flush=True,
                )
        for i in [i for i in indices if i < args.knockout]:
            if args.minutes is not None and time.perf_counter() - t0 > args.minutes * 60:
                break
            knock.append(knockout_curves(engine, scenes.set_sample(args.seed, i)))
    return records, knock


def _worker_entry(payload):
    args, cfgs, indices, partial = payload
    return worker(args, cfgs, indices, Path(partial))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    methods = [m for m in args.methods.split(",") if m]
    retentions = [r for r in args.retentions.split(",") if r]
    cfgs = configs(methods, retentions, Engine("mini", device="cpu").adapter.recipe)
    out_path = Path(args.json_out)
    t0 = time.perf_counter()
    shards = [
        (args, cfgs, list(range(w, args.n, args.workers)), str(out_path.with_suffix(f".w{w}.jsonl")))
        for w in range(args.workers)
    ]
    if args.workers == 1:
        results = [_worker_entry(shards[0])]
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(_worker_entry, shards)
    records = sorted((r for rec, _ in results for r in rec), key=lambda r: r["i"])
    knock = [k for _, ks in results for k in ks]
    rows: dict[tuple[str, str], list[int]] = {}
    for rec in records:
        for key, ok in rec["correct"].items():
            m, r = key.split("@")
            rows.setdefault((m, r), []).append(ok)
    by_kind = {}
    for rec in records:
        by_kind.setdefault(rec["kind"], []).append(rec["correct"]["full@-"])
    result = {
        "n_done": len(records),
        "n_planned": args.n,
        "seed": args.seed,
        "accuracy": {f"{m}@{r}": round(float(np.mean(v)), 4) for (m, r), v in rows.items()},
        "full_by_kind": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_kind.items())},
        "by_modality": {f"{m}@{r}": by_modality(records, (m, r)) for (m, r) in rows},
        "table_markdown": table(rows, methods, retentions, len(records)),
        "minutes": round((time.perf_counter() - t0) / 60, 2),
        "workers": args.workers,
        "knockout": knockout_summary(knock),
        "records": records,
    }
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(result["table_markdown"])
    print("full model by kind:", result["full_by_kind"])
    ko = result["knockout"]
    if ko:
        for mode, c in ko["curves"].items():
            kl = " ".join(f"{x:.2f}" for x in c["mean_kl"])
            print(f"knockout {mode}: recovered from layer {c['recovered_from_layer']}; mean KL by k: {kl}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
