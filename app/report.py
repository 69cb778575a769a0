"""A self-contained HTML report of one explorer run: answers, numbers, figures and frame overlays in one file.

Plotly's JavaScript is inlined once (the file opens offline); overlay images are PNG data URIs.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from app import plots
from app import text as T
from app import view as V
from seats_core.run.analysis import verdict

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#1e293b}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #cbd5e1;padding:.35em .7em;text-align:left}
th{background:#f1f5f9}pre{background:#f8fafc;padding:.8em;overflow:auto;font-size:12px}
figure{margin:1em 0}figcaption{color:#475569;font-size:14px}img{max-width:100%}
.note{color:#475569}
"""


def png_data_uri(image: np.ndarray) -> str:
    """(H, W, 3) uint8 -> data:image/png;base64,..."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(x, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _timing(run: dict) -> str:
    n = int(run.get("timing_ms", {}).get("repeats") or 1)
    return f"median of {n} after a warm-up" if n > 1 else "single run"


def answers_table(view: dict) -> str:
    rows = []
    for key in V.RUN_KEYS:
        run = view["runs"].get(key)
        if run is None:
            continue
        if "error" in run:
            rows.append(
                f"<tr><td>{html.escape(key)}</td><td colspan=8>error: {html.escape(run['error'])}</td></tr>"
            )
            continue
        t, f, r = run["timing_ms"], run["flops"], run["retention_measured"]
        rows.append(
            "<tr>"
            f"<td>{html.escape(plots.run_label(run))}</td><td>{html.escape(run['answer'])}</td>"
            f"<td>{_fmt(r['overall'], '.1%')}</td><td>{T.format_flops(f['prefill'])}</td>"
            f"<td>{T.format_flops(f.get('prefill_paper') or 0)}</td>"
            f"<td>{_fmt(t['llm_prefill'], '.1f')} ({html.escape(_timing(run))})</td><td>{_fmt(t['first_token'], '.1f')}</td>"
            f"<td>{_fmt(t['generate_total'], '.1f')}</td><td>{run['kv_cache_bytes'] / plots.MEGA:.3g}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>run</th><th>answer</th><th>tokens kept (layer-avg)</th>"
        "<th>LLM prefill FLOPs (as generate() runs it)</th><th>LLM prefill FLOPs (as the paper counts)</th>"
        "<th>LLM prefill ms (timing)</th><th>first token ms</th><th>generate ms</th><th>KV cache MiB</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _figure(fig: go.Figure, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=True if first else False)


def build(view: dict, analysis: dict | None = None, overlays: list[tuple[str, np.ndarray]] = ()) -> str:
    """The report as one HTML string. overlays: (caption, frame-grid image) pairs to embed."""
    keys = V.explorable(view)
    first_run = view["runs"][keys[0]] if keys else {}
    clip = view.get("clip") or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>SEATS Explorer report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>SEATS Explorer report</h1>",
        f"<p><b>Question:</b> {html.escape(str(view.get('question')))}<br>",
        f"<b>Clip:</b> {html.escape(str(clip.get('name', '')))}, {clip.get('duration_s')} s, "
        f"{clip.get('frames')} sampled frames at {clip.get('frame_size')}, "
        f"{'with' if clip.get('has_audio') else 'without'} audio<br>",
        f"<b>Model:</b> {html.escape(str(view.get('model')))} ({view.get('num_layers')} decoder layers) on "
        f"{html.escape(str(first_run.get('device', '?')))}; results {html.escape(view.get('source', ''))}</p>",
        "<h2>Answers</h2>",
        answers_table(view),
    ]
    for warning in view.get("warnings", []):
        parts.append(f"<p class=note><b>Warning:</b> {html.escape(warning)}</p>")
    for note in view.get("notes", []):
        parts.append(f"<p class=note>{html.escape(note)}</p>")
    parts += ["<h2>Token flow</h2>", _figure(plots.token_flow(view), True)]
    parts += ["<h2>Speed</h2>", _figure(plots.speed(view), False)]
    if first_run:
        flops = first_run["flops"]
        parts.append(f"<p class=note>FLOP convention: {html.escape(flops['convention'])}</p>")
        for name, label in (flops.get("conventions") or {}).items():
            parts.append(f"<p class=note><code>{html.escape(name)}</code>: {html.escape(label)}</p>")
        full = view["runs"].get("full")
        for key in keys:
            if full and "error" not in full and key != "full":
                note = T.flops_ratio_note(full, view["runs"][key])
                parts.append(
                    f"<p class=note>{html.escape(plots.run_label(view['runs'][key]))}: {html.escape(note)}</p>"
                )
    if overlays:
        parts.append("<h2>Which patches survive</h2>")
        for caption, image in overlays:
            parts.append(
                f"<figure><img src='{png_data_uri(image)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    if analysis:
        parts += ["<h2>Dependency analysis</h2>", _figure(plots.dependency(analysis), False)]
        said = verdict(analysis)  # the one verdict the tour, the Dependency tab and `seats analyze` print
        if said is not None:
            parts.append(f"<p><b>Where fusion completes:</b> {html.escape(said.text)}</p>")
    parts.append("<h2>Configurations</h2>")
    for key in keys:
        cfg = json.dumps(view["runs"][key]["config"], indent=1)
        parts.append(f"<h3>{html.escape(key)}</h3><pre>{html.escape(cfg)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
