"""The explorer's event handlers: plain functions of plain values (paths, strings, numbers, JSON-ready dicts).

Each returns a dict of named outputs (ui.py maps names to components) or raises gr.Error with one line that says
what is wrong and what to do. The model lives in one process-wide Engine (created lazily, shared by all sessions,
one job at a time through the queue); everything per run lives in the result dicts, never in the model.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from seats_core import scenes
from seats_core.attach import build_plan
from seats_core.config import METHODS, SeatsConfig
from seats_core.media import MediaConfig, MediaError
from seats_core.method import PRESETS
from seats_core.models.loader import KNOWN_REAL, MINI, MINIS, ModelLoadError, frame_pixels
from seats_core.pipeline import Engine, InputError

from . import examples, plots, present
from . import view as V
from .progress import RunProgress

MAX_CLIP_SECONDS = 60.0  # longer clips are refused with a clear message (interactive use; the CLI has no cap)
MAX_SIDE = 4096  # source resolution limit in pixels (frames are resized to ~128-144 tokens per pair anyway)
APP_MEDIA = MediaConfig(max_seconds=MAX_CLIP_SECONDS, max_side=MAX_SIDE)
DEFAULT_METHOD = "seats"
DEFAULT_RETENTION = "R10"
NO_BASELINE = "none"
BASELINES = (NO_BASELINE,) + tuple(m for m in METHODS if m not in ("full", "seats"))
DEFAULT_BASELINE = "divprune-om"
DEFAULT_MAX_NEW_TOKENS = 16
MAX_NEW_TOKENS_LIMIT = 128
AUDIO_MODES = ("waveform", "spectrogram")
DEFAULT_LAYER = 1  # first decoder layer: shows what Stage I kept

# SeatsConfig fields offered in the advanced panel (method, retention and the bookkeeping `extra` have their own).
ADVANCED_FIELDS = tuple(
    f.name for f in dataclasses.fields(SeatsConfig) if f.name not in ("method", "retention", "extra")
)
ADVANCED_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SeatsConfig) if f.name in ADVANCED_FIELDS}

SCENE_DIR = Path(tempfile.gettempdir()) / "seats_explorer_scenes"
SCENE_SEED_BASE = 80_000_000  # generated-scene seeds: no training, held-out or gallery stream uses these
MAX_SCENES = 32  # generated clips kept on disk (oldest deleted first)

_settings = {"model": MINI}
_scenes: OrderedDict[str, dict] = OrderedDict()  # sha256 of a generated clip -> its path, question and answer
_scenes_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_engine_lock = threading.Lock()


# ---------------------------------------------------------------------------------------------------------------
# The shared engine


def configure(model: str) -> None:
    """Set the model the app loads by default (app.py --model)."""
    _settings["model"] = model


def default_model() -> str:
    return _settings["model"]


def model_choices() -> list[str]:
    return list(dict.fromkeys([default_model(), *MINIS, *KNOWN_REAL]))


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
                raise gr.Error(str(e)) from e
        return _engines[name]


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def advanced_kwargs(values: dict | None) -> dict:
    """SeatsConfig keyword arguments from the advanced panel (text/number widgets; blank = paper default)."""
    out = {}
    for name, value in (values or {}).items():
        if name not in ADVANCED_FIELDS:
            raise ValueError(f"unknown advanced setting {name!r}")
        if name == "drop_layers":
            text = str(value or "").strip()
            out[name] = tuple(int(x) for x in text.replace(" ", ",").split(",") if x) if text else None
        elif name == "late_layer":
            out[name] = int(value) if value else None
        elif name in ("fastv_layer", "seed"):
            out[name] = int(value)
        elif name in ("use_importance", "use_windows", "prune_kv"):
            out[name] = bool(value)
        elif name == "score_layer":
            out[name] = str(value)
        else:
            out[name] = float(value)
    return out


def make_configs(
    method: str, retention: str, baseline: str, advanced: dict | None = None
) -> dict[str, dict | str]:
    """RUN_KEYS -> SeatsConfig dict, or an error message for a baseline that cannot run at these settings.

    Raises gr.Error for a bad method / retention / advanced setting (the user's main choice)."""
    try:
        kw = advanced_kwargs(advanced)
        configs: dict[str, dict | str] = {
            "full": SeatsConfig.make("full", retention or DEFAULT_RETENTION, **kw).to_dict(),
            "method": SeatsConfig.make(
                method or DEFAULT_METHOD, retention or DEFAULT_RETENTION, **kw
            ).to_dict(),
        }
    except ValueError as e:
        raise gr.Error(f"settings: {e}") from e
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
                raise gr.Error(f"{cfg['method']}: {e}") from e
            out[key] = f"{cfg['method']}: {e}"
    return out


def _check_inputs(clip: str | None, question: str | None, max_new_tokens) -> int:
    if not clip:
        raise gr.Error("No clip: upload a video (with sound, ideally) or pick one of the examples.")
    if not (question or "").strip():
        raise gr.Error("The question is empty: ask something about the clip.")
    n = int(max_new_tokens or DEFAULT_MAX_NEW_TOKENS)
    if not 1 <= n <= MAX_NEW_TOKENS_LIMIT:
        raise gr.Error(f"max new tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}, got {n}")
    return n


# ---------------------------------------------------------------------------------------------------------------
# Model work (wrapped by spaces.GPU on ZeroGPU: arguments and results are plain picklable values)


def _noop(fraction: float, desc: str) -> None:
    return None


def run_models(
    model: str,
    clip: str,
    question: str,
    configs: dict[str, dict | str],
    max_new_tokens: int,
    progress: Callable | None = None,
) -> tuple[dict[str, dict], list[str]]:
    """Decode the clip once and answer under each config. Returns (key -> result or {"error"}, notes)."""
    report = (lambda f, d: progress(f, desc=d)) if progress is not None else _noop
    engine = get_engine(model)
    configs = check_plans(configs, engine.num_layers)
    report(0.0, "decoding the clip")
    try:
        prep = engine.prepare(clip, question, media_for(model))
    except (MediaError, InputError) as e:
        raise gr.Error(str(e)) from e
    notes = [f"Note: {engine.model.disclaimer}."] if engine.model.disclaimer else []
    if not prep.clip.has_audio:
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
                runs[key] = engine.run(prep, SeatsConfig.from_dict(cfg), max_new_tokens=max_new_tokens)
        except ValueError as e:  # a method that cannot meet these settings (e.g. FastV below its floor)
            if key == "method":
                raise gr.Error(f"{cfg['method']}: {e}") from e
            runs[key] = {"error": f"{cfg['method']}: {e}"}
    report(1.0, "rendering")
    return runs, notes


def run_analysis(model: str, clip: str, question: str, progress: Callable | None = None) -> dict:
    """seats_core.analysis.analyze on one clip (raises ModuleNotFoundError where that module is missing)."""
    from seats_core import analysis  # lazy: optional part of the core

    engine = get_engine(model)
    try:
        prep = engine.prepare(clip, question, media_for(model))
    except (MediaError, InputError) as e:
        raise gr.Error(str(e)) from e
    report = (lambda f, d: progress(f, desc=d)) if progress is not None else None
    return analysis.analyze(engine, prep, progress=report)


# ---------------------------------------------------------------------------------------------------------------
# Events


def _precomputed(entry: dict, configs: dict, model: str, max_new_tokens: int) -> dict | None:
    """The example's stored runs if they were computed with exactly these settings, else None."""
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


def run_clip(
    clip: str | None,
    question: str | None,
    model: str | None,
    method: str,
    retention: str,
    baseline: str,
    max_new_tokens,
    advanced: dict | None = None,
    progress: Callable | None = None,
    compute: Callable = run_models,
) -> dict:
    """Answer with the full model, the chosen method and a baseline; everything the page shows after a run."""
    n_new = _check_inputs(clip, question, max_new_tokens)
    model = model or default_model()
    configs = make_configs(method, retention, baseline, advanced)
    entry = examples.find(clip, question)
    runs = _precomputed(entry, configs, model, n_new) if entry else None
    truth = _truth(entry) or _truth(_generated(clip, question))
    if runs is not None:
        return present_runs(
            runs, clip, "precomputed example (no model call)", truth, examples.load_analysis(entry)
        )
    runs, notes = compute(model, clip, question.strip(), configs, n_new, progress)
    for note in notes:
        gr.Warning(note)
    return present_runs(runs, clip, "computed now", notes + truth, None)


def new_scene(seed: int | None = None) -> tuple[str, str]:
    """Write a fresh generated scene (6 s mp4 with sound) and return (path, its question).

    The scene's answer is remembered (by the clip's bytes) so that a run on it can say whether it was right.
    """
    seed = secrets.randbelow(10_000_000) if seed is None else int(seed)
    sample = scenes.make_sample(SCENE_SEED_BASE + seed, seconds=6)
    SCENE_DIR.mkdir(parents=True, exist_ok=True)
    path = scenes.write_sample(sample, SCENE_DIR / f"scene_{seed}.mp4")
    info = {"path": str(path), "question": sample.question, "answer": sample.answer}
    info["answer_text"] = sample.answer_text
    with _scenes_lock:
        _scenes[examples.file_sha256(path)] = info
        while len(_scenes) > MAX_SCENES:
            _, old = _scenes.popitem(last=False)
            if old["path"] != str(path):
                Path(old["path"]).unlink(missing_ok=True)
    return str(path), sample.question


def _generated(clip: str | None, question: str | None) -> dict | None:
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


def load_example(clip: str | None, question: str | None) -> dict:
    """Show an example's precomputed runs (no model call)."""
    entry = examples.find(clip, question)
    if entry is None:
        raise gr.Error("This clip and question are not one of the precomputed examples: press Run instead.")
    settings = examples.index()["settings"]
    notes = _truth(entry)
    if settings.get("model") != default_model():
        notes.append(
            f"Precomputed with `{settings.get('model')}`; press Run to answer with `{default_model()}`."
        )
    source = f"precomputed example ({settings.get('method')} {settings.get('retention')}, no model call)"
    return present_runs(
        examples.load_runs(entry), examples.clip_path(entry), source, notes, examples.load_analysis(entry)
    )


def present_runs(runs: dict, clip: str, source: str, notes: list[str], analysis: dict | None) -> dict:
    """All outputs of a finished run (or a loaded example)."""
    view = V.make_view(runs, str(clip), source, notes)
    keys = V.explorable(view)
    if not keys:
        errors = "; ".join(r.get("error", "") for r in runs.values())
        raise gr.Error(f"no run succeeded: {errors}")
    key = "method" if "method" in keys else keys[0]
    layer = min(DEFAULT_LAYER, view["num_layers"])
    layer_out = explore(view, key, layer, AUDIO_MODES[0])
    overlays = _report_overlays(view, key)
    json_path, html_path = present.export_files(runs, view, analysis, overlays)
    return {
        "answers": present.answers_html(view),
        "status": present.status_markdown(view),
        "view": view,
        "analysis": analysis,
        "layer": gr.Slider(minimum=0, maximum=view["num_layers"], value=layer, step=1),
        "run_choice": gr.Radio(choices=[(present.RUN_TITLES[k], k) for k in keys], value=key),
        **layer_out,
        "flow": plots.token_flow(view),
        "speed": plots.speed(view),
        "speed_notes": present.speed_markdown(view),
        "dependency": plots.dependency(analysis),
        "dependency_notes": present.dependency_markdown(analysis),
        "export_json": json_path,
        "export_html": html_path,
    }


def _report_overlays(view: dict, key: str) -> list:
    """Frame grids at the stage boundaries of run `key` for the HTML report."""
    run = view["runs"][key]
    layers = sorted(
        {0, 1} | {b["after"] + 1 for b in V.boundaries(run) if b["after"] + 1 <= view["num_layers"]}
    )
    try:
        clip = present.clip_for(view["clip_path"], media_for(view["model"]))
    except MediaError:
        return []
    return [
        (
            f"{present.RUN_TITLES[key]}, layer {x}: {V.stage_label(run, x)}",
            present.layer_images(view, key, x, "waveform", clip)[0],
        )
        for x in layers
    ]


def explore(view: dict | None, key: str | None, layer, audio_mode: str | None) -> dict:
    """Re-render the layer explorer from the stored view data (no model call)."""
    keys = V.explorable(view)
    if not keys:
        return {
            "frames": None,
            "audio": None,
            "counts": "Run a clip or pick an example first.",
            "strip": plots.empty("no run yet", plots.STRIP_HEIGHT),
        }
    key = key if key in keys else keys[0]
    layer = max(0, min(int(layer or 0), view["num_layers"]))
    try:
        clip = present.clip_for(view["clip_path"], media_for(view["model"]))
    except (MediaError, OSError) as e:
        raise gr.Error(f"cannot show the frames: {e}") from e
    frames, audio = present.layer_images(view, key, layer, audio_mode or AUDIO_MODES[0], clip)
    return {
        "frames": frames,
        "audio": audio,
        "counts": present.counts_markdown(view, key, layer),
        "strip": plots.stage_strip(view, key, layer),
    }


def analyze(
    view: dict | None, model: str | None, progress: Callable | None = None, compute: Callable = run_analysis
) -> dict:
    """The dependency view for the clip of the last run (an extra model pass; optional module)."""
    if not V.explorable(view):
        raise gr.Error("Run a clip or pick an example first.")
    try:
        result = compute(model or default_model(), view["clip_path"], view["question"], progress)
    except ModuleNotFoundError as e:
        note = f"the analysis module is not installed in this build ({e.name})"
        return {
            "analysis": None,
            "dependency": plots.empty("analysis unavailable", plots.DEPENDENCY_HEIGHT),
            "dependency_notes": present.dependency_markdown(None, note),
        }
    return {
        "analysis": result,
        "dependency": plots.dependency(result),
        "dependency_notes": present.dependency_markdown(result),
    }


def api_run(
    clip: str | None,
    question: str | None,
    method: str = DEFAULT_METHOD,
    retention: str = DEFAULT_RETENTION,
    max_new_tokens=DEFAULT_MAX_NEW_TOKENS,
    progress: Callable | None = None,
    compute: Callable = run_models,
) -> tuple[str, dict]:
    """The public /run endpoint: (answer, the run's JSON exactly as the CLI's --json writes it).

    max_new_tokens is optional for API callers (the page's slider value, 16 by default)."""
    n_new = _check_inputs(clip, question, max_new_tokens)
    try:
        cfg = SeatsConfig.make(method or DEFAULT_METHOD, retention or DEFAULT_RETENTION).to_dict()
    except ValueError as e:
        raise gr.Error(f"settings: {e}") from e
    runs, _ = compute(default_model(), clip, question.strip(), {"method": cfg}, n_new, progress)
    result = runs["method"]
    return result["answer"], result


def presets() -> list[str]:
    return list(PRESETS)
