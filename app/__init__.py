"""SEATS Explorer: a Gradio app that shows stage-adaptive token selection at work, layer by layer.

ui.py lays the page out and wires the events; behind it, server.py holds the one settings object (model,
engines, scenes, sessions), checks.py validates every value a client sends, work.py does the model work (decode,
runs, analysis; failures become one line), events.py answers the page's events and api.py the public /run;
state.py is a page's session (decoded clip, run records, view); files.py owns the app's capped temp folder; view.py, plots.py,
render.py and report.py turn run records (seats_core.run.record, the JSON the CLI writes) into figures, overlay
images and a self-contained HTML report; examples.py finds the example clips and their precomputed records in
assets/examples/.
"""
