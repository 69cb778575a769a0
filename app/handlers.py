"""The explorer's event handlers: plain functions of a server-side Session (app.state) and plain values.

Each returns a dict of named outputs (ui.py maps names to components) or raises gr.Error with one line that says
what is wrong and what to do; every refusal is logged as one line (no traceback). Nothing the client sends names
a file the server did not receive, a run or a view: the decoded clip, the run records and the view digest live
in the session. The model lives in one process-wide Engine (created lazily, shared by all sessions, one job at a
time through the queue).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from seats_core import scenes
from seats_core.attach import build_plan
from seats_core.config import METHODS, SeatsConfig
from seats_core.media import Clip, MediaConfig, MediaError, load_clip
from seats_core.method import PRESETS
from seats_core.models.loader import MINI, MINIS, ModelLoadError, frame_pixels
from seats_core.pipeline import MAX_QUESTION_CHARS, Engine, InputError
from seats_core.record import RunRecord

from . import examples, plots, present
from . import view as V
from .files import WORKSPACE
from .progress import RunProgress
from .state import Session

log = logging.getLogger("seats_explorer")

MAX_CLIP_SECONDS = 60.0  # longer clips are refused with a clear message (interactive use; the CLI has no cap)
# Decode budget of one clip: a minute at 120 fps, and ~2 minutes of 1080p at 30 fps worth of source pixels.
MAX_DECODE_FRAMES = 7200
MAX_DECODE_PIXELS = 8 * 10**9
APP_MEDIA = MediaConfig(
    max_seconds=MAX_CLIP_SECONDS, max_decode_frames=MAX_DECODE_FRAMES, max_decode_pixels=MAX_DECODE_PIXELS
)
MAX_SIDE = APP_MEDIA.max_side  # the same source side limit as the CLI (seats_core.media.MAX_SOURCE_SIDE)
DEFAULT_METHOD = "seats"
DEFAULT_RETENTION = "R10"
NO_BASELINE = "none"
BASELINES = (NO_BASELINE,) + tuple(m for m in METHODS if m not in ("full", "seats"))
DEFAULT_BASELINE = "divprune-om"
DEFAULT_MAX_NEW_TOKENS = 16
MAX_NEW_TOKENS_LIMIT = 128
AUDIO_MODES = ("waveform", "spectrogram")
DEFAULT_LAYER = 1  # first decoder layer: shows what Stage I kept
MAX_SEED = 2**32 - 1  # seeds of the random baseline (numpy's and torch's generators take these)
MAX_LAYER_SETTING = 4096  # fastv_layer / late_layer / drop_layers entries: far beyond any model's depth
MAX_TEXT_CHARS = 256  # retention and drop_layers text boxes

# SeatsConfig fields offered in the advanced panel (method, retention and the bookkeeping `extra` have their own).
ADVANCED_FIELDS = tuple(
    f.name for f in dataclasses.fields(SeatsConfig) if f.name not in ("method", "retention", "extra")
)
ADVANCED_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SeatsConfig) if f.name in ADVANCED_FIELDS}

SCENE_SEED_BASE = 80_000_000  # generated-scene seeds: no training, held-out or gallery stream uses these
MAX_SCENES = 32  # generated clips kept on disk (oldest deleted first)

REPEATS = 3  # timed runs per answer: the median after one warm-up run (Engine.run's repeats)

_settings: dict = {"model": MINI, "deployment": None}
_scenes: OrderedDict[str, dict] = OrderedDict()  # sha256 of a generated clip -> its question and answer
_scenes_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_engine_lock = threading.Lock()
_extra_clip_roots: list[Path] = []


ERROR_SECONDS = 8  # a refusal's message closes itself, so messages never pile up


def refuse(message: str) -> gr.Error:
    """A one-line gr.Error for a refused request, logged as one line (no traceback)."""
    line = " ".join(str(message).split()) or "request refused"
    log.warning("refused: %s", line)
    return gr.Error(line, duration=ERROR_SECONDS, print_exception=False)


CLI_MODEL_FLAG = re.compile(r"(?:use |run with |try )?--model (\S+?)(?=[\s,;:)]|$)")


def for_the_page(message: str) -> str:
    """A core message in the page's words: "--model mini" (a CLI flag) becomes the Model menu."""
    return CLI_MODEL_FLAG.sub(lambda m: f"pick {m.group(1)} in the Model menu", message)


# ---------------------------------------------------------------------------------------------------------------
# The shared engine


def configure(model: str, deployment=None) -> None:
    """Set the model the app loads by default (app.py --model) and the deployment (app.deploy.Deployment)
    whose rules say which models a request may use."""
    _settings["model"] = model
    _settings["deployment"] = deployment


def allow_clip_root(folder: str | Path) -> None:
    """Also accept clips under `folder` (tests and scripts that call the handlers with their own files)."""
    _extra_clip_roots.append(Path(folder).resolve())


def default_model() -> str:
    return _settings["model"]


def deployment():
    """The deployment this process serves (app.deploy.Deployment), local with the default model if unset."""
    from . import deploy

    d = _settings["deployment"]
    if d is None or d.model != default_model():
        d = deploy.Deployment(default_model(), default_model(), None, False)
    return d


def model_choices() -> list[str]:
    """Models the page offers: deploy.allowed_models (one model on a shared deployment such as a Space)."""
    from . import deploy

    d = deployment()
    return deploy.allowed_models(d) if d.shared else list(dict.fromkeys([*deploy.allowed_models(d), *MINIS]))


def media_for(model: str | None) -> MediaConfig:
    """APP_MEDIA with `model`'s frame budget (decoding for display must match decoding for the run)."""
    return dataclasses.replace(APP_MEDIA, **frame_pixels(model or default_model()))


def get_engine(name: str | None = None) -> Engine:
    """The process-wide Engine for `name`, created on first use. One model at a time: asking for another
    replaces the current one (its memory is released)."""
    name = name or default_model()
    with _engine_lock:
        if name not in _engines:
            _engines.clear()
            try:
                _engines[name] = Engine(name)
            except ModelLoadError as e:
                raise refuse(for_the_page(str(e))) from None
        return _engines[name]


# ---------------------------------------------------------------------------------------------------------------
# Input checks: every value a client sends is checked here before anything uses it


def _number(value, name: str) -> float:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise refuse(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise refuse(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(x):
        raise refuse(f"{name} must be a finite number, got {value!r}")
    return x


def _integer(value, name: str, lo: int, hi: int) -> int:
    x = _number(value, name)
    if x != int(x) or not lo <= x <= hi:
        raise refuse(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(x)


def _choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise refuse(f"{name} must be one of {', '.join(choices)}, got {str(value)[:40]!r}")
    return value


def _text(value, name: str, limit: int = MAX_TEXT_CHARS) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise refuse(f"{name} must be text")
    if len(value) > limit:
        raise refuse(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value.strip()


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise refuse(f"{name} must be true or false, got {str(value)[:40]!r}")
    return value


def clip_roots() -> list[Path]:
    """Folders a clip path may point into: Gradio's upload folder, the shipped examples (and allow_clip_root)."""
    return [Path(get_upload_folder()).resolve(), examples.EXAMPLES_DIR.resolve(), *_extra_clip_roots]


def check_clip_path(clip) -> Path:
    """The clip file a request names, only if it lies where uploads and examples are; one message otherwise
    (the same whether or not such a file exists elsewhere)."""
    if clip in (None, ""):
        raise refuse("No clip: upload a video (with sound, ideally) or pick one of the examples.")
    if isinstance(clip, dict):  # FileData-like from a direct call
        clip = clip.get("path")
    if not isinstance(clip, (str, Path)) or len(str(clip)) > 4096:
        raise refuse("the clip must be an uploaded file")
    p = Path(clip).resolve()
    if not any(p.is_relative_to(r) for r in clip_roots()) or not p.is_file():
        raise refuse(f"{p.name}: not a clip this app received; upload it again")
    return p


def check_question(question) -> str:
    q = _text(question, "the question", MAX_QUESTION_CHARS)
    if not q:
        raise refuse("The question is empty: ask something about the clip.")
    return q


def check_max_new_tokens(value) -> int:
    if value is None:
        return DEFAULT_MAX_NEW_TOKENS
    return _integer(value, "max new tokens", 1, MAX_NEW_TOKENS_LIMIT)


def check_model(model) -> str:
    """The model a request may use (deploy.check_model: a shared deployment serves one model only)."""
    from . import deploy

    if model in (None, ""):
        return default_model()
    if not isinstance(model, str):
        raise refuse("the model must be one of the names offered")
    d = deployment()
    if d.shared:
        try:
            return deploy.check_model(d, model)
        except ValueError as e:
            raise refuse(str(e)) from None
    return _choice(model, "the model", model_choices())


def advanced_kwargs(values: dict | None) -> dict:
    """SeatsConfig keyword arguments from the advanced panel (blank = paper default); refuses bad values."""
    out = {}
    for name, value in (values or {}).items():
        if name not in ADVANCED_FIELDS:
            raise refuse(f"unknown advanced setting {str(name)[:40]!r}")
        if name == "drop_layers":
            text = _text(value, name)
            parts = [x for x in text.replace(" ", ",").split(",") if x]
            out[name] = tuple(_integer(x, name, 1, MAX_LAYER_SETTING) for x in parts) if parts else None
        elif name == "late_layer":
            out[name] = None if value in (None, "") else _integer(value, name, 1, MAX_LAYER_SETTING)
        elif name == "fastv_layer":
            out[name] = _integer(value, name, 1, MAX_LAYER_SETTING)
        elif name == "seed":
            out[name] = _integer(value, name, 0, MAX_SEED)
        elif name in ("use_importance", "use_windows", "prune_kv"):
            out[name] = _flag(value, name)
        elif name == "score_layer":
            out[name] = _choice(value, name, ("same", "next"))
        else:
            out[name] = _number(value, name)
    return out


def make_configs(
    method: str, retention: str, baseline: str, advanced: dict | None = None
) -> dict[str, dict | str]:
    """RUN_KEYS -> SeatsConfig dict, or an error message for a baseline that cannot run at these settings.

    Raises gr.Error for a bad method / retention / advanced setting (the user's main choice)."""
    kw = advanced_kwargs(advanced)
    method = _choice(method or DEFAULT_METHOD, "the method", METHODS)
    retention = _text(retention, "retention") or DEFAULT_RETENTION
    if baseline not in (None, ""):
        _choice(baseline, "the baseline", BASELINES)
    try:
        configs: dict[str, dict | str] = {
            "full": SeatsConfig.make("full", retention or DEFAULT_RETENTION, **kw).to_dict(),
            "method": SeatsConfig.make(
                method or DEFAULT_METHOD, retention or DEFAULT_RETENTION, **kw
            ).to_dict(),
        }
    except ValueError as e:
        raise refuse(f"settings: {e}") from None
    if baseline and baseline != NO_BASELINE:
        try:
            configs["baseline"] = SeatsConfig.make(baseline, retention or DEFAULT_RETENTION, **kw).to_dict()
        except ValueError as e:
            configs["baseline"] = f"{baseline}: {e}"
    return configs


def check_plans(configs: dict[str, dict | str], num_layers: int) -> dict[str, dict | str]:
    """Replace configs whose method cannot meet its retention on `num_layers` layers by an error message
    (FastV cannot average below its floor, fastv keeps all audio, ...); gr.Error when it is the main method."""
    out = dict(configs)
    for key, cfg in configs.items():
        if isinstance(cfg, str):
            continue
        try:
            build_plan(SeatsConfig.from_dict(cfg).resolve(num_layers), num_layers)
        except ValueError as e:
            if key == "method":
                raise refuse(f"{cfg['method']}: {e}") from None
            out[key] = f"{cfg['method']}: {e}"
    return out


# ---------------------------------------------------------------------------------------------------------------
# Decoding (once per upload and frame budget, kept in the session)


def decode(session: Session, path: Path, model: str) -> Clip:
    """The session's decoded clip for `path` at `model`'s frame budget: decoded only when the file's bytes or
    the budget changed since the last call."""
    media = media_for(model)
    key = (examples.file_sha256(path), media)
    with session.lock:
        if session.clip is not None and session.clip_key == key:
            return session.clip
    t0 = time.perf_counter()
    try:
        clip = load_clip(path, media)
    except MediaError as e:
        raise refuse(str(e)) from None
    clip.path = path.name  # nothing downstream needs where it lies
    with session.lock:
        session.clip, session.clip_key, session.clip_name = clip, key, path.name
        session.decode_ms = (time.perf_counter() - t0) * 1e3
    return clip


# ---------------------------------------------------------------------------------------------------------------
# Model work (wrapped by spaces.GPU on ZeroGPU: arguments and results are plain picklable values)


def _noop(fraction: float, desc: str) -> None:
    return None


def run_models(
    model: str,
    clip: Clip,
    question: str,
    configs: dict[str, dict | str],
    max_new_tokens: int,
    progress: Callable | None = None,
) -> tuple[dict[str, dict], list[str]]:
    """Answer under each config on the decoded clip. Returns (key -> RunRecord dict or {"error"}, notes)."""
    report = (lambda f, d: progress(f, desc=d)) if progress is not None else _noop
    if model not in _engines:
        report(0.0, "loading the model (first run only)")
    engine = get_engine(model)
    configs = check_plans(configs, engine.num_layers)
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
                result = engine.run(
                    prep, SeatsConfig.from_dict(cfg), max_new_tokens=max_new_tokens, repeats=REPEATS
                )
        except ValueError as e:  # a method that cannot meet these settings (e.g. FastV below its floor)
            if key == "method":
                raise refuse(f"{cfg['method']}: {e}") from None
            runs[key] = {"error": f"{cfg['method']}: {e}"}
            continue
        runs[key] = RunRecord.from_run(engine, prep, result, media_for(model)).to_dict()
    report(1.0, "rendering")
    return runs, notes


def run_analysis(model: str, clip: Clip, question: str, progress: Callable | None = None) -> dict:
    """seats_core.analysis.analyze on the decoded clip (raises ModuleNotFoundError where that module is missing)."""
    from seats_core import analysis  # lazy: optional part of the core

    report = (lambda f, d: progress(f, desc=d)) if progress is not None else None
    if model not in _engines and report is not None:
        report(0.0, "loading the model (first run only)")
    engine = get_engine(model)
    try:
        prep = engine.prepare(clip, question)
    except (MediaError, InputError) as e:
        raise refuse(str(e)) from None
    return analysis.analyze(engine, prep, progress=report)


# ---------------------------------------------------------------------------------------------------------------
# Events


def _precomputed(entry: dict, configs: dict, model: str, max_new_tokens: int) -> dict | None:
    """The example's stored records if they were computed with exactly these settings, else None."""
    settings = examples.index()["settings"]
    if settings.get("model") != model or settings.get("max_new_tokens") != max_new_tokens:
        return None
    runs = examples.load_runs(entry)
    if set(runs) != set(configs):
        return None
    for key, cfg in configs.items():
        run = runs[key]
        if isinstance(cfg, str) or "error" in run:
            if not (isinstance(cfg, str) and "error" in run):
                return None
            continue
        resolved = SeatsConfig.from_dict(cfg).resolve(run["num_layers"]).to_dict()
        if {k: v for k, v in resolved.items() if k != "extra"} != {
            k: v for k, v in run["config"].items() if k != "extra"
        }:
            return None
    return runs


def check_run(
    session: Session,
    clip,
    question,
    model,
    method,
    retention,
    baseline,
    max_new_tokens,
    advanced: dict | None = None,
) -> dict:
    """First step of Run (its own bounded queue): check every input, decode the clip (once per upload) and
    keep the checked request in the session for the model step. Raises a one-line gr.Error."""
    path = check_clip_path(clip)
    q = check_question(question)
    n_new = check_max_new_tokens(max_new_tokens)
    model = check_model(model)
    configs = make_configs(method, retention, baseline, advanced)
    decode(session, path, model)
    request = {"question": q, "model": model, "configs": configs, "max_new_tokens": n_new, "file": path}
    with session.lock:
        session.pending = request
    return request


def run_pending(session: Session, progress: Callable | None = None, compute: Callable = run_models) -> dict:
    """Second step of Run (the model queue): answer the request check_run kept, or reuse precomputed runs."""
    with session.lock:
        request, session.pending = session.pending, None
        clip = session.clip
    if request is None or clip is None:
        raise refuse("Nothing to run: press Run (the request was not checked first).")
    entry = examples.find(request["file"], request["question"])
    known = entry if entry and "answer" in entry else _generated(request["file"], request["question"])
    truth = _truth(known)
    configs, model, n_new = request["configs"], request["model"], request["max_new_tokens"]
    runs = _precomputed(entry, configs, model, n_new) if entry else None
    if runs is not None:
        source = "precomputed example (no model call)"
        return present_runs(session, runs, source, truth, examples.load_analysis(entry), known)
    runs, notes = compute(model, clip, request["question"], configs, n_new, progress)
    for run in runs.values():
        if "timing_ms" in run:  # the clip was decoded before the model step: report that decode's time
            run["timing_ms"]["media_decode"] = round(getattr(session, "decode_ms", 0.0), 3)
    return present_runs(session, runs, "computed now", notes + truth, None, known)


def run_clip(
    session: Session,
    clip,
    question,
    model,
    method,
    retention,
    baseline,
    max_new_tokens,
    advanced: dict | None = None,
    progress: Callable | None = None,
    compute: Callable = run_models,
) -> dict:
    """Both steps of Run at once (plain-function use): answer with the full model, the method and a baseline."""
    check_run(session, clip, question, model, method, retention, baseline, max_new_tokens, advanced)
    return run_pending(session, progress, compute)


def new_scene(seed: int | None = None) -> tuple[str, str]:
    """Write a fresh generated scene (6 s mp4 with sound) and return (path, its question).

    The scene's answer is remembered (by the clip's bytes) so that a run on it can say whether it was right.
    """
    seed = secrets.randbelow(10_000_000) if seed is None else _integer(seed, "seed", 0, MAX_SEED)
    sample = scenes.make_sample(SCENE_SEED_BASE + seed, seconds=6)
    path = scenes.write_sample(sample, WORKSPACE.new_file("scenes", f"scene_{seed}.mp4", 2 * 2**20))
    info = {"file": str(path), "question": sample.question, "answer": sample.answer}
    info["answer_text"] = sample.answer_text
    with _scenes_lock:
        _scenes[examples.file_sha256(path)] = info
        while len(_scenes) > MAX_SCENES:
            _, old = _scenes.popitem(last=False)
            if old["file"] != str(path):
                Path(old["file"]).unlink(missing_ok=True)
    return str(path), sample.question


def _generated(clip: Path | None, question: str | None) -> dict | None:
    """The remembered scene with these bytes and this question, else None."""
    if not clip or not _scenes or not Path(clip).is_file():
        return None
    with _scenes_lock:
        info = _scenes.get(examples.file_sha256(clip))
    return info if info and info["question"] == (question or "").strip() else None


def _truth(entry: dict | None) -> list[str]:
    """A note with the correct option of a generated scene (the generator knows it)."""
    if not entry or "answer" not in entry:
        return []
    return [f"Correct answer (known from the generated scene): ({entry['answer']}) {entry['answer_text']}."]


def load_example(session: Session, clip, question) -> dict:
    """Show an example's precomputed runs (no model call)."""
    path = check_clip_path(clip)
    entry = examples.find(path, _text(question, "the question", MAX_QUESTION_CHARS))
    if entry is None:
        raise refuse("This clip and question are not one of the precomputed examples: press Run instead.")
    settings = examples.index()["settings"]
    decode(session, path, settings.get("model"))
    notes = _truth(entry)
    if settings.get("model") != default_model():
        notes.append(
            f"Precomputed with `{settings.get('model')}`; press Run to answer with `{default_model()}`."
        )
    source = f"precomputed example ({settings.get('method')} {settings.get('retention')}, no model call)"
    runs = examples.load_runs(entry)
    return present_runs(session, runs, source, notes, examples.load_analysis(entry), entry)


def present_runs(
    session: Session,
    runs: dict,
    source: str,
    notes: list[str],
    analysis: dict | None,
    known: dict | None = None,
) -> dict:
    """Keep a finished run (or a loaded example) in the session; all outputs of the page. known: an entry with
    the correct option (`answer`, `answer_text`: generated scenes and examples), so the cards can mark it."""
    view = V.make_view(runs, source, notes)
    if known and known.get("answer"):
        view["truth"] = {"answer": known["answer"], "answer_text": known.get("answer_text", "")}
    keys = V.explorable(view)
    if not keys:
        errors = "; ".join(r.get("error", "") for r in runs.values())
        raise refuse(f"no run succeeded: {errors}")
    with session.lock:
        session.records, session.view, session.analysis = runs, view, analysis
        session.question, session.model, session.source = view["question"], view["model"], source
        if session.tour_step is None:  # the first result of this page opens the tour once
            session.tour_step = 0
    key = "method" if "method" in keys else keys[0]
    layer = min(DEFAULT_LAYER, view["num_layers"])
    layer_out = explore(session, key, layer, AUDIO_MODES[0])
    return {
        "answers": present.answers_html(view),
        "status": present.status_markdown(view),
        "layer": gr.Slider(minimum=0, maximum=view["num_layers"], value=layer, step=1),
        "run_choice": gr.Radio(choices=[(present.RUN_TITLES[k], k) for k in keys], value=key),
        **layer_out,
        "flow": plots.token_flow(view),
        "speed": plots.speed(view),
        "speed_notes": present.speed_markdown(view),
        "dependency": plots.dependency(analysis, run=view["runs"][key]),
        "dependency_notes": present.dependency_markdown(analysis),
        "flow_legend": plots.stage_legend(view["runs"][key]),
        "dependency_legend": plots.stage_legend(view["runs"][key]),
        "export_json": None,  # exports are made on request (Export tab)
        "export_html": None,
        **tour_outputs(session),
    }


def _held(session: Session) -> tuple[dict, Clip]:
    """The session's view and decoded clip, or a one-line refusal."""
    with session.lock:
        view, clip = session.view, session.clip
    if not V.explorable(view) or clip is None:
        raise refuse("Run a clip or pick an example first.")
    return view, clip


def explore(session: Session, key, layer, audio_mode) -> dict:
    """Re-render the layer explorer from the session's own run and clip (no model call, no decoding)."""
    with session.lock:
        view = session.view
    if not V.explorable(view):
        return {
            "frames": None,
            "audio": None,
            "counts": "Run a clip or pick an example first.",
            "strip": plots.empty("no run yet", plots.STRIP_HEIGHT),
            "caption": "",
            "strip_legend": "",
        }
    view, clip = _held(session)
    key = _choice(key, "the run", V.explorable(view))
    layer = _integer(layer, "the layer", 0, view["num_layers"])
    mode = _choice(audio_mode or AUDIO_MODES[0], "the audio view", AUDIO_MODES)
    try:
        frames, audio = present.layer_images(view, key, layer, mode, clip)
    except present.ViewMismatch as e:
        raise refuse(f"cannot draw this run on the clip held for it ({e}): press Run again") from None
    return {
        "frames": frames,
        "audio": audio,
        "counts": present.counts_markdown(view, key, layer),
        "strip": plots.stage_strip(view, key, layer),
        "caption": present.layer_caption(view, key, layer),
        "strip_legend": plots.stage_legend(view["runs"][key]),
    }


def inspect(session: Session, key, layer, kind: str, index) -> str:
    """What the clicked token is (frames or audio strip at pixel `index` = [x, y]): its modality, window,
    seconds, scores and the layer it was dropped at, resolved from the session's record (never the client)."""
    view, clip = _held(session)
    key = _choice(key, "the run", V.explorable(view))
    layer = _integer(layer, "the layer", 0, view["num_layers"])
    kind = _choice(kind, "the picture", ("frames", "audio"))
    if not isinstance(index, (list, tuple)) or len(index) != 2:
        raise refuse("click a patch of the frames or a span of the audio strip")
    x = _integer(index[0], "the x pixel", 0, 1 << 16)
    y = _integer(index[1], "the y pixel", 0, 1 << 16)
    return present.token_markdown(view, key, layer, present.token_under(view, clip, kind, x, y))


def tour_outputs(session: Session) -> dict:
    """The tour panel: step `session.tour_step` of the session's run (hidden before a result and once skipped)."""
    with session.lock:
        step, view, analysis = session.tour_step, session.view, session.analysis
    if step is None or step < 0 or not V.explorable(view):
        return {"tour": gr.Column(visible=False), "tour_text": ""}
    from . import tour

    steps = tour.steps_for_view(view, analysis)
    step = min(step, len(steps) - 1)
    return {"tour": gr.Column(visible=True), "tour_text": tour.page(steps, step)}


def tour_next(session: Session) -> dict:
    """Next step of the tour (closes it after the last)."""
    from . import tour

    with session.lock:
        if session.tour_step is not None and session.tour_step >= 0:
            session.tour_step += 1
            if session.tour_step >= len(tour.TITLES):
                session.tour_step = -1
    return tour_outputs(session)


def tour_skip(session: Session) -> dict:
    """Close the tour for this page."""
    with session.lock:
        session.tour_step = -1
    return tour_outputs(session)


def analyze(
    session: Session, model=None, progress: Callable | None = None, compute: Callable = run_analysis
) -> dict:
    """The dependency view for the session's clip and question (an extra model pass; optional module)."""
    view, clip = _held(session)
    model = check_model(model)
    if model != view["model"]:
        raise refuse(f"the last run used `{view['model']}`: pick it again or press Run with `{model}` first")
    try:
        result = compute(model, clip, view["question"], progress)
    except ModuleNotFoundError as e:
        note = f"the analysis module is not installed in this build ({e.name})"
        return {
            "dependency": plots.empty("analysis unavailable", plots.DEPENDENCY_HEIGHT),
            "dependency_notes": present.dependency_markdown(None, note),
        }
    with session.lock:
        session.analysis = result
    key = "method" if "method" in V.explorable(view) else V.explorable(view)[0]
    return {
        "dependency": plots.dependency(result, run=view["runs"][key]),
        "dependency_notes": present.dependency_markdown(result),
    }


def export(session: Session) -> dict:
    """Write the JSON (the run records) and the HTML report of the session's last run, on request."""
    view, clip = _held(session)
    with session.lock:
        records, analysis, done = session.records, session.analysis, session.exported
    stamp = (id(view), id(analysis))
    if done and done[0] == stamp and all(Path(p).is_file() for p in done[1]):
        return {"export_json": done[1][0], "export_html": done[1][1]}  # this run is already exported
    key = "method" if "method" in V.explorable(view) else V.explorable(view)[0]
    run = view["runs"][key]
    layers = sorted(
        {0, 1} | {b["after"] + 1 for b in V.boundaries(run) if b["after"] + 1 <= view["num_layers"]}
    )
    try:
        overlays = [
            (
                f"{present.RUN_TITLES[key]}, layer {x}: {V.stage_label(run, x)}",
                present.layer_images(view, key, x, "waveform", clip)[0],
            )
            for x in layers
        ]
    except present.ViewMismatch as e:
        raise refuse(f"cannot draw this run on the clip held for it ({e}): press Run again") from None
    json_path, html_path = present.export_files(records, view, analysis, overlays)
    with session.lock:
        session.exported = (stamp, (json_path, html_path))
    return {"export_json": json_path, "export_html": html_path}


def api_run(
    clip,
    question,
    method=DEFAULT_METHOD,
    retention=DEFAULT_RETENTION,
    max_new_tokens=DEFAULT_MAX_NEW_TOKENS,
    progress: Callable | None = None,
    compute: Callable = run_models,
) -> tuple[str, dict]:
    """The public /run endpoint: (answer, the run record exactly as the CLI's --json writes it).

    max_new_tokens is optional for API callers (the page's slider value, 16 by default)."""
    path = check_clip_path(clip)
    q = check_question(question)
    n_new = check_max_new_tokens(max_new_tokens)
    method = _choice(method or DEFAULT_METHOD, "the method", METHODS)
    try:
        cfg = SeatsConfig.make(method, _text(retention, "retention") or DEFAULT_RETENTION).to_dict()
    except ValueError as e:
        raise refuse(f"settings: {e}") from None
    session = Session("api")  # not stored: the API keeps nothing between calls
    clip = decode(session, path, default_model())
    runs, _ = compute(default_model(), clip, q, {"method": cfg}, n_new, progress)
    record = runs["method"]
    record["timing_ms"]["media_decode"] = round(session.decode_ms, 3)
    return record["answer"], record


def presets() -> list[str]:
    return list(PRESETS)
