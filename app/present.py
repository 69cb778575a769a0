"""Text and layer renderings of the explorer's view data: answer cards, counts, speed and dependency notes, the
frame/audio overlays of one layer, and the export files. Plain functions of JSON-ready data (no model).
"""

from __future__ import annotations

import html
import json
import re

import numpy as np

from app import plots, render, report
from app import text as T
from app import view as V
from app.files import WORKSPACE, Workspace
from seats_core.run.analysis import verdict
from seats_core.run.media import Clip

MINI = T.MINI  # seats_core.models.loader.MINI

RUN_TITLES = {"full": "Full model", "method": "Pruned", "baseline": "Baseline"}


class ViewMismatch(ValueError):
    """The decoded clip does not have the shape the run's geometry describes."""


# ---------------------------------------------------------------------------------------------------------------
# One layer of one run


def check_clip(view: dict, clip: Clip) -> None:
    """Raise ViewMismatch unless `clip` has the frames the view's geometry describes (size, grids)."""
    g = view["geometry"]
    t, h, w = clip.frames.shape[:3]
    if [w, h] != list(g["frame_size"]):
        raise ViewMismatch(f"frames are {w}x{h}, the run saw {g['frame_size'][0]}x{g['frame_size'][1]}")
    if g["grid"][0] and t // g["temporal_patch"] != g["grid"][0]:
        raise ViewMismatch(f"{t} frames make {t // g['temporal_patch']} grids, the run had {g['grid'][0]}")


def layer_images(
    view: dict, key: str, layer: int, audio_mode: str, clip: Clip, narrow: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(frame grid, audio strip) images of run `key` at explorer layer `layer` (narrow: laid out for a phone)."""
    run = view["runs"][key]
    alive = V.alive_at(run, layer)  # (N,)
    score, what = V.scores_at(run, layer)
    scores = {
        mod: render.rank_normalise(score[V.modality_mask(view, mod)], alive[V.modality_mask(view, mod)])
        for mod in ("video", "audio")
    }
    note = f"outline colour = {what}; dimmed = pruned"
    return _draw(view, clip, alive, scores, note, audio_mode, narrow)


def _draw(
    view: dict,
    clip: Clip,
    alive: np.ndarray,
    scores: dict[str, np.ndarray],
    note: str,
    audio_mode: str,
    narrow: bool,
    tint: bool = False,
    marks: dict[int, tuple] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The frame grid and the audio strip: `alive` (N,) outlined, the rest dimmed, scores[modality] in [0, 1]
    (nan = none) as colours; marks: token index -> rgb outlined on top."""
    check_clip(view, clip)
    geometry = view["geometry"]
    cols = view["tokens"]
    vsel, asel = V.modality_mask(view, "video"), V.modality_mask(view, "audio")
    t = np.asarray([x for x, s in zip(cols["t"], vsel) if s], np.int64)
    start = np.asarray(cols["start_s"], np.float64)
    end = np.asarray(cols["end_s"], np.float64)
    captions = [
        f"{start[vsel][t == g].min():.1f}-{end[vsel][t == g].max():.1f} s" if np.any(t == g) else f"grid {g}"
        for g in range(clip.frames.shape[0] // geometry["temporal_patch"])
    ]
    marks = marks or {}
    video_marks = [(cols["t"][i], cols["row"][i], cols["col"][i], c) for i, c in marks.items() if vsel[i]]
    audio_marks = [(start[i], end[i], c) for i, c in marks.items() if asel[i]]
    frames = render.frame_grid(
        clip.frames,
        t,
        np.asarray([x for x, s in zip(cols["row"], vsel) if s], np.int64),
        np.asarray([x for x, s in zip(cols["col"], vsel) if s], np.int64),
        alive[vsel],
        scores["video"],
        geometry["block_px"],
        captions,
        note=note,
        frames_per_grid=geometry["temporal_patch"],
        max_columns=render.NARROW_GRID_COLUMNS if narrow else render.MAX_GRID_COLUMNS,
        tint=tint,
        marks=video_marks,
    )
    audio = render.audio_strip(
        clip.audio if asel.any() else None,
        clip.sample_rate,
        start[asel],
        end[asel],
        alive[asel],
        scores["audio"],
        clip.duration,
        audio_mode,
        V.window_starts(view, "audio"),
        width=render.NARROW_AUDIO_WIDTH if narrow else render.AUDIO_WIDTH,
        marks=audio_marks,
    )
    return frames, audio


# ---------------------------------------------------------------------------------------------------------------
# The Fusion view: who attends to whom at one layer (the run record's `fusion`, seats_core.run.fusion)

FUSION_SOURCES = {"last": "the question's last token", "answer": "the first answer token"}
MARK_COLOURS = {"token": (239, 68, 68), "reads": (34, 211, 238), "read_by": (232, 121, 249)}
TOP_LINKS = 5  # what a clicked token attends to most, and who attends to it most


def fusion_of(view: dict, key: str) -> dict | None:
    """The run's fusion record (Engine.run(fusion=True)), or None when the run was made without it."""
    return view["runs"][key].get("fusion")


def shown_layer(view: dict, layer: int) -> int:
    """The decoder layer the Fusion view shows for explorer layer `layer` (0 = the encoders': layer 1)."""
    return max(1, min(int(layer), int(view["num_layers"])))


def fusion_row(view: dict, key: str, layer: int, source: str) -> np.ndarray | None:
    """(N,) attention `source` ('last' | 'answer') pays each video / audio token at decoder layer `layer`
    (nan where pruned), or None when the record has no such row."""
    f = fusion_of(view, key)
    part = (f or {}).get("last_token" if source == "last" else "answer_token")
    if not part:
        return None
    return np.array([np.nan if v is None else v for v in part["attention"][layer - 1]], np.float64)


def log_scale(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """values (N,) >= 0 (nan = none) -> ([0, 1] on a log scale between their smallest and largest positive
    value, nan elsewhere; lo; hi). Attention spans orders of magnitude: a linear scale shows one bright patch."""
    v = np.asarray(values, np.float64)
    ok = np.isfinite(v) & (v > 0)
    out = np.full(v.shape, np.nan)
    if not ok.any():
        return out, 0.0, 0.0
    logs = np.log10(v[ok])
    lo, hi = float(logs.min()), float(logs.max())
    out[ok] = (logs - lo) / (hi - lo) if hi > lo else 1.0
    return out, 10**lo, 10**hi


def links(view: dict, marked: dict | None, key: str, layer: int) -> dict:
    """What the marked token attends to most and who attends to it most at decoder layer `layer`:
    {"reads": [(index, p)], "read_by": [(index, p)]} (token indices of the view), top TOP_LINKS each."""
    if not marked or marked.get("key") != key:
        return {"reads": [], "read_by": []}
    out = {}
    for name, rows in (("reads", marked["attends_to"]), ("read_by", marked["attended_by"])):
        row = np.array([np.nan if v is None else v for v in rows[layer - 1]], np.float64)
        row[marked["index"]] = np.nan  # itself
        order = [int(i) for i in np.argsort(-np.nan_to_num(row, nan=-1.0), kind="stable") if row[i] > 0]
        out[name] = [(i, float(row[i])) for i in order[:TOP_LINKS]]
    return out


def fusion_images(
    view: dict,
    key: str,
    layer: int,
    source: str,
    audio_mode: str,
    clip: Clip,
    narrow: bool = False,
    marked: dict | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(frames, audio, caption) of the Fusion view: patches and sound spans filled by the attention `source`
    gives them at decoder layer `layer` (log scale), live ones outlined, pruned ones dimmed; a marked token
    (a click) outlined red, what it reads most cyan, who reads it most magenta."""
    layer = shown_layer(view, layer)
    row = fusion_row(view, key, layer, source)
    run = view["runs"][key]
    alive = V.alive_at(run, layer)
    if row is None:
        why = (
            "this run was made without the fusion measurement: press Run"
            if fusion_of(view, key) is None
            else "the run stopped before an answer token: pick the question's last token"
        )
        return None, None, f"No attention to show: {why}."
    score, lo, hi = log_scale(np.where(alive, row, np.nan))
    scores = {mod: score[V.modality_mask(view, mod)] for mod in ("video", "audio")}
    marks = {}
    near = links(view, marked, key, layer)
    for name in ("read_by", "reads"):
        for i, _ in near[name]:
            marks[i] = MARK_COLOURS[name]
    if marked and marked.get("key") == key:
        marks[marked["index"]] = MARK_COLOURS["token"]
    note = f"fill = attention from {FUSION_SOURCES[source]} (log, {lo:.1g} to {hi:.1g}); dimmed = pruned"
    frames, audio = _draw(view, clip, alive, scores, note, audio_mode, narrow, tint=True, marks=marks)
    shares = (
        np.nansum(np.where(V.modality_mask(view, "video"), row, 0)),
        np.nansum(np.where(V.modality_mask(view, "audio"), row, 0)),
    )
    caption = (
        f"<span id='fusion-shown' data-layer='{layer}'>Decoder layer <b>{layer}</b> of {view['num_layers']} "
        f"({html.escape(RUN_TITLES[key])}): {html.escape(FUSION_SOURCES[source])} gives "
        f"<b>{shares[0]:.1%}</b> of its attention to the video and <b>{shares[1]:.1%}</b> to the sound; the "
        "rest goes to text.</span> Brighter = more attention. Click a patch or a sound span: red = it, cyan = "
        "what it attends to most, magenta = what attends to it most."
    )
    return frames, audio, caption


def stage2_ranks(view: dict, key: str, i: int) -> list[str]:
    """Where token i stood at each Stage-II drop of run `key`: its relevance rank among the tokens of its window
    and modality scored there, against the number that drop kept in that window (its `window_<m>_budget`)."""
    run, cols = view["runs"][key], view["tokens"]
    mod, win = cols["modality"][i], cols["window"][i]
    lines = []
    for e in run.get("events", []):
        if e.get("stage") != "stage2" or str(e["layer"]) not in run.get("relevance", {}):
            continue
        rel = run["relevance"][str(e["layer"])]
        if rel[i] is None:
            continue
        peers = [j for j, r in enumerate(rel) if r is not None and cols["modality"][j] == mod]
        peers = [j for j in peers if cols["window"][j] == win]
        rank = 1 + sum(rel[j] > rel[i] or (rel[j] == rel[i] and j < i) for j in peers)
        budget = (e.get("info") or {}).get(f"window_{mod}_budget")
        cut = f"; the drop kept the top {budget[win]}" if budget and win < len(budget) else ""
        fate = "kept" if int(run["cols"]["survives_to"][i]) > int(e["layer"]) else "dropped"
        lines.append(
            f"after layer {e['layer']}: rank **{rank}** of {len(peers)} {mod} tokens in window {win}{cut}: {fate}"
        )
    return lines


def _token_name(view: dict, i: int) -> str:
    cols = view["tokens"]
    if cols["modality"][i] == "video":
        return f"patch ({cols['row'][i]}, {cols['col'][i]}) at {cols['start_s'][i]:.1f} s"
    return f"sound {cols['start_s'][i]:.2f}-{cols['end_s'][i]:.2f} s"


def fusion_token_markdown(view: dict, key: str, layer: int, marked: dict | None) -> str:
    """The clicked token at decoder layer `layer`: what it attends to most, who attends to it most, and its
    Stage-II rank in its window against the cut-off."""
    if not marked or marked.get("key") != key:
        return "Click a patch or a sound span to see what it attends to and what attends to it."
    layer = shown_layer(view, layer)
    i = marked["index"]
    near = links(view, marked, key, layer)
    alive = V.alive_at(view["runs"][key], layer)[i]
    lines = [
        f"**{_token_name(view, i)}** (red), window {view['tokens']['window'][i]}, at decoder layer {layer}:"
    ]
    if not alive:
        lines.append("- pruned before this layer: it neither attends nor is attended to here.")
    else:
        reads = ", ".join(f"{_token_name(view, j)} {p:.1%}" for j, p in near["reads"]) or "only text"
        read_by = (
            ", ".join(f"{_token_name(view, j)} {p:.1%}" for j, p in near["read_by"]) or "no video or audio"
        )
        lines.append(f"- attends to (cyan): {reads}")
        lines.append(f"- attended to by (magenta): {read_by}")
    ranks = stage2_ranks(view, key, i)
    lines += [f"- Stage II, {r}" for r in ranks] or ["- not scored by Stage II in this run"]
    return "\n".join(lines)


def layer_caption(view: dict, key: str, layer: int) -> str:
    """The line above the pictures: which layer of which run they show (always the layer drawn)."""
    run = view["runs"][key]
    L = view["num_layers"]
    return (
        f"<span id='layer-shown' data-layer='{layer}'>Showing <b>layer {layer}</b> of {L} "
        f"({html.escape(RUN_TITLES[key])}): {html.escape(V.stage_label(run, layer))}.</span> "
        "Click a patch or a sound span to inspect its token."
    )


def token_under(view: dict, clip: Clip, kind: str, x: int, y: int, narrow: bool = False) -> int | None:
    """Index (into the view's token columns) of the token drawn under pixel (x, y) of the frames or the audio
    strip, from the view's own geometry (the same layout render draws), else None."""
    g = view["geometry"]
    cols = view["tokens"]
    if kind == "frames":
        grids, gh, gw = g["grid"]
        if not grids:
            return None
        columns = render.NARROW_GRID_COLUMNS if narrow else render.MAX_GRID_COLUMNS
        hit = render.token_at(x, y, grids, gh, gw, g["block_px"], columns)
        if hit is None:
            return None
        for i, (m, t, r, c) in enumerate(zip(cols["modality"], cols["t"], cols["row"], cols["col"])):
            if m == "video" and (t, r, c) == hit:
                return i
        return None
    width = render.NARROW_AUDIO_WIDTH if narrow else render.AUDIO_WIDTH
    seconds = x / width * max(clip.duration, 1e-6)
    for i, (m, s, e) in enumerate(zip(cols["modality"], cols["start_s"], cols["end_s"])):
        if m == "audio" and s <= seconds < e:
            return i
    return None


def _score(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3g}"


def token_markdown(view: dict, key: str, layer: int, i: int | None) -> str:
    """A token's modality, place, window, scores (importance, relevance) and the layer it was dropped at."""
    if i is None:
        return "No token there: click inside a frame's patches or on the audio strip."
    cols, run = view["tokens"], view["runs"][key]
    L = view["num_layers"]
    survives = int(run["cols"]["survives_to"][i])
    mod = cols["modality"][i]
    where = (
        f"frame grid {cols['t'][i]}, row {cols['row'][i]}, column {cols['col'][i]}"
        if mod == "video"
        else f"audio token {cols['audio_index'][i]}"
    )
    if survives >= L:
        fate = "never dropped: every decoder layer processes it"
    elif survives == 0:
        fate = "dropped before the LLM (decoder layer 1 never sees it)"
    else:
        fate = f"processed by decoder layers 1-{survives}, dropped after layer {survives}"
    relevance = [
        f"after layer {d}: {_score(v[i])}"
        for d, v in sorted(((int(k), v) for k, v in run.get("relevance", {}).items()), key=lambda kv: kv[0])
        if v[i] is not None
    ]
    alive = "alive" if V.alive_at(run, layer)[i] else "pruned"
    return "\n".join(
        [
            f"**{mod} token** ({where}), {cols['start_s'][i]:.2f}-{cols['end_s'][i]:.2f} s, "
            f"window {cols['window'][i]}: **{alive}** at layer {layer} of {RUN_TITLES[key]}.",
            f"- importance (Stage I): {_score(run['cols']['importance'][i])}",
            f"- query relevance: {'; '.join(relevance) if relevance else 'not scored'}",
            f"- {fate}",
        ]
    )


def _where(after: int) -> str:
    return "before layer 1" if after == 0 else f"after layer {after}"


def counts_markdown(view: dict, key: str, layer: int) -> str:
    run = view["runs"][key]
    now, total = V.counts_at(view, key, layer), V.counts_at(view, key, 0)
    _, what = V.scores_at(run, layer)
    lines = [f"**{V.stage_label(run, layer)}**", ""]
    for mod in ("video", "audio"):
        if total[mod]:
            lines.append(f"- {mod}: **{now[mod]}** of {total[mod]} tokens ({now[mod] / total[mod]:.1%})")
    lines.append(f"- text: {now['text']} tokens (never pruned)")
    lines.append(f"- outline colour: {what}")
    marks = "; ".join(f"{b['label']} {_where(b['after'])}" for b in V.boundaries(run)) or "none"
    lines += ["", f"Stage boundaries of this run: {marks}."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Answers, speed and dependency text


def _metric(label: str, value: str) -> str:
    return f"<div class='seats-metric'><span>{html.escape(label)}</span><b>{html.escape(value)}</b></div>"


OPTION_MARK = re.compile(r"\(([A-D])\)")  # "(A) red (B) green ..." as the generated scenes ask
MINI_ONLY_MCQ = (
    "The miniature only understands four-option questions about generated scenes ('(A) ... (D) ...'): "
    "this answer to a free-form question means nothing."
)
MINI_ONLY_SCENES = (
    "The miniature only knows its generated scenes (moving shapes and tones): this clip is not one of them, so "
    "its answers mean nothing here, whatever the question."
)


def four_options(question: str | None) -> bool:
    """True when the question lists the options (A) to (D), as generated scenes and examples do."""
    return [m.group(1) for m in OPTION_MARK.finditer(question or "")] == list("ABCD")


def parsed_option(answer: str | None, question: str | None) -> str | None:
    """The option letter the evaluator reads from a raw answer ('AD' -> 'A'), or None (no option named)."""
    from seats_core.evaluation.benchmarks.mcq import extract_letter

    return extract_letter(answer or "", list("ABCD") if four_options(question) else None)


def timing_label(run: dict) -> str:
    """'median of n, warm-ups discarded' or 'single run', from the record's timing_ms['repeats']."""
    n = int(run.get("timing_ms", {}).get("repeats") or 1)
    return f"median of {n}, warm-ups discarded" if n > 1 else "single run"


def disclaimer(run: dict) -> str | None:
    """The model's disclaimer carried by the record (random weights: the answers mean nothing), else None."""
    return (run.get("extra") or {}).get("disclaimer") or run.get("disclaimer")


def flops_lines(run: dict) -> list[tuple[str, str]]:
    """(label, value) of the LLM prefill FLOPs in both conventions the record carries, each labelled."""
    f = run["flops"]
    out = [("prefill FLOPs (as generate() runs it)", T.format_flops(f["prefill"]))]
    if f.get("prefill_paper") is not None:
        out.append(("prefill FLOPs (as the paper counts)", T.format_flops(f["prefill_paper"])))
    return out


def _verdict(run: dict, question: str | None, truth: dict | None, model: str | None) -> str:
    """(truth: set only for a shipped example or a generated scene of this session: the clips the miniature
    knows; every other clip gets the miniature's note, whatever the question.)"""
    """The card's right/wrong line: raw answer, the option parsed from it, and ✓ / ✗ when the answer is known."""
    raw = (run.get("answer") or "").strip()
    letter = parsed_option(raw, question)
    parsed = f"parsed <b>{letter}</b>" if letter else "no option parsed"
    mark = ""
    if truth and truth.get("answer"):
        right = letter == truth["answer"]
        mark = (
            "<span class='seats-ok'>✓ correct</span>"
            if right
            else f"<span class='seats-bad'>✗ wrong (correct: {html.escape(truth['answer'])})</span>"
        )
    line = f"<div class='seats-verdict'>{mark} <span class='seats-parsed'>{parsed}</span></div>"
    if str(model or "").startswith(MINI):  # mini, mini-qwen3: they know their generated scenes only
        if not truth:  # not a shipped example nor a generated scene of this session
            line += f"<p class='seats-warn'>{html.escape(MINI_ONLY_SCENES)}</p>"
        elif not four_options(question):
            line += f"<p class='seats-warn'>{html.escape(MINI_ONLY_MCQ)}</p>"
    return line


def answers_html(view: dict) -> str:
    """Side-by-side cards: raw answer, the option parsed from it and ✓ / ✗ when the correct option is known,
    prefill and first-token times (medians or marked as single runs), FLOPs in both conventions, tokens kept."""
    full = view["runs"].get("full")
    full = full if full and "error" not in full else None
    truth = view.get("truth")
    cards = []
    for key in V.RUN_KEYS:
        run = view["runs"].get(key)
        if run is None:
            continue
        title = RUN_TITLES[key]
        if "error" in run:
            cards.append(
                f"<div class='seats-card'><h4>{title}</h4><p class='seats-error'>{html.escape(run['error'])}</p></div>"
            )
            continue
        t = run["timing_ms"]
        kept = run["retention_measured"]["overall"]
        answer = run["answer"] or "(empty answer)"
        setting = "" if key == "full" else plots.run_label(run)
        ratio = ""
        if full and key != "full" and run["flops"]["prefill"]:
            ratio = f"<p class='seats-note'>{html.escape(T.flops_ratio_head(full, run))} (why: Speed tab)</p>"
        note = disclaimer(run)
        cards.append(
            "<div class='seats-card'>"
            f"<h4>{title}</h4><div class='seats-setting'>{html.escape(setting)}</div>"
            f"<p class='seats-answer'>{html.escape(answer)}</p>"
            + _verdict(run, view.get("question"), truth, view.get("model"))
            + _metric(f"LLM prefill ({timing_label(run)})", f"{t['llm_prefill']:.0f} ms")
            + _metric("first token", f"{t['first_token']:.0f} ms")
            + "".join(_metric(label, value) for label, value in flops_lines(run))
            + _metric("tokens kept (layer avg)", "-" if kept is None else f"{kept:.1%}")
            + ratio
            + (f"<p class='seats-warn'>Note: {html.escape(note)}.</p>" if note else "")
            + "</div>"
        )
    return "<div class='seats-cards'>" + "".join(cards) + "</div>"


def status_markdown(view: dict) -> str:
    clip = view.get("clip") or {}
    parts = [
        f"**{view.get('source', '')}** on `{view.get('model')}` ({view.get('num_layers')} decoder layers). "
        f"Clip: {clip.get('duration_s')} s, {clip.get('frames')} frames sampled at {clip.get('fps')} fps, "
        f"resized to {clip.get('frame_size')}, {'with' if clip.get('has_audio') else '**no**'} audio."
    ]
    parts += [f"- **Warning:** {w}" for w in view.get("warnings", [])]
    parts += [f"- {n}" for n in view.get("notes", [])]
    return "\n".join(parts)


def speed_markdown(view: dict) -> str:
    keys = V.explorable(view)
    if not keys:
        return ""
    runs = view["runs"]
    first = runs[keys[0]]
    when = timing_label(first)
    times = (
        f"Times are medians ({when})."
        if when != "single run"
        else "Times are **single runs** (not medians): on a shared CPU they move by tens of percent between "
        "runs; the FLOP counts do not."
    )
    conventions = first["flops"].get("conventions") or {"prefill": first["flops"].get("convention", "")}
    lines = [
        f"Machine: **{first['device']}**. {times}",
        "",
        f"FLOPs: `{first['flops'].get('convention', '')}`. Two conventions, both shown:",
        *[f"- `{k}`: {v}" for k, v in conventions.items()],
        "",
        "| run | prefill FLOPs (as generate() runs it) | prefill FLOPs (as the paper counts) |",
        "|---|---|---|",
        *[
            f"| {plots.run_label(runs[k])} | {T.format_flops(runs[k]['flops']['prefill'])} | "
            f"{T.format_flops(runs[k]['flops'].get('prefill_paper') or 0)} |"
            for k in keys
        ],
        "",
    ]
    full = runs.get("full")
    if full and "error" not in full:
        full_ms = full["timing_ms"]["llm_prefill"] + full["timing_ms"]["selection"]
        for key in ("method", "baseline"):
            r = runs.get(key)
            if not r or "error" in r:
                continue
            ms = r["timing_ms"]["llm_prefill"] + r["timing_ms"]["selection"]
            kv_x = full["kv_cache_bytes"] / max(r["kv_cache_bytes"], 1)
            lines.append(
                f"- **{plots.run_label(r)}**: selection + LLM prefill "
                f"{ms:.0f} ms vs {full_ms:.0f} ms for the full model ({full_ms / max(ms, 1e-9):.2f}x speed-up); "
                f"KV cache {kv_x:.1f}x smaller. {T.flops_ratio_note(full, r)}"
            )
            if ms >= full_ms:
                lines.append(slower_note(full, r))
        lines += [
            "",
            "Token cuts and time cuts differ: encoders, fixed per-layer costs and (on small models and CPUs) "
            "overheads do not shrink with the token count.",
        ]
    return "\n".join(lines)


def slower_note(full: dict, run: dict) -> str:
    """Why a pruned run took longer than the full one although it did fewer FLOPs: its selection (Python and
    small kernels, a fixed cost per window and drop) against a prefill that is already cheap."""
    t, tf = run["timing_ms"], full["timing_ms"]
    mini = str(full.get("model", "")).startswith(MINI)
    llm = "on a short clip through the miniature's narrow LLM," if mini else "on this short clip"
    return (
        f"  **Why {plots.run_label(run)} is slower here:** its token selection took {t['selection']:.0f} ms, while "
        f"the full model's whole LLM prefill took only {tf['llm_prefill']:.0f} ms for "
        f"{T.format_flops(full['flops']['prefill'])}: {llm} the prefill is so cheap that choosing tokens "
        f"costs more than it saves. The FLOPs show what the cut buys ({T.flops_ratio_head(full, run)}); on the "
        "7B with longer clips one prefill is tens of thousands of times more work and the selection's share is small."
    )


def dependency_markdown(analysis: dict | None, unavailable: str | None = None) -> str:
    intro = (
        "Knock out every video (or audio, or both) token from layer *k* on and see how much the answer moves. "
        "Where the curve drops to zero, the question's text tokens have already absorbed what they need from the "
        "clip: fusion is complete and the remaining layers can run on text alone (that is why SEATS' Stage III "
        "exists). The heatmaps show where the question attends, layer by layer and 2-second window by window."
    )
    if unavailable:
        return f"{intro}\n\n**Analysis unavailable:** {unavailable}"
    if not analysis:
        return f"{intro}\n\nPress **Run dependency analysis** (one extra model pass per layer)."
    v = verdict(analysis)  # the library's one verdict: the tour, the report and the CLI print the same
    return f"{intro}\n\n{v.text}" if v else intro


# ---------------------------------------------------------------------------------------------------------------
# Export


def export_files(
    records: dict, view: dict, analysis: dict | None, overlays: list, workspace: Workspace | None = None
) -> tuple[str, str]:
    """Write the JSON (the run records, as the CLI writes them) and the HTML report into this process's capped
    folder; returns their paths. Made only when the user asks for them."""
    trace = {
        "question": view.get("question"),
        "source": view.get("source"),
        "runs": records,
        "analysis": analysis,
    }
    text = json.dumps(trace, indent=1)
    page = report.build(view, analysis, overlays)
    workspace = workspace or WORKSPACE
    json_path = workspace.new_file("exports", "seats_trace.json", len(text) + len(page))
    json_path.write_text(text)
    html_path = json_path.with_name("seats_report.html")
    html_path.write_text(page)
    return str(json_path), str(html_path)
