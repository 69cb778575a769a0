"""Gradio components the explorer adapts. Kept in a module of their own: Gradio writes a typing stub (widgets.pyi,
git-ignored; silently skipped where the folder is read-only) beside a module that subclasses a component."""

from __future__ import annotations

import gradio as gr

from . import checks


class LayerSlider(gr.Slider):
    """The layer slider: a typed value beyond the run's layers is pulled into range instead of Gradio's range error,
    which would blank every panel of the event with a red Error label. A subclass, not a patched instance: Gradio
    rebuilds a component from its class when an event updates its props (the maximum follows each run's depth)."""

    is_template = True  # Gradio draws it with the stock slider's front end (as its own gr.TextArea etc.)

    def preprocess(self, payload):
        # any finite number passes; the events clamp it to the run's own depth and set the box to it
        return checks.clamped(payload, "the layer", 0, checks.MAX_LAYER_SETTING)
