"""SEATS Explorer: a Gradio app that shows stage-adaptive token selection at work, layer by layer.

ui.py lays the page out; handlers.py holds the plain functions behind it; state.py keeps each page's session
(decoded clip, run records, view) on the server; files.py owns the app's capped temp folder; view.py, plots.py,
render.py and report.py turn run records (seats_core.record, the JSON the CLI writes) into figures, overlay
images and a self-contained HTML report; examples.py finds the example clips and their precomputed records in
assets/examples/.
"""
