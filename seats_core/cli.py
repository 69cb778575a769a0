"""`seats {run,analyze,bench,eval,eval-tasks} ...` (or `python -m seats_core ...`) -- bad input exits non-zero with
one clear line on stderr."""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from dataclasses import replace
from pathlib import Path

from .method import PRESETS
from .models.loader import ModelLoadError
from .prune.config import METHODS
from .run.media import MediaError

# Subcommands: name -> module exposing add_arguments(parser) and main(args) -> int.
COMMANDS = {
    "run": (
        "seats_core.cli",
        "Answer a question about a clip with or without pruning; print and save the trace",
    ),
    "analyze": (
        "seats_core.run.analysis",
        "Layer-wise dependency analysis: attention shares and knockout curves",
    ),
    "bench": ("seats_core.speed.bench", "Benchmark full vs SEATS vs baselines at real model shapes"),
    "eval": ("seats_core.evaluation.harness", "Accuracy retention on audio-visual QA benchmarks"),
    "eval-tasks": (
        "seats_core.evaluation.lmms_tasks",
        "Write lmms-eval tasks for the five benchmarks from local folders (docs/EVAL.md)",
    ),
}
USER_ERRORS = (MediaError, ModelLoadError, ValueError, FileNotFoundError)
NEGATIVE_VALUE = re.compile(r"^-\.?\d")  # "-0.5,0.5", "-1": an option's value, not an option


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: ...` on stderr and exit status 2 (no usage block), and a misspelled
    option or command named as such, with the closest known one (argparse would report a missing required option
    instead; Python 3.11's argparse has no suggest_on_error)."""

    def error(self, message: str):
        self.exit(2, f"error: {message.splitlines()[0]} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        if args is not None:
            self.check_names(list(args))
        return super().parse_known_args(args, namespace)

    def check_names(self, args: list[str]) -> None:
        """Refuse an unknown long option (unique prefixes are fine) or command among `args`, naming the closest."""
        options = list(self._option_string_actions)
        commands = next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), {})
        for arg in args:
            if arg == "--":
                return
            if commands and not arg.startswith("-"):  # the command: its own parser checks what follows
                if arg not in commands:
                    self.unknown("command", arg, list(commands))
                return
            name = arg.split("=", 1)[0]
            if name.startswith("--") and not any(k.startswith(name) for k in options):
                self.unknown("option", name, options)

    def unknown(self, kind: str, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=1)
        self.error(f"unrecognized {kind} {name}" + (f"; did you mean {close[0]}?" if close else ""))


def join_negative_values(argv: list[str]) -> list[str]:
    """['--retention', '-0.5,0.5'] -> ['--retention=-0.5,0.5']: argparse reads a value that starts with '-'
    and is not a plain number as an option, so the value would be lost and the error would be misleading."""
    out: list[str] = []
    for arg in argv:
        prev = out[-1] if out else ""
        if NEGATIVE_VALUE.match(arg) and prev.startswith("--") and "=" not in prev:
            out[-1] = f"{prev}={arg}"
        else:
            out.append(arg)
    return out


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    from .run.pipeline import add_engine_arguments

    add_engine_arguments(p)


def add_media_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=float, default=2.0, help="frame sampling rate (the paper: 2)")
    p.add_argument(
        "--frame-tokens",
        default=None,
        help="MIN,MAX LLM tokens per frame pair (blocks of the model family's token size: 28 px Qwen2.5, "
        "32 px Qwen3); default: the model's own budget (128,144 as in the paper's evaluation; 9,16 for the "
        "trained miniature)",
    )
    p.add_argument("--max-seconds", type=float, default=600.0, help="refuse longer clips")


def media_config(args: argparse.Namespace, engine=None):
    """MediaConfig from the flags: the model's frame budget (Engine.media), or --frame-tokens in its token block.

    Without an `engine` only the flags are checked (before a model loads) and the limits come back.
    """
    from .run.media import MediaConfig

    base = MediaConfig(fps=args.fps, max_seconds=args.max_seconds)
    tokens = None
    if args.frame_tokens is not None:
        try:
            tokens = tuple(int(x) for x in str(args.frame_tokens).split(","))
            lo, hi = tokens
        except ValueError as e:
            raise ValueError(f"--frame-tokens must be MIN,MAX integers, got {args.frame_tokens!r}") from e
        replace(base, min_pixels=lo * base.factor**2, max_pixels=hi * base.factor**2)  # refuses a bad range
    if engine is None:
        return base
    media = engine.media(base)
    if tokens is None:
        return media
    block = media.factor * media.factor  # pixels per LLM token: patches merged 2x2
    return replace(media, min_pixels=lo * block, max_pixels=hi * block)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", help="video file with sound (mp4, webm, mov, ...)")
    p.add_argument("--question", required=True)
    add_model_arguments(p)
    p.add_argument("--method", default="seats", choices=METHODS)
    p.add_argument(
        "--retention",
        default="R10",
        help=f"preset ({', '.join(PRESETS)}) or 'V,A' layer-averaged keep fractions",
    )
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument(
        "--repeats", type=int, default=1, help="time N runs after a warm-up; report median and spread"
    )
    add_media_arguments(p)
    p.add_argument(
        "--json", dest="json_out", default=None, help="write the run record (seats_core.run.record) here"
    )


def main(args: argparse.Namespace) -> int:
    from .prune.config import SeatsConfig
    from .run.pipeline import Engine

    config = SeatsConfig.make(
        args.method, args.retention, seed=args.seed
    )  # refuses bad settings before loading
    if args.max_new_tokens < 1:
        raise ValueError("--max-new-tokens must be at least 1")
    if not Path(args.clip).exists():
        raise MediaError(f"{args.clip}: not found")
    media_config(args)  # refuses bad flags before loading
    engine = Engine(args.model, device=args.device, attn=args.attn)
    media = media_config(args, engine)
    prep = engine.prepare(args.clip, args.question, media)
    record = engine.run(prep, config, max_new_tokens=args.max_new_tokens, repeats=args.repeats)
    print(summary(record.to_dict(tokens=False)))
    for warning in record.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json_out:
        record.save(args.json_out)
        print(f"run record written to {args.json_out}")
    return 0


def _flops(x: float) -> str:
    """A FLOP count in readable units: 207 GFLOPs, 1.22 TFLOPs."""
    for unit, scale in (("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.0f} FLOPs"


def summary(r: dict) -> str:
    f, t, ret = r["flops"], r["timing_ms"], r["retention_measured"]
    note = [f"note: {r['disclaimer']}"] if r.get("disclaimer") else []

    def flops_line(key: str, label: str) -> str:
        run, full = f[key], f[key.replace("prefill", "prefill_full", 1)]
        ratio = full / run if run else float("nan")
        return f"LLM prefill {label}: {_flops(run)} vs {_flops(full)} full ({ratio:.2f}x fewer)"

    return "\n".join(
        [
            f"answer: {r['answer']}",
            *note,
            f"{r['method']} at retention {tuple(r['retention'])} on {r['model']} ({r['num_layers']} layers, {r['device']})",
            f"kept (layer-averaged): video {ret['video']}, audio {ret['audio']}, overall {ret['overall']}",
            flops_line("prefill", "(as generate() runs it, LM head on the last position)"),
            flops_line("prefill_paper", "(as the paper counts it, LM head on every position)"),
            f"time: first token {t['first_token']:.1f} ms, LLM prefill {t['llm_prefill']:.1f} ms "
            f"(selection {t['selection']:.1f} ms), generate {t['generate_total']:.1f} ms",
        ]
    )


def program_name() -> str:
    """`seats` when run as the console script, else `python -m seats_core` (also for in-process calls)."""
    return "seats" if Path(sys.argv[0]).name == "seats" else "python -m seats_core"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog or program_name(), description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def cli(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args._main(args) or 0)
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 -- no tracebacks for users; --debug shows them
        if args.debug:
            raise
        print(
            f"internal error ({type(e).__name__}): {e} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
