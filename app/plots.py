"""Plotly figures from the explorer's view data (app.view) and the dependency analysis dict.

Every figure has a fixed height and transparent backgrounds (they sit on light and dark themes alike).
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import view as V

RUN_STYLE = {"full": "dot", "method": "solid", "baseline": "dash"}
MODALITY_COLOR = {"video": "#3b82f6", "audio": "#f59e0b", "text": "#94a3b8"}
STAGE_COLOR = {"stage1": "#22c55e", "stage2": "#a855f7", "stage3": "#ef4444"}
OTHER_DROP_COLOR = "#64748b"
STAGE_TIMES = (  # (timing_ms key, label, colour): the stages of one answer, in order
    ("vision_encoder", "vision encoder", "#60a5fa"),
    ("audio_encoder", "audio encoder", "#fbbf24"),
    ("selection", "token selection", "#a855f7"),
    ("llm_prefill", "LLM prefill", "#22c55e"),
    ("decode", "decode", "#94a3b8"),
)
FLOW_HEIGHT = 380
STRIP_HEIGHT = 170
SPEED_HEIGHT = 440
DEPENDENCY_HEIGHT = 680
LEGEND_TOP_MARGIN = 110  # px above the plots of figures with subplot titles
TITLED_LEGEND_Y = 1.12  # legend position (paper fraction) above those titles
TERA = 1e12
MEGA = 2**20


def _layout(fig: go.Figure, height: int, titled: bool = False, **kw) -> go.Figure:
    """Common layout; `titled` figures (subplot titles) put the legend above the titles."""
    fig.update_layout(
        height=height,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        margin=dict(l=50, r=20, t=LEGEND_TOP_MARGIN if titled else 40, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=TITLED_LEGEND_Y if titled else 1.02, x=0),
        **kw,
    )
    return fig


def run_label(run: dict) -> str:
    if run.get("method") == "full":
        return "full model"
    v, a = run.get("retention", [None, None])
    return f"{run.get('method')} (R v={v:g}, a={a:g})" if v is not None else str(run.get("method"))


def empty(message: str, height: int = FLOW_HEIGHT) -> go.Figure:
    """A blank figure carrying a message (no data yet, analysis unavailable, ...)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height)


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
                    line=dict(shape="hv", dash=RUN_STYLE[key], color=MODALITY_COLOR[mod], width=2),
                    name=f"{mod} - {run_label(run)}",
                )
            )
    _mark_drops(fig, view["runs"][keys[-1] if "method" not in keys else "method"])
    fig.update_xaxes(title="layer (0 = encoder output, then decoder layers)", range=[-0.5, L + 0.5])
    fig.update_yaxes(title="tokens processed", rangemode="tozero")
    return _layout(fig, FLOW_HEIGHT)


def _mark_drops(fig: go.Figure, run: dict) -> None:
    """Vertical lines between layer d and d+1 for each planned drop of `run`."""
    for b in V.boundaries(run):
        fig.add_vline(
            x=b["after"] + 0.5,
            line=dict(color=STAGE_COLOR.get(b["kind"], OTHER_DROP_COLOR), dash="dot", width=1),
            annotation_text=b["kind"],
            annotation_position="top",
            annotation_font_size=10,
        )


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
            go.Bar(x=list(range(L + 1)), y=ys, name=mod, marker_color=MODALITY_COLOR[mod], opacity=0.8)
        )
    _mark_drops(fig, run)
    fig.add_vline(x=layer, line=dict(color="#ef4444", width=3))
    fig.update_xaxes(range=[-0.5, L + 0.5], dtick=2, title=None)
    fig.update_yaxes(title="alive", rangemode="tozero")
    fig = _layout(fig, STRIP_HEIGHT, barmode="stack", bargap=0.1, showlegend=False)
    fig.update_layout(margin=dict(l=50, r=20, t=22, b=24))
    return fig


def speed(view: dict) -> go.Figure:
    """LLM prefill TFLOPs, measured time by stage, and KV-cache size, per run (full vs method vs baseline).

    The time panel marks the "ideal" prefill: the full run's LLM prefill time scaled by the FLOP ratio, i.e.
    what the run would take if time fell exactly with FLOPs.
    """
    keys = V.explorable(view)
    if not keys:
        return empty("run a clip to see the speed view", SPEED_HEIGHT)
    runs = [view["runs"][k] for k in keys]
    names = [r["method"] if r["method"] == "full" else f"{r['method']} (pruned)" for r in runs]
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.25, 0.5, 0.25],
        subplot_titles=("LLM prefill (analytic TFLOPs)", "measured time by stage (ms)", "KV cache (MiB)"),
    )
    fig.add_trace(
        go.Bar(
            x=names, y=[r["flops"]["prefill"] / TERA for r in runs], marker_color="#22c55e", name="TFLOPs"
        ),
        1,
        1,
    )
    for key, label, color in STAGE_TIMES:
        fig.add_trace(
            go.Bar(x=names, y=[r["timing_ms"][key] for r in runs], name=label, marker_color=color), 1, 2
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
            1,
            2,
        )
    fig.add_trace(
        go.Bar(
            x=names, y=[r["kv_cache_bytes"] / MEGA for r in runs], marker_color="#64748b", name="KV cache"
        ),
        1,
        3,
    )
    return _layout(fig, SPEED_HEIGHT, titled=True, barmode="stack")


def dependency(analysis: dict | None) -> go.Figure:
    """Heatmaps (layers x windows) of the question's attention to video and audio, and knockout curves.

    analysis: {num_layers, attention{share, video_windows, audio_windows}, knockout{video|audio|both:
    {kl, answer_logprob}}} from seats_core.analysis.analyze; None -> a placeholder.
    """
    if not analysis:
        return empty("dependency analysis not run yet", DEPENDENCY_HEIGHT)
    att, knock = analysis.get("attention", {}), analysis.get("knockout", {})
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "question -> video attention (layer x window)",
            "question -> audio attention (layer x window)",
            "knockout from layer k: KL to the full answer",
            "knockout from layer k: answer log-prob",
        ),
        vertical_spacing=0.14,
    )
    for col, (name, scale) in enumerate((("video_windows", "Blues"), ("audio_windows", "Oranges")), start=1):
        z = att.get(name) or []
        if z and z[0]:
            fig.add_trace(
                go.Heatmap(
                    z=z,
                    x=list(range(len(z[0]))),
                    y=list(range(1, len(z) + 1)),
                    colorscale=scale,
                    showscale=False,
                    hovertemplate="layer %{y}, window %{x}: %{z:.3g}<extra></extra>",
                ),
                1,
                col,
            )
        fig.update_xaxes(title="window (2 s)", row=1, col=col)
        fig.update_yaxes(title="layer", row=1, col=col)
    colors = {"video": MODALITY_COLOR["video"], "audio": MODALITY_COLOR["audio"], "both": "#ef4444"}
    for col, metric in ((1, "kl"), (2, "answer_logprob")):
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
                    2,
                    col,
                )
        fig.update_xaxes(title="k (drop from layer k on)", row=2, col=col)
    return _layout(fig, DEPENDENCY_HEIGHT, titled=True)
