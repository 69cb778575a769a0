"""SEATS Explorer: a Gradio app that shows stage-adaptive token selection at work, layer by layer.

ui.py lays the page out; handlers.py holds the plain functions behind it; plots.py, render.py and report.py turn a
run's result dict (the JSON the CLI writes) into figures, overlay images and a self-contained HTML report;
examples.py finds the example clips and their precomputed results in assets/examples/.
"""
