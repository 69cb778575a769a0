"""Plotly figures from the explorer's view data (app.view) and the dependency analysis dict.

Every figure sets its height, autosizes to its panel's width (no fixed width: Gradio renders plots with Plotly's
`responsive` config) and has transparent backgrounds (they sit on light and dark themes alike). Every per-layer
figure marks the run's stage boundaries, read from its plan (`view.boundaries`), never from fixed layer numbers.

Layer coordinates: the token flow and the strip use explorer layers (0 = encoder output, 1..L decoder layers), so
a drop planned before 0-based layer d sits at x = d + 0.5; the heatmaps use 1-based decoder layers (a drop at
y = d + 0.5); the knockout curves use the analysis' k (tokens removed from 0-based layer k's input on), where the
same drop is exactly k = d.

A figure drawn while its tab is hidden comes out at Plotly's default 700 px; `RESIZE_ON_SHOW_JS` (run on the tab's
`.select`) makes it refit its panel.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app import text as T
from app import view as V
from seats_core.prune.methods import stage_colours

RUN_STYLE = {"full": "dot", "method": "solid", "baseline": "dash"}
MODALITY_COLOR = {"video": "#3b82f6", "audio": "#f59e0b", "text": "#94a3b8"}
STAGE_COLOR = stage_colours()  # kind -> colour, from the methods registry
STAGE_SHORT = {  # boundary labels on plots: short, so the three Stage II drops a layer apart do not collide
    "stage1": "I",
    "stage2": "II",
    "stage3": "III: text only",
    "fastv": "FastV",
    "random": "random",
    "divprune": "DivPrune",
    "visionzip": "VisionZip",
    "uniform": "uniform",
}
OTHER_DROP_COLOR = "#64748b"
STAGE_TIMES = (  # (timing_ms key, label, colour): the stages of one answer, in order
    ("vision_encoder", "vision encoder", "#60a5fa"),
    ("audio_encoder", "audio encoder", "#fbbf24"),
    ("selection", "token selection", "#a855f7"),
    ("llm_prefill", "LLM prefill", "#22c55e"),
    ("decode", "decode", "#94a3b8"),
)
FLOW_HEIGHT = 420
FLOW_TOP_MARGIN = 90  # px: two legend rows above the stage labels
FLOW_LEGEND_Y = 1.08
STRIP_HEIGHT = 210
SPEED_HEIGHT = 760
DEPENDENCY_HEIGHT = 1200
FUSION_MATRIX_HEIGHT = 300
FUSION_LAYERS_HEIGHT = 340
CROSS_CELLS = (  # (query group, key group, label, colour) of the Fusion tab's by-layer plot
    ("audio", "video", "audio → video", "#f59e0b"),
    ("video", "audio", "video → audio", "#3b82f6"),
    ("text", "video", "text → video", "#1d4ed8"),
    ("text", "audio", "text → audio", "#b45309"),
)
LEGEND_TOP_MARGIN = 110  # px above the plots of figures with subplot titles
TITLED_LEGEND_Y = 1.12  # legend position (paper fraction) above those titles
COLORBAR_GAP = 0.01  # paper fraction between a heatmap and its colour scale
COLORBAR_PX = 10
TERA = 1e12
MEGA = 2**20
FLOP_UNIT_SCALES = ((1e15, "PFLOPs"), (1e12, "TFLOPs"), (1e9, "GFLOPs"), (1e6, "MFLOPs"), (1e3, "kFLOPs"))
BYTE_UNIT_SCALES = ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
# For the lead: `tab.select(None, js=RESIZE_ON_SHOW_JS)` refits plots drawn while their tab was hidden.
RESIZE_ON_SHOW_JS = "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 60); }"


def _layout(fig: go.Figure, height: int, titled: bool = False, **kw) -> go.Figure:
    """Common layout; `titled` figures (subplot titles) put the legend above the titles."""
    fig.update_layout(
        height=height,
        autosize=True,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        margin=dict(l=60, r=20, t=LEGEND_TOP_MARGIN if titled else 50, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=TITLED_LEGEND_Y if titled else 1.02, x=0),
        **kw,
    )
    return fig


def run_label(run: dict) -> str:
    if run.get("method") == "full":
        return "full model"
    v, a = run.get("retention", [None, None])
    return f"{run.get('method')} (R v={v:g}, a={a:g})" if v is not None else str(run.get("method"))


def unit_for(values, scales, base_unit: str) -> tuple[float, str]:
    """(divisor, unit name) that shows the largest of `values` as a number >= 1 (e.g. 2.07e8 -> MFLOPs)."""
    top = max((abs(float(v)) for v in values), default=0.0)
    for scale, name in scales:
        if top >= scale:
            return scale, name
    return 1.0, base_unit


def empty(message: str, height: int = FLOW_HEIGHT) -> go.Figure:
    """A blank figure carrying a message (no data yet, analysis unavailable, ...)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height)


def mark_stages(
    fig: go.Figure,
    run: dict | None,
    *,
    axis: str = "x",
    offset: float = 0.5,
    labels: bool = True,
    label_at: str | None = None,
    row: int | None = None,
    col: int | None = None,
) -> None:
    """Lines at each planned drop of `run` (view.boundaries): at `after + offset` on the x axis (vertical lines)
    or the y axis (horizontal ones), labelled with the stage's short name where `labels` (above the plot area, or
    at Plotly's `label_at` position, e.g. "top right" inside it, where a subplot title sits above)."""
    shapes, notes = stage_marks(
        fig, run, axis=axis, offset=offset, labels=labels, label_at=label_at, row=row, col=col
    )
    fig.update_layout(
        shapes=list(fig.layout.shapes) + shapes, annotations=list(fig.layout.annotations) + notes
    )


def stage_marks(
    fig: go.Figure,
    run: dict | None,
    *,
    axis: str = "x",
    offset: float = 0.5,
    labels: bool = True,
    label_at: str | None = None,
    row: int | None = None,
    col: int | None = None,
) -> tuple[list[dict], list[dict]]:
    """mark_stages' lines and labels as plain (shapes, annotations) dicts, for one layout update per figure."""
    if not run:
        return [], []
    # Shapes and labels are built as plain dicts and added in one layout update: plotly's add_vline re-scans every
    # subplot per line (~60 ms each), which made one example's figures take a second.
    xref, yref = "x", "y"
    if row is not None:
        sub = fig.get_subplot(row, col)
        xref = sub.xaxis.plotly_name.replace("axis", "")
        yref = sub.yaxis.plotly_name.replace("axis", "")
    shapes, notes = [], []
    for b in V.boundaries(run):
        color = STAGE_COLOR.get(b["kind"], OTHER_DROP_COLOR)
        line = dict(color=color, dash="dot", width=1.5)
        at = b["after"] + offset
        text = STAGE_SHORT.get(b["kind"], b["kind"])
        font = dict(size=10, color=color)
        if axis == "x":
            shapes.append(
                dict(type="line", x0=at, x1=at, xref=xref, y0=0, y1=1, yref=f"{yref} domain", line=line)
            )
            if labels:
                where = label_at or "top"
                inside, low = where != "top", where.startswith("bottom")
                notes.append(
                    dict(text=text, x=at, xref=xref, y=0 if low else 1, yref=f"{yref} domain", showarrow=False,
                         font=font, xanchor="left",  # starts at its line: neighbours never overlap
                         yanchor="bottom" if low or not inside else "top")
                )  # fmt: skip
        else:
            shapes.append(
                dict(type="line", y0=at, y1=at, yref=yref, x0=0, x1=1, xref=f"{xref} domain", line=line)
            )
            if labels:
                notes.append(
                    dict(text=text, y=at, yref=yref, x=1, xref=f"{xref} domain", showarrow=False, font=font,
                         xanchor="left", yanchor="middle")
                )  # fmt: skip
    return shapes, notes


def stage_legend(run: dict | None) -> str:
    """One line naming the boundaries drawn, e.g. 'dotted lines: I = Stage I (...), II = Stage II drop ...'."""
    if not run or not V.boundaries(run):
        return ""
    seen = dict.fromkeys(f"{STAGE_SHORT.get(b['kind'], b['kind'])} = {b['label']}" for b in V.boundaries(run))
    return "dotted lines: " + "; ".join(seen)


def _stage_run(view: dict, keys: list[str]) -> dict:
    return view["runs"]["method" if "method" in keys else keys[-1]]


def token_flow(view: dict) -> go.Figure:
    """Tokens alive per explorer layer (0 = encoder output, 1..L decoder layers) per modality, per run."""
    keys = V.explorable(view)
    if not keys:
        return empty("run a clip to see the token flow")
    L = view["num_layers"]
    fig = go.Figure()
    for key in keys:
        run = view["runs"][key]
        for mod in ("video", "audio"):
            ys = [V.counts_at(view, key, layer)[mod] for layer in range(L + 1)]
            if not any(ys):
                continue
            fig.add_trace(
                go.Scatter(
                    x=list(range(L + 1)),
                    y=ys,
                    mode="lines",
                    # hvh: the step sits half-way between layers, where the boundary lines are
                    line=dict(shape="hvh", dash=RUN_STYLE[key], color=MODALITY_COLOR[mod], width=2),
                    name=f"{mod} - {run_label(run)}",
                )
            )
    mark_stages(fig, _stage_run(view, keys))
    fig.update_xaxes(title="layer (0 = encoder output, then decoder layers)", range=[-0.5, L + 0.5])
    fig.update_yaxes(title="tokens processed", rangemode="tozero")
    fig = _layout(fig, FLOW_HEIGHT)
    fig.update_layout(margin=dict(t=FLOW_TOP_MARGIN), legend=dict(y=FLOW_LEGEND_Y))  # legend above the labels
    return fig


def stage_strip(view: dict, key: str, layer: int) -> go.Figure:
    """A thin overview under the layer slider: tokens alive per layer, stage boundaries and the cursor."""
    if key not in V.explorable(view):
        return empty("no run to explore", STRIP_HEIGHT)
    run = view["runs"][key]
    L = view["num_layers"]
    fig = go.Figure()
    for mod in ("video", "audio"):
        ys = [V.counts_at(view, key, x)[mod] for x in range(L + 1)]
        fig.add_trace(
            go.Bar(
                x=list(range(L + 1)),
                y=ys,
                name=f"{mod} tokens",
                marker_color=MODALITY_COLOR[mod],
                opacity=0.8,
                hovertemplate=f"layer %{{x}}: %{{y}} {mod} tokens<extra></extra>",
            )
        )
    mark_stages(fig, run)
    fig.add_vline(x=layer, line=dict(color="#ef4444", width=3))
    fig.update_xaxes(range=[-0.5, L + 0.5], dtick=2, title=dict(text="layer", standoff=4))
    fig.update_yaxes(title="tokens alive", rangemode="tozero")
    fig = _layout(fig, STRIP_HEIGHT, barmode="stack", bargap=0.1)
    fig.update_layout(
        margin=dict(l=60, r=20, t=48, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.18, x=1, xanchor="right"),
    )
    return fig


def speed(view: dict) -> go.Figure:
    """LLM prefill FLOPs, measured time by stage, and KV-cache size, per run (full vs method vs baseline).

    The time panel marks the "ideal" prefill: the full run's LLM prefill time scaled by the FLOP ratio, i.e.
    what the run would take if time fell exactly with FLOPs. Its title says whether times are single runs or
    medians (timing_ms.repeats).
    """
    keys = V.explorable(view)
    if not keys:
        return empty("run a clip to see the speed view", SPEED_HEIGHT)
    runs = [view["runs"][k] for k in keys]
    names = [r["method"] if r["method"] == "full" else f"{r['method']} (pruned)" for r in runs]
    repeats = min(int(r["timing_ms"].get("repeats", 1) or 1) for r in runs)
    timed = "one run each" if repeats <= 1 else f"median of {repeats}"
    flops = [r["flops"]["prefill"] for r in runs]
    kv = [r["kv_cache_bytes"] for r in runs]
    f_scale, f_unit = unit_for(flops, FLOP_UNIT_SCALES, "FLOPs")
    b_scale, b_unit = unit_for(kv, BYTE_UNIT_SCALES, "bytes")
    # one plot per row (never side by side): the titles and bars stay apart on a 390 px phone
    fig = make_subplots(
        rows=3,
        cols=1,
        row_heights=[0.28, 0.44, 0.28],
        vertical_spacing=0.12,
        subplot_titles=("LLM prefill FLOPs", f"time by stage ({timed})", "KV cache"),
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[f / f_scale for f in flops],
            text=[f"{f / f_scale:.3g}" for f in flops],
            customdata=[T.format_flops(f) for f in flops],
            textposition="inside",
            textangle=0,
            marker_color="#22c55e",
            name="prefill FLOPs (analytic)",
            hovertemplate="%{x}: %{customdata}<extra></extra>",
        ),
        1,
        1,
    )
    for key, label, color in STAGE_TIMES:
        fig.add_trace(
            go.Bar(x=names, y=[r["timing_ms"][key] for r in runs], name=label, marker_color=color), 2, 1
        )
    full = view["runs"].get("full")
    if full and "error" not in full:
        base = full["timing_ms"]["llm_prefill"]
        ideal = [
            sum(r["timing_ms"][k] for k in ("vision_encoder", "audio_encoder"))
            + base * r["flops"]["prefill"] / max(r["flops"]["prefill_full"], 1)
            for r in runs
        ]
        fig.add_trace(
            go.Scatter(
                x=names,
                y=ideal,
                mode="markers",
                marker=dict(symbol="line-ew", size=40, line=dict(width=3, color="#ef4444")),
                name="ideal: encoders + full prefill x FLOP ratio",
            ),
            2,
            1,
        )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[b / b_scale for b in kv],
            text=[f"{b / b_scale:.3g}" for b in kv],
            customdata=[T.format_bytes(b) for b in kv],
            textposition="inside",
            textangle=0,
            marker_color="#64748b",
            name="KV cache",
            hovertemplate="%{x}: %{customdata}<extra></extra>",
        ),
        3,
        1,
    )
    # fixed ranges: a phone's autoscale never squeezes a bar out of its panel
    top_ms = max(sum(r["timing_ms"][k] for k, _, _ in STAGE_TIMES) for r in runs)  # the tallest stack
    fig.update_yaxes(title=f_unit, range=[0, 1.1 * max(flops) / f_scale], row=1, col=1)
    fig.update_yaxes(title="ms", range=[0, 1.1 * max(top_ms, 1e-3)], row=2, col=1)
    fig.update_yaxes(title=b_unit, range=[0, 1.1 * max(kv) / b_scale], row=3, col=1)
    fig = _layout(fig, SPEED_HEIGHT, titled=True, barmode="stack")
    fig.update_layout(legend=dict(traceorder="normal"))  # stacked bars reverse the legend by default
    return fig


def _colorbar(fig: go.Figure, xaxis: str, yaxis: str, title: str) -> dict:
    """A colour scale just right of the subplot spanned by `xaxis` / `yaxis` (layout names, e.g. 'xaxis2')."""
    x0, x1 = fig.layout[xaxis].domain
    y0, y1 = fig.layout[yaxis].domain
    return dict(
        x=x1 + COLORBAR_GAP,
        xanchor="left",
        y=(y0 + y1) / 2,
        len=y1 - y0,
        thickness=COLORBAR_PX,
        title=dict(text=title, side="right"),
        tickformat=".0%",
    )


def paper_plan(num_layers: int, family: str = "qwen2_5_omni") -> dict:
    """A run-like {"plan": ...} for SEATS at `family`'s paper defaults on `num_layers` layers (from the family's
    recipe, SeatsConfig and build_plan, so the boundaries follow the config, not fixed numbers)."""
    from seats_core.models.family import recipe_for
    from seats_core.prune.attach import build_plan
    from seats_core.prune.config import SeatsConfig

    cfg = SeatsConfig.make("seats", "R10").resolve(recipe_for(family, num_layers))
    return {"plan": [{"layer": d.layer, "kind": d.kind} for d in build_plan(cfg, num_layers)]}


def knockout_range(knock: dict, metric: str) -> list[float]:
    """A fixed y range for a knockout panel that never stretches noise into a story: KL from 0 to at least
    four times the verdict's floor, log-prob from 0 down to at least -1 nat."""
    from seats_core.run.analysis import KL_FLOOR

    ys = [y for curve in knock.values() for y in (curve.get(metric) or [])]
    if metric == "kl":
        return [0.0, max(4 * KL_FLOOR, 1.1 * max(ys, default=0.0))]
    return [min(-1.0, 1.1 * min(ys, default=0.0)), 0.05]


def dependency(analysis: dict | None, run: dict | None = None) -> go.Figure:
    """Heatmaps (layers x windows) of the question's attention to video and audio, and knockout curves, with the
    stage boundaries of `run` (a view or result run dict with a `plan`; None -> SEATS at the paper's defaults
    for the analysis' depth) marked on all four panels.

    analysis: {num_layers, seconds_per_window, attention{share, video_windows, audio_windows}, knockout{video|
    audio|both: {kl, answer_logprob}}} from seats_core.run.analysis.analyze; None -> a placeholder.
    """
    if not analysis:
        return empty("dependency analysis not run yet", DEPENDENCY_HEIGHT)
    att, knock = analysis.get("attention", {}), analysis.get("knockout", {})
    stages = (
        run
        if run and run.get("plan")
        else paper_plan(int(analysis["num_layers"]), analysis.get("family", "qwen2_5_omni"))
    )
    seconds = analysis.get("seconds_per_window")
    fig = make_subplots(
        rows=4,
        cols=1,
        subplot_titles=(
            "question → video attention",
            "question → audio attention",
            "knockout: KL to the full answer",
            "knockout: answer log-prob",
        ),
        vertical_spacing=0.09,
    )  # one plot per row (never side by side): titles and colour bars stay apart on a 390 px phone
    heat = (("video_windows", "Blues", "xaxis", "yaxis"), ("audio_windows", "Oranges", "xaxis2", "yaxis2"))
    marks = []  # (shapes, annotations) of every panel's stage boundaries, added in one layout update
    for col, (name, scale, xa, ya) in enumerate(heat, start=1):
        z = att.get(name) or []
        if z and z[0]:
            fig.add_trace(
                go.Heatmap(
                    z=z,
                    x=list(range(len(z[0]))),
                    y=list(range(1, len(z) + 1)),
                    colorscale=scale,
                    showscale=True,
                    colorbar=_colorbar(fig, xa, ya, "share of attention"),
                    hovertemplate="layer %{y}, window %{x}: %{z:.1%}<extra></extra>",
                ),
                col,
                1,
            )
        marks.append(stage_marks(fig, stages, axis="y", offset=0.5, labels=False, row=col, col=1))
        window = f"window ({seconds:g} s each)" if seconds else "window"
        fig.update_xaxes(title=window, dtick=1, row=col, col=1)
        fig.update_yaxes(title="decoder layer", range=[0.5, len(z) + 0.5], row=col, col=1)
    colors = {"video": MODALITY_COLOR["video"], "audio": MODALITY_COLOR["audio"], "both": "#ef4444"}
    L = int(analysis["num_layers"])
    for col, (metric, unit) in enumerate((("kl", "KL (nats)"), ("answer_logprob", "log-prob")), start=1):
        for kind, color in colors.items():
            ys = knock.get(kind, {}).get(metric)
            if ys:
                fig.add_trace(
                    go.Scatter(
                        x=list(range(len(ys))),
                        y=ys,
                        mode="lines+markers",
                        name=f"drop {kind}",
                        line=dict(color=color),
                        showlegend=col == 1,
                    ),
                    col + 2,
                    1,
                )
        # labels inside the panel, where the curves are not once fusion is done (KL near 0, log-prob near 0)
        inside = "top right" if metric == "kl" else "bottom right"
        marks.append(stage_marks(fig, stages, axis="x", offset=0.0, label_at=inside, row=col + 2, col=1))
        fig.update_xaxes(
            title="k: tokens removed from decoder layer k+1 on", range=[-0.5, L + 0.5], row=col + 2, col=1
        )
        fig.update_yaxes(title=unit, range=knockout_range(knock, metric), row=col + 2, col=1)
    fig.update_layout(
        shapes=list(fig.layout.shapes) + [x for shapes, _ in marks for x in shapes],
        annotations=list(fig.layout.annotations) + [x for _, notes in marks for x in notes],
    )
    return _layout(fig, DEPENDENCY_HEIGHT, titled=True)


# ---------------------------------------------------------------------------------------------------------------
# The Fusion tab (the run record's `fusion`: seats_core.run.fusion)


def fusion_matrix(fusion: dict | None, layer: int) -> go.Figure:
    """The 3x3 modality matrix at decoder layer `layer` (1-based): row = who attends (text, video, audio), column
    = to whom, each row's attention summing to 100% (a grey row: no token of that group is alive)."""
    if not fusion:
        return empty("no fusion measurement in this run", FUSION_MATRIX_HEIGHT)
    groups = fusion["groups"]
    z = fusion["matrix"][layer - 1]
    text = [["-" if v is None else f"{v:.0%}" if v >= 0.01 else f"{v:.1%}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=[[None if v is None else v for v in row] for row in z],
            x=[f"→ {g}" for g in groups],
            y=groups,
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            text=text,
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="%{y} attends to %{x}: %{z:.2%}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="who attends")
    fig.update_xaxes(side="top")
    fig = _layout(fig, FUSION_MATRIX_HEIGHT, title=dict(text=f"who attends to whom, layer {layer}", y=0.98))
    fig.update_layout(margin=dict(l=60, r=10, t=70, b=10))
    return fig


def fusion_layers(fusion: dict | None, run: dict | None, layer: int) -> go.Figure:
    """The cross-modal cells of the matrix (audio → video, video → audio, text → video, text → audio) by decoder
    layer, with the run's stage marks and the cursor at `layer`; x = decoder layer 1..L (the knockout plot below
    shares it)."""
    if not fusion:
        return empty("no fusion measurement in this run", FUSION_LAYERS_HEIGHT)
    groups = fusion["groups"]
    L = len(fusion["matrix"])
    fig = go.Figure()
    top = 0.0
    for q, k, label, color in CROSS_CELLS:
        ys = [m[groups.index(q)][groups.index(k)] for m in fusion["matrix"]]
        top = max([top] + [y for y in ys if y is not None])
        fig.add_trace(
            go.Scatter(
                x=list(range(1, L + 1)),
                y=ys,
                mode="lines+markers",
                name=label,
                line=dict(color=color, dash="solid" if q != "text" else "dot"),
                marker=dict(size=4),
                hovertemplate=f"layer %{{x}}: {label} %{{y:.2%}}<extra></extra>",
            )
        )
    shapes, notes = stage_marks(fig, run, axis="x", offset=0.5, label_at="top right")
    shapes.append(
        dict(type="line", x0=layer, x1=layer, y0=0, y1=1, yref="y domain", line=dict(color="#ef4444"))
    )
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.update_xaxes(title="decoder layer", range=[0.5, L + 0.5], dtick=2)
    fig.update_yaxes(title="share of attention", range=[0, max(0.05, 1.1 * top)], tickformat=".0%")
    fig = _layout(fig, FUSION_LAYERS_HEIGHT, title=dict(text="cross-modal attention by layer", y=0.98))
    fig.update_layout(margin=dict(l=60, r=20, t=80, b=45), legend=dict(y=1.04))
    return fig


def fusion_knockout(analysis: dict | None, run: dict | None, layer: int) -> go.Figure:
    """The knockout curves on the decoder-layer axis of `fusion_layers`: at x = k + 1, how far the answer moves
    (KL, nats) when every video / audio / clip token is removed from decoder layer k + 1 on; the verdict's
    floor dotted."""
    from seats_core.run.analysis import KL_FLOOR

    if not analysis or not analysis.get("knockout"):
        return empty("knockout: press Run dependency analysis (Dependency tab)", FUSION_LAYERS_HEIGHT)
    knock = analysis["knockout"]
    L = int(analysis["num_layers"])
    fig = go.Figure()
    colors = {"video": MODALITY_COLOR["video"], "audio": MODALITY_COLOR["audio"], "both": "#ef4444"}
    for kind, color in colors.items():
        ys = knock.get(kind, {}).get("kl")
        if ys:
            fig.add_trace(
                go.Scatter(
                    x=[k + 1 for k in range(len(ys) - 1)],
                    y=ys[:-1],
                    mode="lines+markers",
                    name=f"remove {kind}" if kind != "both" else "remove all clip tokens",
                    line=dict(color=color),
                    marker=dict(size=4),
                    hovertemplate="removed from layer %{x} on: KL %{y:.3g} nats<extra></extra>",
                )
            )
    shapes, notes = stage_marks(fig, run, axis="x", offset=0.5, labels=False)
    shapes.append(
        dict(type="line", x0=layer, x1=layer, y0=0, y1=1, yref="y domain", line=dict(color="#ef4444"))
    )
    shapes.append(
        dict(
            type="line",
            x0=0,
            x1=1,
            xref="x domain",
            y0=KL_FLOOR,
            y1=KL_FLOOR,
            line=dict(dash="dot", color="#64748b"),
        )
    )
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.update_xaxes(title="clip tokens removed from this decoder layer on", range=[0.5, L + 0.5], dtick=2)
    fig.update_yaxes(title="KL (nats)", range=knockout_range(knock, "kl"))
    fig = _layout(fig, FUSION_LAYERS_HEIGHT, title=dict(text="knockout: how far the answer moves", y=0.98))
    fig.update_layout(margin=dict(l=60, r=20, t=80, b=45), legend=dict(y=1.04))
    return fig
