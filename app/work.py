"""Model work: decode a clip once per upload, answer with the model under each config, the dependency analysis.

run_models and run_analysis take and return plain picklable values: on ZeroGPU, ui.py wraps them in spaces.GPU,
which runs them in a forked process. Their callers run them inside `model_failures`, so that a failure after
the request checks passed reaches the page and API clients as one line naming the exception (never a traceback,
never Gradio's generic "has not enabled verbose error reporting"), is logged with its traceback, and the app
keeps serving.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr

from app import examples
from app.checks import check_plans, for_the_page, log, refuse
from app.progress import RunProgress
from app.server import SERVER
from app.state import Session
from seats_core.models.loader import ModelLoadError, frame_budget
from seats_core.prune.config import SeatsConfig
from seats_core.run.media import Clip, MediaConfig, MediaError, load_clip
from seats_core.run.pipeline import Engine, InputError

MAX_CLIP_SECONDS = 60.0  # longer clips are refused, saying how to trim them (the CLI's --max-seconds: 600 s)
# Decode budget of one clip: a minute at 120 fps, and ~2 minutes of 1080p at 30 fps worth of source pixels.
MAX_DECODE_FRAMES = 7200
MAX_DECODE_PIXELS = 8 * 10**9
APP_MEDIA = MediaConfig(
    max_seconds=MAX_CLIP_SECONDS, max_decode_frames=MAX_DECODE_FRAMES, max_decode_pixels=MAX_DECODE_PIXELS
)
MAX_SIDE = APP_MEDIA.max_side  # the same source side limit as the CLI (seats_core.run.media.MAX_SOURCE_SIDE)

REPEATS = (
    5  # timed runs per answer: medians after the warm-ups Engine.run discards (two on its first timed run)
)
MAX_FAILURE_CHARS = 300  # the first line of an exception's message, cut to this for the page


# ---------------------------------------------------------------------------------------------------------------
# Failures


def failure_line(error: BaseException) -> str:
    """`Type: first line of the message`, at most MAX_FAILURE_CHARS long."""
    lines = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {lines[0].strip()}" if lines else type(error).__name__
    return line if len(line) <= MAX_FAILURE_CHARS else line[: MAX_FAILURE_CHARS - 3] + "..."


@contextlib.contextmanager
def model_failures(what: str = "the model") -> Iterator[None]:
    """Run model work; an exception that is not already a one-line refusal becomes one gr.Error line
    ("the model failed on this clip: RuntimeError: ..."), logged once with its traceback on the server."""
    try:
        yield
    except gr.Error:
        raise
    except Exception as e:  # noqa: BLE001 -- any failure of the model becomes one line for the user
        line = failure_line(e)
        if type(e).__name__ == "OutOfMemoryError":  # torch's, CUDA or otherwise
            message = (
                f"{what} ran out of memory on this clip ({line}): try a shorter clip or fewer new tokens"
            )
        else:
            message = f"{what} failed on this clip: {line}"
        log.error("%s", message, exc_info=True)
        raise gr.Error(message, duration=None, print_exception=False) from None


# ---------------------------------------------------------------------------------------------------------------
# Decoding (once per upload and frame budget, kept in the session)


def media_for(model: str | None) -> MediaConfig:
    """APP_MEDIA with `model`'s frame budget (decoding for display is decoding for the run): its Engine's once
    loaded; a built-in miniature's from its config (an example shows before any model loads). The CLI, the eval
    harness and this page all end in `FamilyAdapter.frame_budget`."""
    model = model or SERVER.model
    if SERVER.has_engine(model):  # loaded already: ask it (never a load from here)
        return SERVER.engine(model).media(APP_MEDIA)
    budget = frame_budget(model)
    return (
        dataclasses.replace(APP_MEDIA, **budget) if budget is not None else get_engine(model).media(APP_MEDIA)
    )


def decode(session: Session, path: Path, model: str) -> Clip:
    """The session's decoded clip for `path` at `model`'s frame budget: decoded only when the file's bytes or
    the budget changed since the last call."""
    media = media_for(model)
    key = (examples.file_sha256(path), media)
    with session.lock:
        if session.clip is not None and session.clip_key == key:
            return session.clip
    try:
        clip = load_clip(path, media)  # records its own decode time (clip.decode_ms -> the run's timing)
    except MediaError as e:
        raise refuse(for_the_page(str(e), media.max_seconds)) from None
    clip.path = path.name  # nothing downstream needs where it lies
    with session.lock:
        session.clip, session.clip_key, session.clip_name = clip, key, path.name
    return clip


# ---------------------------------------------------------------------------------------------------------------
# The model (wrapped by spaces.GPU on ZeroGPU: arguments and results are plain picklable values)


def get_engine(name: str | None = None) -> Engine:
    """SERVER's Engine for `name` (loaded on first use); a model that cannot load is refused in one line."""
    try:
        return SERVER.engine(name)
    except ModelLoadError as e:
        raise refuse(for_the_page(str(e))) from None


def _noop(fraction: float, desc: str) -> None:
    return None


def run_models(
    model: str,
    clip: Clip,
    question: str,
    configs: dict[str, dict | str],
    max_new_tokens: int,
    progress: Callable | None = None,
    fusion: bool = True,
) -> tuple[dict[str, dict], list[str]]:
    """Answer under each config on the decoded clip. Returns (key -> RunRecord dict or {"error"}, notes).
    fusion: also measure each run's fusion (the Fusion tab; an untimed run of its own per config)."""
    report = (lambda f, d: progress(f, desc=d)) if progress is not None else _noop
    if not SERVER.has_engine(model):
        report(0.0, "loading the model (first run only)")
    engine = get_engine(model)
    configs = check_plans(configs, engine.adapter)
    report(0.0, "preparing the clip")
    try:
        prep = engine.prepare(clip, question)
    except (MediaError, InputError) as e:
        raise refuse(str(e)) from None
    notes = [f"Note: {engine.model.disclaimer}."] if engine.model.disclaimer else []
    if not clip.has_audio:
        notes.append("This clip has no audio track: every method ran on video tokens only.")
    keys = list(configs)
    runs: dict[str, dict] = {}
    for i, key in enumerate(keys):
        cfg = configs[key]
        if isinstance(cfg, str):
            runs[key] = {"error": cfg}
            continue
        span = (0.05 + 0.95 * i / len(keys), 0.05 + 0.95 * (i + 1) / len(keys))
        try:
            with RunProgress(engine.adapter, report, max_new_tokens, span, f"{key} ({cfg['method']})"):
                record = engine.run(
                    prep,
                    SeatsConfig.from_dict(cfg),
                    max_new_tokens=max_new_tokens,
                    repeats=REPEATS,
                    fusion=fusion,  # the Fusion tab's numbers, measured in an untimed run of its own
                )
        except ValueError as e:  # a method that cannot meet these settings (e.g. FastV below its floor)
            if key == "method":
                raise refuse(f"{cfg['method']}: {e}") from None
            runs[key] = {"error": f"{cfg['method']}: {e}"}
            continue
        runs[key] = record.to_dict()
    report(1.0, "rendering")
    return runs, notes


def run_analysis(model: str, clip: Clip, question: str, progress: Callable | None = None) -> dict:
    """seats_core.run.analysis.analyze on the decoded clip (raises ModuleNotFoundError where that module is missing)."""
    from seats_core.run import analysis  # lazy: optional part of the core

    report = (lambda f, d: progress(f, desc=d)) if progress is not None else None
    if not SERVER.has_engine(model) and report is not None:
        report(0.0, "loading the model (first run only)")
    engine = get_engine(model)
    try:
        prep = engine.prepare(clip, question)
    except (MediaError, InputError) as e:
        raise refuse(str(e)) from None
    return analysis.analyze(engine, prep, progress=report)


def run_token(model: str, clip: Clip, question: str, config: dict | None, position: int) -> dict:
    """One token's attention row and column at every decoder layer (seats_core.run.fusion's opt-in `token`
    capture) in the run made with `config` (None: the full model): {position, attends_to, attended_by}, each
    L x N over the run's video and audio tokens. An untimed run of its own."""
    from seats_core.run.fusion import measure_fusion

    engine = get_engine(model)
    try:
        prep = engine.prepare(clip, question)
    except (MediaError, InputError) as e:
        raise refuse(str(e)) from None
    cfg = None if config is None or config.get("method") == "full" else SeatsConfig.from_dict(config)
    record = measure_fusion(
        engine.model.thinker, prep.inputs, has_audio=clip.has_audio, config=cfg, token=int(position)
    )
    return record.to_dict()["token"]
