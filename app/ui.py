"""The explorer's page layout and event wiring; this file only places components and wires their events.

The events are in events.py (the page) and api.py (the /run endpoint); the request checks in checks.py; the
model work in work.py; the one settings object, SERVER, in server.py.

Model work (the second step of Run, the /run API, the dependency analysis) shares one queue slot
(`concurrency_id=MODEL_QUEUE`, limit 1). Checking a Run request and decoding its clip (once per upload), loading an
example, scrubbing the layer slider and exports run in their own small queues (MEDIA_QUEUE, EXPLORE_QUEUE): none
of them touches the model. Each page holds only a server-issued session id in a gr.State; the decoded clip and
the runs stay on the server (app.state), so no event takes a path, a run or a view from the browser.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from app import about, api, checks, events, examples, plots, present, tour, work
from app.checks import ADVANCED_DEFAULTS
from app.files import WORKSPACE
from app.server import SERVER
from app.widgets import LayerSlider
from seats_core.prune.config import METHODS

MODEL_QUEUE = "model"
MEDIA_QUEUE = "media"  # checking requests, decoding clips, loading examples, exports
MEDIA_CONCURRENCY = 2
EXPLORE_QUEUE = "explore"
EXPLORE_CONCURRENCY = 2  # slider re-renders in parallel (CPU only, no model, no decoding)
QUEUE_MAX_SIZE = 32  # waiting requests beyond this are refused with "queue full"
DELETE_CACHE = (1800, 3600)  # every 30 min, delete uploads/outputs older than 1 h
MAX_FILE_SIZE = "60mb"

# Named outputs of a run, in the order the components are listed in `outputs`.
FUSION_OUTPUTS = events.FUSION_OUTPUTS
RUN_OUTPUTS = (
    "answers", "status", "layer", "run_choice", "frames", "audio", "counts", "strip", "caption", "strip_legend",
    "flow", "flow_legend", "speed", "speed_notes", "dependency", "dependency_notes", "dependency_legend",
    "export_json", "export_html", "tour", "tour_text", "tour_next", *FUSION_OUTPUTS,
)  # fmt: skip
EXPLORE_OUTPUTS = (
    "frames",
    "audio",
    "counts",
    "strip",
    "caption",
    "strip_legend",
    "layer_fix",
    *FUSION_OUTPUTS,
)
TOUR_OUTPUTS = ("tour", "tour_text", "tour_next", "tabs", "layer")
# short: all fit a 390 px phone; each tab's id is its label (the tour opens tabs by id)
TAB_LABELS = ("Layers", "Fusion", "Dependency", "Speed", "Export", "About")  # the token flow is on Layers
NARROW_PX = 640  # below this window width the pictures are laid out for a phone
NARROW_JS = f"() => window.innerWidth < {NARROW_PX}"


ANALYZE_OUTPUTS = ("dependency", "dependency_notes")
EXPORT_OUTPUTS = ("export_json", "export_html")

CARD_CSS = """<style>
.seats-cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}
.seats-card{border:1px solid rgba(128,128,128,.35);border-radius:10px;padding:10px 14px}
.seats-card h4{margin:0}.seats-setting{font-size:.85em;opacity:.75;min-height:1.2em}
.seats-answer{font-size:1.05em;min-height:2.5em;margin:6px 0 8px 0;overflow-wrap:anywhere}
.seats-metric{display:flex;justify-content:space-between;gap:6px;font-size:.92em;opacity:.9}
.seats-metric b{white-space:nowrap}
.seats-error{color:#dc2626}
.seats-verdict{margin:0 0 6px 0;font-size:.95em}.seats-ok{color:#16a34a;font-weight:700}
.seats-bad{color:#dc2626;font-weight:700}.seats-parsed{opacity:.8;margin-left:6px}
.seats-note{font-size:.82em;opacity:.8;margin:6px 0 0 0}.seats-warn{font-size:.82em;color:#b45309;margin:6px 0 0 0}
#layer-caption{font-size:.95em}
/* phones: every tab visible (wrapped, no overflow menu), plot toolbars off, readable captions */
.tab-wrapper .tab-container{flex-wrap:wrap;height:auto!important;overflow:visible!important}
.tab-wrapper .tab-container button{flex:0 0 auto}
.tab-wrapper .overflow-menu{display:none!important}
@media (max-width:640px){
 .js-plotly-plot .modebar-container{display:none!important}
 .tab-wrapper .tab-container button{padding:4px 5px;font-size:.85em}
 #layer-caption,.seats-card{font-size:.95em}
 #audio-overlay img{min-height:110px;object-fit:fill}
 #frame-overlay img,#fusion-frames img{width:100%!important;height:auto!important}
}
#seats-tour{border:2px solid #a855f7;border-radius:10px;padding:8px 12px}
.seats-fusion-note{font-size:.9em}
</style>"""

INTRO = (
    "# SEATS Explorer\n"
    "Ask a question about a clip and watch **stage-adaptive token selection** remove video and audio tokens "
    "before and inside the language model, layer by layer. Pick an example (instant, precomputed) or upload a "
    "short video with sound. See the **About** tab for how it works."
)


def _advanced_widgets() -> dict[str, gr.components.Component]:
    d = ADVANCED_DEFAULTS
    return {
        "encoder_scale": gr.Number(
            d["encoder_scale"], label="encoder_scale (lambda: Stage I keeps lambda*R; blank = paper's, 1.4)"
        ),
        "drop_layers": gr.Textbox(
            "",
            label="drop_layers (Stage II, 1-based 'after layer d'; blank = paper's)",
            placeholder="e.g. 16,18,20",
        ),
        "late_layer": gr.Textbox(
            "", label="late_layer (first text-only layer; blank = paper's)", placeholder="blank = paper's"
        ),
        "temperature": gr.Number(
            d["temperature"],
            label="temperature of the window weights (blank = the family's: Qwen2.5 0.1, Qwen3 0.3)",
        ),
        "score_layer": gr.Radio(["same", "next"], value=d["score_layer"], label="score_layer"),
        "use_importance": gr.Checkbox(d["use_importance"], label="use_importance (Stage I weighting)"),
        "use_windows": gr.Checkbox(d["use_windows"], label="use_windows (per 2 s window)"),
        "prune_kv": gr.Checkbox(d["prune_kv"], label="prune_kv (drop KV entries of dropped tokens)"),
        "fastv_layer": gr.Number(d["fastv_layer"], label="fastv_layer (FastV baselines)", precision=0),
        "visionzip_contextual": gr.Number(d["visionzip_contextual"], label="visionzip_contextual fraction"),
        "seed": gr.Number(d["seed"], label="seed (random baseline)", precision=0),
    }


def _model_info() -> str:
    d = SERVER.served()
    if d.shared:
        return f"This deployment serves {d.model} only (one model for every visitor)."
    return "Switching model reloads it (one model in memory at a time)."


def _examples_label() -> str:
    made_with = examples.index()["settings"].get("model")
    if made_with == SERVER.model:
        return f"Examples (precomputed with {made_with}: load instantly)"
    return (
        f"Examples (precomputed with the miniature `{made_with}`, not with {SERVER.model}: "
        "press Run to answer them with this model)"
    )


def build_demo(gpu: Callable[[Callable], Callable] = lambda f: f) -> gr.Blocks:
    """The explorer page. gpu: decorator for the model work (spaces.GPU on ZeroGPU, identity elsewhere).
    The Model dropdown offers SERVER.model_choices() (deploy.allowed_models of SERVER.served())."""
    compute_runs = gpu(work.run_models)
    compute_analysis = gpu(work.run_analysis)
    compute_token = gpu(work.run_token)
    WORKSPACE.start()  # this process's folder; removes what killed processes left

    with gr.Blocks(title="SEATS Explorer", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=2):
                video = gr.Video(
                    label="Clip (video with sound)", sources=["upload"], include_audio=True, height=260
                )
                question = gr.Textbox(
                    label="Question", lines=2, placeholder="What happens when the tone plays?"
                )
                with gr.Row():
                    model = gr.Dropdown(
                        SERVER.model_choices(),
                        value=SERVER.model,
                        label="Model",
                        info=_model_info(),
                    )
                    method = gr.Dropdown(list(METHODS), value=checks.DEFAULT_METHOD, label="Method")
                with gr.Row():
                    retention = gr.Dropdown(
                        checks.presets(),
                        value=checks.DEFAULT_RETENTION,
                        allow_custom_value=True,
                        label="Retention (preset, or type 'video,audio' e.g. 0.3,0.6)",
                    )
                    baseline = gr.Dropdown(
                        list(checks.BASELINES), value=checks.DEFAULT_BASELINE, label="Baseline to compare"
                    )
                max_new = gr.Slider(
                    1,
                    checks.MAX_NEW_TOKENS_LIMIT,
                    checks.DEFAULT_MAX_NEW_TOKENS,
                    step=1,
                    label="Max new tokens",
                )
                with gr.Accordion("Advanced: every SeatsConfig field", open=False):
                    adv = _advanced_widgets()
                with gr.Row():
                    run_btn = gr.Button("Run", variant="primary")
                    stop_btn = gr.Button("Stop", variant="stop")
                scene_btn = gr.Button("New generated scene (answer known)", size="sm")
                examples_area = gr.Column()  # filled below, once the output components exist
            with gr.Column(scale=3):
                # the tour sits at the top of the results: on screen without scrolling at 1366x900
                with gr.Column(visible=False, elem_id="seats-tour") as tour_box:
                    tour_text = gr.Markdown()
                    with gr.Row():
                        tour_next = gr.Button(tour.NEXT_LABEL, size="sm", elem_id="tour-next")
                        tour_skip = gr.Button(tour.SKIP_LABEL, size="sm", elem_id="tour-skip")
                status = gr.Markdown("Pick an example (instant) or upload a clip, then press **Run**.")
                gr.HTML(CARD_CSS)
                answers = gr.HTML("", label="Answers")
        rows = examples.gallery()
        with gr.Row():
            run_choice = gr.Radio([], label="Run to explore")
            layer = LayerSlider(
                minimum=0,
                maximum=1,
                value=0,
                step=1,
                label="Layer (Layers and Fusion tabs)",
                elem_id="layer-slider",
            )

        tabs = []
        with gr.Tabs(elem_id="seats-tabs") as tab_box:
            with gr.Tab(TAB_LABELS[0], id=TAB_LABELS[0]) as tab:
                tabs.append(tab)
                gr.Markdown(
                    "Slide through the layers (0 = the encoders' output, then decoder layers 1..L). Dimmed patches "
                    "and sound are pruned; outlined ones are still processed, coloured by the score that chose "
                    "them. Vertical lines on the strip mark the stage boundaries."
                )
                audio_mode = gr.Radio(list(checks.AUDIO_MODES), value="waveform", label="Audio view")
                strip = gr.Plot(label="Tokens alive per layer", show_label=False)
                strip_legend = gr.Markdown()
                caption = gr.Markdown(elem_id="layer-caption")
                with gr.Row():
                    with gr.Column(scale=3):
                        gr.Markdown("**Frames**: one thumbnail per temporal grid of the run")
                        frames = gr.Image(
                            show_label=False,
                            type="numpy",
                            interactive=False,
                            elem_id="frame-overlay",
                            buttons=["download", "fullscreen"],
                        )
                    with gr.Column(scale=1):
                        counts = gr.Markdown()
                        inspected = gr.Markdown(
                            "Click a patch or a sound span to see its token.", elem_id="token-inspect"
                        )
                gr.Markdown("**Audio**: one span per audio token")
                audio = gr.Image(
                    show_label=False,
                    type="numpy",
                    interactive=False,
                    elem_id="audio-overlay",
                )
                gr.Markdown(
                    "**Token flow.** How many video and audio tokens each layer processes: the full model (dotted) keeps all of "
                    "them; the pruned run (solid) and the baseline (dashed) drop them at the marked points."
                )
                flow = gr.Plot(show_label=False, elem_classes=["seats-plot"])
                flow_legend = gr.Markdown()
            with gr.Tab(TAB_LABELS[1], id=TAB_LABELS[1]) as tab:
                tabs.append(tab)
                gr.Markdown(
                    "**Who attends to whom.** At the layer of the slider, each patch and sound span is filled by how "
                    "much attention the chosen token gives it (brighter = more); outlined = still processed, dimmed "
                    "= pruned. The matrix says where text, video and audio tokens look on average; the curves show "
                    "the cross-modal shares layer by layer, and below them how far the answer moves when the clip's "
                    "tokens are removed from a layer on (where that curve stays flat, fusion is done).",
                    elem_classes=["seats-fusion-note"],
                )
                fusion_source = gr.Radio(
                    [
                        ("the prompt's last token (what Stage II scores with)", "last"),
                        ("the first answer token", "answer"),
                    ],
                    value="last",
                    label="Colour by the attention of",
                )
                fusion_caption = gr.Markdown(elem_id="fusion-caption")
                with gr.Row():
                    with gr.Column(scale=3, min_width=300):
                        fusion_frames = gr.Image(
                            show_label=False, type="numpy", interactive=False, elem_id="fusion-frames",
                            buttons=["fullscreen"],
                        )  # fmt: skip
                        fusion_audio = gr.Image(
                            show_label=False, type="numpy", interactive=False, elem_id="fusion-audio"
                        )
                    with gr.Column(scale=2, min_width=300):
                        fusion_matrix = gr.Plot(show_label=False, elem_classes=["seats-plot"])
                        fusion_token = gr.Markdown(elem_id="fusion-token")
                fusion_layers = gr.Plot(show_label=False, elem_classes=["seats-plot"])
                fusion_knockout = gr.Plot(show_label=False, elem_classes=["seats-plot"])
            with gr.Tab(TAB_LABELS[2], id=TAB_LABELS[2]) as tab:
                tabs.append(tab)
                analyze_btn = gr.Button("Run dependency analysis")
                dependency_notes = gr.Markdown(present.dependency_markdown(None))
                dependency = gr.Plot(show_label=False, elem_classes=["seats-plot"])
                dependency_legend = gr.Markdown()
            with gr.Tab(TAB_LABELS[3], id=TAB_LABELS[3]) as tab:
                tabs.append(tab)
                speed_notes = gr.Markdown()
                speed = gr.Plot(show_label=False, elem_classes=["seats-plot"])
            with gr.Tab(TAB_LABELS[4], id=TAB_LABELS[4]) as tab:
                tabs.append(tab)
                gr.Markdown(
                    "The run records as JSON (the same record as `python -m seats_core run --json` writes) and a "
                    "self-contained HTML report (opens offline), made when you press the button."
                )
                export_btn = gr.Button("Make the JSON and the HTML report")
                with gr.Row():
                    export_json = gr.File(label="JSON trace")
                    export_html = gr.File(label="HTML report")
            with gr.Tab(TAB_LABELS[5], id=TAB_LABELS[5]) as tab:
                tabs.append(tab)
                gr.HTML(about.STAGE_SVG)
                gr.Markdown(about.ABOUT_MD)

        sid = gr.State({}, delete_callback=SERVER.forget)  # per page, server-side: holds the session id
        api_answer = gr.Textbox(visible=False)
        api_result = gr.JSON(visible=False)
        api_btn = gr.Button(visible=False)

        comps = dict(
            answers=answers, status=status, layer=layer, run_choice=run_choice,
            frames=frames, audio=audio, counts=counts, strip=strip, caption=caption, strip_legend=strip_legend,
            flow=flow, flow_legend=flow_legend, speed=speed, speed_notes=speed_notes, dependency=dependency,
            dependency_notes=dependency_notes, dependency_legend=dependency_legend,
            export_json=export_json, export_html=export_html, tour=tour_box, tour_text=tour_text,
            tour_next=tour_next, tabs=tab_box, layer_fix=layer, fusion_frames=fusion_frames,
            fusion_audio=fusion_audio, fusion_caption=fusion_caption, fusion_matrix=fusion_matrix,
            fusion_layers=fusion_layers, fusion_knockout=fusion_knockout, fusion_token=fusion_token,
        )  # fmt: skip
        run_outputs = [comps[n] for n in RUN_OUTPUTS]
        adv_names = list(adv)

        def on_check(session_id, clip, q, m, meth, ret, base, n_new, *adv_values):
            events.check_run(
                SERVER.session_of(session_id),
                clip,
                q,
                m,
                meth,
                ret,
                base,
                n_new,
                dict(zip(adv_names, adv_values)),
            )

        def on_run(session_id, progress=gr.Progress()):
            out = events.run_pending(SERVER.session_of(session_id), progress=progress, compute=compute_runs)
            return [out[n] for n in RUN_OUTPUTS]

        def on_example(session_id, clip, q):
            out = events.load_example(SERVER.session_of(session_id), clip, q)
            return [out[n] for n in RUN_OUTPUTS]

        def on_explore(session_id, key, lyr, mode, source):
            out = events.explore(SERVER.session_of(session_id), key, lyr, mode, source)
            return [out[n] for n in EXPLORE_OUTPUTS]

        def on_fusion_click(kind):
            def handler(session_id, key, lyr, mode, source, evt: gr.SelectData):
                session = SERVER.session_of(session_id)
                out = events.fusion_inspect(
                    session, key, lyr, mode, source, kind, evt.index, compute=compute_token
                )
                return [out[n] for n in FUSION_OUTPUTS]

            return handler

        def on_narrow(session_id, narrow):
            events.set_narrow(SERVER.session_of(session_id), narrow)

        def on_inspect_frames(session_id, key, lyr, evt: gr.SelectData):
            return events.inspect(SERVER.session_of(session_id), key, lyr, "frames", evt.index)

        def on_inspect_audio(session_id, key, lyr, evt: gr.SelectData):
            return events.inspect(SERVER.session_of(session_id), key, lyr, "audio", evt.index)

        def on_tour(step):
            def handler(session_id):
                out = step(SERVER.session_of(session_id))
                return [out[n] for n in TOUR_OUTPUTS]

            return handler

        def on_analyze(session_id, m, progress=gr.Progress()):
            out = events.analyze(
                SERVER.session_of(session_id), m, progress=progress, compute=compute_analysis
            )
            return [out[n] for n in ANALYZE_OUTPUTS]

        def on_export(session_id):
            out = events.export(SERVER.session_of(session_id))
            return [out[n] for n in EXPORT_OUTPUTS]

        def on_api(clip, q, meth, ret, n_new, progress=gr.Progress()):
            return api.api_run(clip, q, meth, ret, n_new, progress=progress, compute=compute_runs)

        run_inputs = [sid, video, question, model, method, retention, baseline, max_new, *adv.values()]
        checked = run_btn.click(
            on_check, run_inputs, None, concurrency_id=MEDIA_QUEUE, concurrency_limit=MEDIA_CONCURRENCY,
            api_visibility="private", show_progress="minimal",
        )  # fmt: skip
        # always_last: Run pressed again during a run answers the newest checked request once this run is done
        # (the default, "once", would drop it silently and leave the new question above the old answers)
        run_event = checked.success(
            on_run, [sid], run_outputs, concurrency_id=MODEL_QUEUE, concurrency_limit=1,
            api_visibility="private", trigger_mode="always_last", show_progress_on=[answers],
        )  # fmt: skip
        stop_btn.click(None, None, None, cancels=[run_event])
        scene_btn.click(
            events.new_scene_status, None, [video, question, status], concurrency_id=MEDIA_QUEUE,
            concurrency_limit=MEDIA_CONCURRENCY, api_visibility="private",
        )  # fmt: skip
        if rows:
            with examples_area:
                example_set = gr.Examples(
                    rows,
                    [video, question],
                    run_outputs,
                    fn=None,
                    run_on_click=False,
                    cache_examples=False,
                    example_labels=examples.labels(),
                    label=_examples_label(),
                    api_visibility="private",
                )
            # always_last: a click on another example while one is loading runs once the first is done (the
            # default, "once", would drop it and leave the new question above the old example's results)
            example_set.load_input_event.success(
                on_example, [sid, video, question], run_outputs, concurrency_id=MEDIA_QUEUE,
                concurrency_limit=MEDIA_CONCURRENCY, api_visibility="private", trigger_mode="always_last",
            )  # fmt: skip
        explore_in = [sid, run_choice, layer, audio_mode, fusion_source]
        explore_out = [comps[n] for n in EXPLORE_OUTPUTS]
        # .change covers drags, arrow keys and a typed value (a release alone misses the last two)
        for event in (layer.change, layer.release, run_choice.input, audio_mode.input, fusion_source.input):
            event(
                on_explore,
                explore_in,
                explore_out,
                concurrency_id=EXPLORE_QUEUE,
                concurrency_limit=EXPLORE_CONCURRENCY,
                trigger_mode="always_last",
                api_visibility="private",
                show_progress="minimal",
            )
        for picture, handler in ((frames, on_inspect_frames), (audio, on_inspect_audio)):
            picture.select(
                handler, [sid, run_choice, layer], inspected, concurrency_id=EXPLORE_QUEUE,
                concurrency_limit=EXPLORE_CONCURRENCY, api_visibility="private", show_progress="hidden",
            )  # fmt: skip
        for picture, kind in ((fusion_frames, "frames"), (fusion_audio, "audio")):
            picture.select(
                on_fusion_click(kind), explore_in, [comps[n] for n in FUSION_OUTPUTS], concurrency_id=MODEL_QUEUE,
                concurrency_limit=1, api_visibility="private", show_progress="minimal",
            )  # fmt: skip
        narrow = gr.Checkbox(visible=False)
        narrow.change(on_narrow, [sid, narrow], None, api_visibility="private", show_progress="hidden")
        tour_out = [comps[n] for n in TOUR_OUTPUTS]
        for button, step in ((tour_next, events.tour_next), (tour_skip, events.tour_skip)):
            button.click(
                on_tour(step), [sid], tour_out, concurrency_id=EXPLORE_QUEUE,
                concurrency_limit=EXPLORE_CONCURRENCY, api_visibility="private", show_progress="hidden",
            )  # fmt: skip
        for tab in tabs:
            tab.select(None, None, None, js=plots.RESIZE_ON_SHOW_JS)
        analyze_btn.click(
            on_analyze,
            [sid, model],
            [comps[n] for n in ANALYZE_OUTPUTS],
            concurrency_id=MODEL_QUEUE,
            concurrency_limit=1,
            api_visibility="private",
        )
        export_btn.click(
            on_export, [sid], [comps[n] for n in EXPORT_OUTPUTS], concurrency_id=MEDIA_QUEUE,
            concurrency_limit=MEDIA_CONCURRENCY, api_visibility="private",
        )  # fmt: skip
        api_btn.click(
            on_api,
            [video, question, method, retention, max_new],
            [api_answer, api_result],
            api_name="run",
            concurrency_id=MODEL_QUEUE,
            concurrency_limit=1,
        )
        demo.load(
            lambda: plots.empty("no run yet", plots.STRIP_HEIGHT), None, strip, api_visibility="private"
        )
        demo.load(None, None, narrow, js=NARROW_JS, api_visibility="private")
    demo.queue(max_size=QUEUE_MAX_SIZE)
    return demo
