"""The page's events: plain functions of a server-side Session (app.state) and the values a page sends.

Each returns a dict of named outputs (ui.py maps names to components) or raises gr.Error with one line. Every
client value goes through checks.py first; nothing the client sends names a file the server did not receive, a
run or a view: the decoded clip, the run records and the view digest live in the session. Model work goes through
work.py inside `work.model_failures`, so an unexpected failure is one line too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from app import checks, examples, plots, present, tour
from app import view as V
from app.checks import refuse
from app.files import WORKSPACE
from app.server import SERVER
from app.state import Session
from app.work import decode, model_failures, run_analysis, run_models, run_token
from seats_core.data import scenes
from seats_core.models.family import recipe_for
from seats_core.prune.config import SeatsConfig
from seats_core.run.media import Clip
from seats_core.run.pipeline import MAX_QUESTION_CHARS

DEFAULT_LAYER = 1  # first decoder layer: shows what Stage I kept
SCENE_SEED_BASE = 80_000_000  # generated-scene seeds: no training, held-out or gallery stream uses these
SCENE_SECONDS = 6
MAX_SCENE_BYTES = 2 * 2**20


# ---------------------------------------------------------------------------------------------------------------
# Run: a checking step (its own bounded queue), then the model step


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
    path = checks.check_clip_path(clip)
    q = checks.check_question(question)
    n_new = checks.check_max_new_tokens(max_new_tokens)
    model = checks.check_model(model)
    configs = checks.make_configs(method, retention, baseline, advanced)
    decode(session, path, model)
    request = {"question": q, "model": model, "configs": configs, "max_new_tokens": n_new, "file": path}
    with session.lock:
        session.pending = request
    return request


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
        recipe = recipe_for(run.get("family") or "qwen2_5_omni", run["num_layers"])
        resolved = SeatsConfig.from_dict(cfg).resolve(recipe).to_dict()
        if {k: v for k, v in resolved.items() if k != "extra"} != {
            k: v for k, v in run["config"].items() if k != "extra"
        }:
            return None
    return runs


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
    with model_failures():
        runs, notes = compute(model, clip, request["question"], configs, n_new, progress)
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


# ---------------------------------------------------------------------------------------------------------------
# Generated scenes and examples


def new_scene(seed: int | None = None) -> tuple[str, str]:
    """Write a fresh generated scene (6 s mp4 with sound) and return (path, its question).

    The scene's answer is remembered (by the clip's bytes) so that a run on it can say whether it was right.
    """
    seed = secrets.randbelow(10_000_000) if seed is None else checks.integer(seed, "seed", 0, checks.MAX_SEED)
    sample = scenes.make_sample(SCENE_SEED_BASE + seed, seconds=SCENE_SECONDS)
    path = scenes.write_sample(sample, WORKSPACE.new_file("scenes", f"scene_{seed}.mp4", MAX_SCENE_BYTES))
    info = {"file": str(path), "question": sample.question, "answer": sample.answer}
    info["answer_text"] = sample.answer_text
    SERVER.remember_scene(examples.file_sha256(path), info)
    return str(path), sample.question


SCENE_LOADED = (
    "A new generated scene is loaded (its correct option is known): press **Run** to answer it with the full "
    "model, the pruned one and the baseline."
)


def new_scene_status(seed: int | None = None) -> tuple[str, str, str]:
    """new_scene for the page: (path, question, a status line saying to press Run)."""
    path, question = new_scene(seed)
    return path, question, SCENE_LOADED


def _generated(clip: Path | None, question: str | None) -> dict | None:
    """The remembered scene with these bytes and this question, else None."""
    if not clip or not SERVER.scenes or not Path(clip).is_file():
        return None
    info = SERVER.scene(examples.file_sha256(clip))
    return info if info and info["question"] == (question or "").strip() else None


def _truth(entry: dict | None) -> list[str]:
    """A note with the correct option of a generated scene (the generator knows it)."""
    if not entry or "answer" not in entry:
        return []
    return [f"Correct answer (known from the generated scene): ({entry['answer']}) {entry['answer_text']}."]


def load_example(session: Session, clip, question) -> dict:
    """Show an example's precomputed runs (no model call)."""
    path = checks.check_clip_path(clip)
    entry = examples.find(path, checks.text(question, "the question", MAX_QUESTION_CHARS))
    if entry is None:
        raise refuse("This clip and question are not one of the precomputed examples: press Run instead.")
    settings = examples.index()["settings"]
    decode(session, path, settings.get("model"))
    notes = _truth(entry)
    if settings.get("model") != SERVER.model:
        notes.append(
            f"Precomputed with `{settings.get('model')}`; press Run to answer with `{SERVER.model}`."
        )
    source = f"precomputed example ({settings.get('method')} {settings.get('retention')}, no model call)"
    runs = examples.load_runs(entry)
    return present_runs(session, runs, source, notes, examples.load_analysis(entry), entry)


# ---------------------------------------------------------------------------------------------------------------
# Showing a result


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
        session.marked = None
        if session.tour_step is None:  # the first result of this page opens the tour once
            session.tour_step = 0
    key = "method" if "method" in keys else keys[0]
    layer = min(DEFAULT_LAYER, view["num_layers"])
    layer_out = explore(session, key, layer, checks.AUDIO_MODES[0])
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
        **{k: v for k, v in tour_outputs(session).items() if k in ("tour", "tour_text", "tour_next")},
    }


def _held(session: Session) -> tuple[dict, Clip]:
    """The session's view and decoded clip, or a one-line refusal."""
    with session.lock:
        view, clip = session.view, session.clip
    if not V.explorable(view) or clip is None:
        raise refuse("Run a clip or pick an example first.")
    return view, clip


def _main_run(view: dict) -> str:
    keys = V.explorable(view)
    return "method" if "method" in keys else keys[0]


def explore(session: Session, key, layer, audio_mode, source="last") -> dict:
    """Re-render the layer explorer and the Fusion view from the session's own run and clip (no model call, no
    decoding). A layer beyond the model's is drawn at the nearest one and the box is set to it (no error)."""
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
            "layer_fix": gr.update(),
            **_fusion_empty(),
        }
    view, clip = _held(session)
    key = checks.choice(key, "the run", V.explorable(view))
    asked = layer
    layer = checks.clamped(layer, "the layer", 0, view["num_layers"])
    mode = checks.choice(audio_mode or checks.AUDIO_MODES[0], "the audio view", checks.AUDIO_MODES)
    source = checks.choice(source or "last", "the attention source", checks.FUSION_SOURCES)
    try:
        frames, audio = present.layer_images(view, key, layer, mode, clip, session.narrow)
    except present.ViewMismatch as e:
        raise refuse(f"cannot draw this run on the clip held for it ({e}): press Run again") from None
    in_range = isinstance(asked, (int, float)) and not isinstance(asked, bool) and asked == layer
    return {
        "frames": frames,
        "audio": audio,
        "counts": present.counts_markdown(view, key, layer),
        "strip": plots.stage_strip(view, key, layer),
        "caption": present.layer_caption(view, key, layer),
        "strip_legend": plots.stage_legend(view["runs"][key]),
        "layer_fix": gr.update() if in_range else gr.update(value=layer),
        **fusion_view(session, view, clip, key, layer, mode, source),
    }


FUSION_OUTPUTS = (
    "fusion_frames", "fusion_audio", "fusion_caption", "fusion_matrix", "fusion_layers", "fusion_knockout",
    "fusion_token",
)  # fmt: skip


def _fusion_empty() -> dict:
    return {
        "fusion_frames": None,
        "fusion_audio": None,
        "fusion_caption": "Run a clip or pick an example first.",
        "fusion_matrix": plots.empty("no run yet", plots.FUSION_MATRIX_HEIGHT),
        "fusion_layers": plots.empty("no run yet", plots.FUSION_LAYERS_HEIGHT),
        "fusion_knockout": plots.empty("no run yet", plots.FUSION_LAYERS_HEIGHT),
        "fusion_token": "",
    }


def fusion_view(
    session: Session, view: dict, clip: Clip, key: str, layer: int, mode: str, source: str
) -> dict:
    """The Fusion tab at explorer layer `layer` (decoder layer max(1, layer)) for checked values."""
    with session.lock:
        marked, analysis = session.marked, session.analysis
    shown = present.shown_layer(view, layer)
    try:
        frames, audio, caption = present.fusion_images(
            view, key, shown, source, mode, clip, session.narrow, marked
        )
    except present.ViewMismatch as e:
        raise refuse(f"cannot draw this run on the clip held for it ({e}): press Run again") from None
    fusion, run = present.fusion_of(view, key), view["runs"][key]
    return {
        "fusion_frames": frames,
        "fusion_audio": audio,
        "fusion_caption": caption,
        "fusion_matrix": plots.fusion_matrix(fusion, shown),
        "fusion_layers": plots.fusion_layers(fusion, run, shown),
        "fusion_knockout": plots.fusion_knockout(analysis, run, shown),
        "fusion_token": present.fusion_token_markdown(view, key, shown, marked),
    }


def fusion_inspect(
    session: Session, key, layer, audio_mode, source, kind: str, index, compute: Callable = run_token
) -> dict:
    """A click on the Fusion view's frames or audio strip: mark the token under it and draw what it attends to
    and what attends to it (its attention row and column at every layer, measured by the model once per token
    and run, then kept in the session)."""
    view, clip = _held(session)
    key = checks.choice(key, "the run", V.explorable(view))
    layer = checks.clamped(layer, "the layer", 0, view["num_layers"])
    mode = checks.choice(audio_mode or checks.AUDIO_MODES[0], "the audio view", checks.AUDIO_MODES)
    source = checks.choice(source or "last", "the attention source", checks.FUSION_SOURCES)
    kind = checks.choice(kind, "the picture", ("frames", "audio"))
    x, y = checks.pixel(index)
    i = present.token_under(view, clip, kind, x, y, session.narrow)
    if i is None:
        raise refuse("No token there: click inside a frame's patches or on the audio strip.")
    with session.lock:
        marked = session.marked
    if not (marked and marked["key"] == key and marked["index"] == i):
        run = view["runs"][key]
        with model_failures("the attention of this token"):
            got = compute(
                view["model"], clip, view["question"], run.get("config"), view["tokens"]["index"][i]
            )
        marked = {"key": key, "index": i, "attends_to": got["attends_to"], "attended_by": got["attended_by"]}
        with session.lock:
            if session.view is view:
                session.marked = marked
    return fusion_view(session, view, clip, key, layer, mode, source)


def set_narrow(session: Session, narrow) -> None:
    """The page says whether it is a phone's (window narrower than 640 px): pictures are laid out for it."""
    flag = checks.flag(narrow, "narrow")
    with session.lock:
        session.narrow = flag


def inspect(session: Session, key, layer, kind: str, index) -> str:
    """What the clicked token is (frames or audio strip at pixel `index` = [x, y]): its modality, window,
    seconds, scores and the layer it was dropped at, resolved from the session's record (never the client)."""
    view, clip = _held(session)
    key = checks.choice(key, "the run", V.explorable(view))
    layer = checks.clamped(layer, "the layer", 0, view["num_layers"])
    kind = checks.choice(kind, "the picture", ("frames", "audio"))
    x, y = checks.pixel(index)
    return present.token_markdown(
        view, key, layer, present.token_under(view, clip, kind, x, y, session.narrow)
    )


# ---------------------------------------------------------------------------------------------------------------
# The guided tour


def tour_outputs(session: Session) -> dict:
    """The tour panel: step `session.tour_step` of the session's run (hidden before a result and once skipped)."""
    with session.lock:
        step, view, analysis = session.tour_step, session.view, session.analysis
    if step is None or step < 0 or not V.explorable(view):
        return {
            "tour": gr.Column(visible=False),
            "tour_text": "",
            "tour_next": gr.update(),
            "tabs": gr.update(),
            "layer": gr.update(),
        }
    steps = tour.steps_for_view(view, analysis)
    step = min(step, len(steps) - 1)
    tab, layer = tour.place(view, analysis, step)
    return {
        "tour": gr.Column(visible=True),
        "tour_text": tour.page(steps, step),
        "tour_next": gr.Button(value=tour.DONE_LABEL if step == len(steps) - 1 else tour.NEXT_LABEL),
        "tabs": gr.Tabs(selected=tab),
        "layer": gr.update() if layer is None else gr.Slider(value=layer),
    }


def tour_next(session: Session) -> dict:
    """Next step of the tour (closes it after the last)."""
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


# ---------------------------------------------------------------------------------------------------------------
# The dependency analysis and exports


def analyze(
    session: Session, model=None, progress: Callable | None = None, compute: Callable = run_analysis
) -> dict:
    """The dependency view for the session's clip and question (an extra model pass; optional module)."""
    view, clip = _held(session)
    model = checks.check_model(model)
    if model != view["model"]:
        raise refuse(f"the last run used `{view['model']}`: pick it again or press Run with `{model}` first")
    with model_failures("the dependency analysis"):
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
    return {
        "dependency": plots.dependency(result, run=view["runs"][_main_run(view)]),
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
    key = _main_run(view)
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
