"""A short guided tour for a first visit: what Stage I kept -> where fusion completes for this clip -> what that
buys. Each step is a function of the run's own numbers (RunRecord dicts, tokens as columns, or the page's
view via `from_view`) returning markdown; `steps` lists them, `page` frames one with its position and the
way out. The page decides when to show it and lets the visitor skip it (see the module's wiring note in the
report: a dismissible panel above the tabs, Next / Skip buttons, the step index in gr.State).
"""

from __future__ import annotations

from collections import Counter

from app import text as T
from seats_core.run.analysis import verdict

TITLES = ("What Stage I kept", "Where fusion completes", "What that buys")
NEXT_LABEL = "Next"  # the buttons `page` refers to (the page's wiring names its buttons alike)
DONE_LABEL = "Done"  # the Next button on the last step: it closes the tour
STEP_TABS = ("Layers", "Fusion", "Speed")  # the tab each step opens (the page's tab ids are their labels)
SKIP_LABEL = "Skip tour"
MODALITIES = ("video", "audio")


ROW_COLUMNS = ("modality", "window", "start_s", "end_s", "survives_to")  # the token columns the tour reads


def from_view(view: dict, key: str) -> dict:
    """A record-like dict (token columns) for run `key` of the page's compact view (app.view)."""
    run = dict(view["runs"][key])
    columns = {c: list(view["tokens"][c]) for c in ROW_COLUMNS if c != "survives_to"}
    columns["survives_to"] = [int(x) for x in run.get("cols", {}).get("survives_to", [])]
    run["tokens"] = columns
    return run


def _rows(run: dict) -> list[dict]:
    """The record's token columns (`tokens[col][i]`) as one small dict per token, for counting."""
    cols = run.get("tokens") or {}
    if not cols or not cols.get("modality"):
        return []
    return [dict(zip(ROW_COLUMNS, values)) for values in zip(*(cols[c] for c in ROW_COLUMNS))]


def _plan_drop(run: dict, kind: str) -> dict | None:
    return next((d for d in run.get("plan", []) if d["kind"] == kind), None)


def stage1_kept(run: dict) -> str:
    """Step 1: how many video and audio tokens reach the first decoder layer, overall and per 2 s window."""
    tokens = _rows(run)
    before = Counter(t["modality"] for t in tokens)
    kept = Counter(t["modality"] for t in tokens if t["survives_to"] >= 1)
    if not tokens:
        return "This clip has no video or audio tokens to select from."
    if not run.get("plan"):
        return (
            f"The full model keeps all {before['video']} video and {before['audio']} audio tokens: nothing is "
            "selected. Pick the pruned run in **Run to explore** to see Stage I at work."
        )
    parts = [
        f"{kept[m]} of {before[m]} {m} tokens ({kept[m] / before[m]:.0%})" for m in MODALITIES if before[m]
    ]
    lines = [f"Before the language model runs, **{run.get('method')}** kept " + " and ".join(parts) + "."]
    s1 = _plan_drop(run, "stage1")
    if s1:
        lam = (run.get("config") or {}).get("encoder_scale")
        asked = f"{s1['keep_video']:.1%} of the video and {s1['keep_audio']:.1%} of the audio"
        lines.append(
            f"Stage I asks for {asked}"
            + (
                f" (lambda = {lam:g} times the retention, so the later stages have tokens to drop)"
                if lam
                else ""
            )
            + "; in every window it keeps tokens that drew the encoder's attention and differ from each other."
        )
    windows = sorted({t["window"] for t in tokens})
    if len(windows) > 1:
        rows = []
        for w in windows:
            span = [t for t in tokens if t["window"] == w]
            start = min(t["start_s"] for t in span)
            end = max(t["end_s"] for t in span)
            counts = ", ".join(
                f"{sum(t['survives_to'] >= 1 for t in span if t['modality'] == m)}/"
                f"{sum(t['modality'] == m for t in span)} {m}"
                for m in MODALITIES
                if any(t["modality"] == m for t in span)
            )
            rows.append(f"| {w} | {start:.0f}-{end:.0f} s | {counts} |")
        lines += ["", "| window | time | kept |", "|---|---|---|", *rows]
    lines += ["", "On the **Layers** tab at layer 1, the outlined patches and sound are exactly these."]
    return "\n".join(lines)


def where_fusion_completes(run: dict, analysis: dict | None) -> str:
    """Step 2: from which layer this clip's answer no longer needs the video and audio tokens (the knockout
    curve), and where the run's plan starts running on text alone."""
    s3 = _plan_drop(run, "stage3")
    text_from = s3["layer"] + 1 if s3 else None  # plan layers are 0-based "before layer d"
    plan = (
        f"SEATS runs on text alone from decoder layer **{text_from}** (Stage III)."
        if text_from
        else "This run never switches to text alone."
    )
    # the library's one verdict: the Dependency tab, the report and the CLI print the same
    v = verdict(analysis)
    if v is None:
        return (
            f"{plan} Whether that is safe for *this* clip is what the **Dependency** tab measures: press **Run "
            "dependency analysis** to knock out the video and audio tokens from each layer on and watch the answer."
        )
    if v.complete_from is None:
        return f"{v.text} {plan}"
    k = v.complete_from  # clip tokens removed from 0-based layer k on = from decoder layer k + 1
    where = v.text
    if k < len(analysis["knockout"]["both"]["kl"]) - 1:  # k = L: the answer reads the clip to the last layer
        where += (
            f" From decoder layer **{k + 1}** on, the question's tokens hold what they need from the clip."
        )
    if text_from is None:
        return f"{where} {plan}"
    margin = text_from - (k + 1)
    note = (
        f"so Stage III starts {margin} layer{'s' if margin != 1 else ''} after fusion completes: a safe margin."
        if margin >= 0
        else f"so Stage III starts {-margin} layer{'s' if margin != -1 else ''} *before* fusion completes for "
        "this clip: compare the answers to see whether it hurt."
    )
    return (
        f"{where} {plan[:-1]}, {note} The **Fusion** tab, open at that layer, shows who attends to whom there "
        "and the knockout curve on the same layer axis."
    )


def what_that_buys(run: dict, full: dict | None) -> str:
    """Step 3: tokens, FLOPs and KV cache saved against the full run, and whether the answer changed."""
    if not full or not run.get("plan"):
        return "Run the full model and a pruned one on the same clip and question to compare their costs."
    kept = run.get("retention_measured", {})
    shares = [f"{kept[m]:.1%} of the {m}" for m in MODALITIES if kept.get(m) is not None]
    lines = [
        f"Averaged over the layers, **{run.get('method')}** processed "
        + (" and ".join(shares) + " tokens." if shares else "the text tokens only."),
        T.flops_ratio_head(full, run) + " (why not the paper's ~9x: the **Speed** tab).",
    ]
    kv_full, kv = full.get("kv_cache_bytes"), run.get("kv_cache_bytes")
    if kv_full and kv:
        lines.append(
            f"Its KV cache is {T.format_bytes(kv)} against {T.format_bytes(kv_full)} "
            f"({T.format_ratio(kv_full / kv)} smaller)."
        )
    same = run.get("answer", "").strip() == full.get("answer", "").strip()
    lines.append(
        f"It answered **{run.get('answer', '').strip()}**, "
        + (
            "the same as the full model."
            if same
            else f"where the full model said **{full.get('answer', '').strip()}**."
        )
    )
    lines.append("Times are on the **Speed** tab: fewer tokens do not shrink the encoders or fixed costs.")
    return "\n\n".join(lines)


def steps(runs: dict[str, dict], analysis: dict | None = None, key: str = "method") -> list[tuple[str, str]]:
    """(title, markdown) of each step for run `key` (RunRecord dicts keyed full/method/baseline)."""
    run, full = runs.get(key) or {}, runs.get("full")
    return list(
        zip(
            TITLES,
            (stage1_kept(run), where_fusion_completes(run, analysis), what_that_buys(run, full)),
        )
    )


def steps_for_view(view: dict, analysis: dict | None = None, key: str = "method") -> list[tuple[str, str]]:
    """`steps` from the page's view data (app.view.make_view) instead of records."""
    runs = {k: from_view(view, k) for k, r in view.get("runs", {}).items() if "error" not in r}
    return steps(runs, analysis, key if key in runs else next(iter(runs), key))


def place(view: dict, analysis: dict | None, index: int) -> tuple[str, int]:
    """(tab, explorer layer) that step `index` talks about: Stage I's keep set at layer 1 on Layers; fusion at
    the verdict's layer on Fusion (the first layer where removing the clip stops mattering; with no layer
    claimed, where the run goes text-only, else the last layer); the text-only layers on Speed."""
    L = int(view["num_layers"])
    index = max(0, min(int(index), len(STEP_TABS) - 1))
    if index == 0:
        return STEP_TABS[0], min(1, L)
    if index == 2:
        return STEP_TABS[2], L
    v = verdict(analysis)
    if v is not None and v.complete_from is not None:
        return STEP_TABS[1], max(1, min(v.complete_from + 1, L))
    key = "method" if "method" in view.get("runs", {}) and "error" not in view["runs"]["method"] else None
    s3 = _plan_drop(view["runs"][key], "stage3") if key else None
    return STEP_TABS[1], max(1, min(s3["layer"] + 1, L)) if s3 else max(1, L - 1)


def page(tour: list[tuple[str, str]], index: int) -> str:
    """Step `index` (0-based) framed for the page: 'Tour, step i of n: title', the text, and how to go on."""
    n = len(tour)
    index = max(0, min(int(index), n - 1))
    title, body = tour[index]
    way_out = (
        f"Press **{NEXT_LABEL}** for the next step or **{SKIP_LABEL}** to close it."
        if index < n - 1
        else f"Press **{DONE_LABEL}** to close the tour."
    )
    return f"#### Tour, step {index + 1} of {n}: {title}\n\n{body}\n\n{way_out}"
