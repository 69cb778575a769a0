"""lmms-eval model plugin: `--model seats_qwen2_5_omni` runs the SEATS engine (any method of seats_core.prune.config)
inside lmms-eval, so its tasks run data-parallel under `accelerate launch` (docs/EVAL.md has the commands).

    accelerate launch --multi_gpu --num_processes 8 -m seats_core.evaluation.lmms_eval_plugin \\
        --model seats_qwen2_5_omni \\
        --model_args pretrained=Qwen/Qwen2.5-Omni-7B,method=seats,retention=R10 \\
        --tasks worldsense --batch_size 1 --output_path runs/ --verbosity DEBUG

lmms-eval stays optional: importing this module imports no lmms-eval; the model class is built on first access
(`SeatsQwen25Omni`, PEP 562 module attribute) from the installed `lmms_eval.api.model.lmms`. Registration:
`register()` (what the launcher above does), or the entry point `lmms_eval.models` -> `manifest` when the
package is installed (`pip install .`), which lets `accelerate launch ... -m lmms_eval` find it.

Each lmms-eval rank loads its own model on cuda:LOCAL_RANK and answers its shard of requests with batch 1 and
greedy decoding (the paper's setting), decoding clips as `seats eval` does (up to 2 h, 768 frames). With
`log_path`, each rank writes its own cost log (`<path>` alone, `<stem>.rank<R><suffix>` when there are several
ranks), one line per doc with its rank; the copies lmms-eval pads the shorter shards with are neither run nor
logged, so the ranks' files together count every doc once. `SeatsAnswerer` holds the lmms-eval-independent logic.
"""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path

from ..prune.config import SeatsConfig
from ..run.media import MediaConfig, MediaError
from ..run.pipeline import InputError
from .harness import EVAL_MAX_SECONDS

MODEL_NAME = "seats_qwen2_5_omni"
CLASS_NAME = "SeatsQwen25Omni"
CLASS_PATH = f"{__name__}.{CLASS_NAME}"
DEFAULT_MAX_NEW_TOKENS = 16  # when neither the task nor model_args say (multiple-choice answers are a letter)
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi")
TERA = 1e12
PAIR_SEPARATORS = (":", "/")  # model_args are comma-separated, so a V,A pair is written V:A or V/A
PADDING = "__padding_only__"  # lmms-eval's mark on the copies that even out the ranks' request counts


def parse_retention_arg(value) -> str | tuple[float, float]:
    """'R10' -> 'R10'; '0.06:0.35' or '0.06/0.35' -> (0.06, 0.35) (SeatsConfig.make validates either)."""
    s = str(value).strip()
    for sep in PAIR_SEPARATORS:
        if sep in s:
            v, a = s.split(sep, 1)
            return float(v), float(a)
    return s


def first_video(visuals) -> str:
    """The video file among a doc's visuals (lmms-eval passes a list of paths); other media are refused."""
    items = visuals if isinstance(visuals, (list, tuple)) else [visuals]
    for v in items:
        if isinstance(v, (str, os.PathLike)) and Path(v).suffix.lower() in VIDEO_SUFFIXES:
            return str(v)
    kinds = ", ".join(type(v).__name__ for v in items) or "nothing"
    raise InputError(f"{MODEL_NAME} answers about video files (with their audio); this request gave {kinds}")


def rank_log_path(path: str | os.PathLike, rank: int, world_size: int) -> Path:
    """The cost log of one rank: `path` itself in a one-process run, else `<stem>.rank<R><suffix>`."""
    path = Path(path)
    return path if world_size <= 1 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def cut_at_stops(text: str, until) -> str:
    """The reply up to the first of the task's stop strings (lmms-eval's `until`)."""
    stops = [until] if isinstance(until, str) else list(until or [])
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]


class SeatsAnswerer:
    """An Engine plus one SeatsConfig answering (prompt, video) requests; independent of lmms-eval."""

    def __init__(
        self,
        pretrained: str = "Qwen/Qwen2.5-Omni-7B",
        method: str = "seats",
        retention="R10",
        device: str | None = None,
        attn_implementation: str = "sdpa",
        max_new_tokens: int | None = None,
        seed: int = 0,
        log_path: str | None = None,
        engine=None,
    ):
        self.config = SeatsConfig.make(str(method), parse_retention_arg(retention), seed=int(seed))
        self.max_new_tokens = int(max_new_tokens) if max_new_tokens not in (None, "", "None") else None
        self.log_path = Path(log_path) if log_path else None
        if engine is None:
            from ..run.pipeline import Engine

            engine = Engine(str(pretrained), device=device, attn=attn_implementation)
        self.engine = engine
        self.media = engine.media(MediaConfig(max_seconds=EVAL_MAX_SECONDS))  # as `seats eval` decodes

    def answer(
        self, context: str, video: str, gen_kwargs: dict | None = None, tag: dict | None = None
    ) -> str:
        """Greedy answer to `context` about `video`, cut at the task's stop strings."""
        gen_kwargs = dict(gen_kwargs or {})
        budget = self.max_new_tokens or int(gen_kwargs.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
        prep = self.engine.prepare(video, context, self.media)
        record = self.engine.run(prep, self.config, max_new_tokens=budget)
        text = cut_at_stops(record.answer, gen_kwargs.get("until"))
        if self.log_path is not None:
            self._log(record, text, tag or {})
        return text

    def _log(self, record, text: str, tag: dict) -> None:
        """One JSON line per request with its cost, for the TFLOPs / prefill columns of the paper's tables."""
        line = {
            **tag,
            "method": self.config.method,
            "retention": record.retention,  # the family's preset values
            "family": record.family,
            "reply": text,
            "tflops": record.flops["prefill"] / TERA,
            "tflops_full": record.flops["prefill_full"] / TERA,
            "prefill_ms": record.timing_ms["llm_prefill"],
            "retention_measured": record.retention_measured,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def _local_device(device: str | None) -> str | None:
    """The launcher's GPU for this rank (accelerate/torchrun set LOCAL_RANK) when no GPU index is given;
    None lets the engine choose."""
    import torch

    if device in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


@cache
def _model_class() -> type:
    """Build the lmms-eval model class on top of the installed `lmms_eval.api.model.lmms`."""
    from lmms_eval.api.model import lmms

    class SeatsQwen25Omni(lmms):
        """Qwen2.5-Omni with SEATS (or a baseline) token pruning; model_args: pretrained, method, retention
        (R10 or V:A), device, attn_implementation, max_new_tokens, seed, log_path, batch_size (must be 1;
        max_batch_size is accepted and has no effect)."""

        is_simple = True

        def __init__(
            self, batch_size=1, device: str | None = None, engine=None, max_batch_size=None, **kwargs
        ):
            super().__init__()
            if int(batch_size) != 1:
                raise ValueError(
                    f"{MODEL_NAME} runs batch 1 (the paper's setting), got batch_size={batch_size}"
                )
            accepted = {
                "pretrained",
                "method",
                "retention",
                "attn_implementation",
                "max_new_tokens",
                "seed",
                "log_path",
            }
            unknown = sorted(set(kwargs) - accepted)
            if unknown:
                raise ValueError(f"{MODEL_NAME}: unknown model_args {unknown}; accepted: {sorted(accepted)}")
            # accelerate and torchrun set RANK / WORLD_SIZE before the model is built
            self.log_rank = int(os.environ.get("RANK", 0))
            world_size = int(os.environ.get("WORLD_SIZE", 1))
            if kwargs.get("log_path"):
                kwargs["log_path"] = rank_log_path(kwargs["log_path"], self.log_rank, world_size)
            self.answerer = SeatsAnswerer(device=_local_device(device), engine=engine, **kwargs)
            self._device = self.answerer.engine.model.device

        @property
        def device(self):
            return self._device

        @property
        def batch_size(self) -> int:
            return 1

        def generate_until(self, requests) -> list[str]:
            out = []
            for req in requests:
                context, gen_kwargs, doc_to_visual, doc_id, task, split = req.args
                if (req.metadata or {}).get(PADDING):  # a copy that only evens out the ranks: discarded
                    out.append("")
                    continue
                visuals = doc_to_visual(self.task_dict[task][split][doc_id])
                tag = {"rank": self.log_rank, "task": task, "doc_id": doc_id}
                try:
                    out.append(self.answerer.answer(context, first_video(visuals), gen_kwargs, tag))
                except (MediaError, InputError) as e:  # one bad video must not end a multi-hour run
                    print(
                        f"{MODEL_NAME}: {task} doc {doc_id} skipped (scored as no answer): {e}",
                        file=sys.stderr,
                    )
                    out.append("")
            return out

        def loglikelihood(self, requests):
            raise NotImplementedError(
                f"{MODEL_NAME} generates answers; loglikelihood tasks are not supported"
            )

        def generate_until_multi_round(self, requests):
            raise NotImplementedError(f"{MODEL_NAME} answers single-turn questions only")

    SeatsQwen25Omni.__module__ = __name__
    SeatsQwen25Omni.__qualname__ = CLASS_NAME
    return SeatsQwen25Omni


def __getattr__(name: str):
    if name == CLASS_NAME:
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def manifest():
    """Entry-point payload for lmms-eval's `lmms_eval.models` group (lmms-eval >= 0.7)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_NAME, simple_class_path=CLASS_PATH)


def register() -> type:
    """Register `seats_qwen2_5_omni` with the installed lmms-eval (manifest registry, else the decorator
    registry of older releases) and return the model class."""
    cls = _model_class()
    try:
        from lmms_eval.models import MODEL_REGISTRY_V2
    except ImportError:
        from lmms_eval.api.registry import register_model

        register_model(MODEL_NAME)(cls)
    else:
        MODEL_REGISTRY_V2.register_manifest(manifest(), overwrite=True)
        import lmms_eval.models as listing

        if isinstance(
            getattr(listing, "AVAILABLE_SIMPLE_MODELS", None), dict
        ):  # what `lmms-eval models` lists
            listing.AVAILABLE_SIMPLE_MODELS[MODEL_NAME] = CLASS_PATH
    return cls


def main() -> None:
    """`python -m seats_core.evaluation.lmms_eval_plugin <lmms-eval arguments>`: register, then run lmms-eval."""
    register()
    try:
        from lmms_eval.cli.dispatch import main as lmms_main
    except ImportError:
        from lmms_eval.__main__ import cli_evaluate as lmms_main
    lmms_main()


if __name__ == "__main__":
    main()
