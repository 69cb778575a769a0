"""SEATS Explorer entry point: `python app.py [--model M] [--port P] [--share]`, `gradio app.py`, or Spaces.

`demo` is built at import (Spaces and `gradio app.py` pick it up); it launches only under __main__. Gradio's
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured (flags win). On Hugging Face Spaces (SPACE_ID set) the real
model is the default and, where the `spaces` package exists (ZeroGPU), the model work runs under spaces.GPU.
"""

from __future__ import annotations

import argparse
import os
import sys

from app import handlers
from app.ui import MAX_FILE_SIZE, build_demo

SPACES_MODEL = "Qwen/Qwen2.5-Omni-7B"
GPU_DURATION_S = 120  # ZeroGPU time slot per model call (three runs of one clip)
ENV_MODEL = "SEATS_MODEL"  # optional override of the default model (e.g. set in a Space's settings)


def on_spaces() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def gpu_decorator():
    """spaces.GPU where the `spaces` package is importable (ZeroGPU), else the identity."""
    try:
        import spaces
    except ImportError:
        return lambda f: f
    return spaces.GPU(duration=GPU_DURATION_S)


def default_model(argv: list[str]) -> str:
    """--model from argv if given, else SEATS_MODEL, else the 7B on Spaces, else the embedded miniature."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", default=None)
    known, _ = parser.parse_known_args(argv)
    return known.model or os.environ.get(ENV_MODEL) or (SPACES_MODEL if on_spaces() else auto_model())


def auto_model() -> str:
    """The real 7B where a GPU and a local copy of it exist (no surprise 20 GB download), else the miniature."""
    import torch

    from seats_core.models.loader import _in_hf_cache

    if torch.cuda.is_available() and _in_hf_cache(SPACES_MODEL):
        return SPACES_MODEL
    return "mini"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None, help="'mini' (default, offline), a hub id or a local folder")
    p.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    p.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME or 127.0.0.1")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    return p.parse_args(argv)


handlers.configure(default_model(sys.argv[1:] if __name__ == "__main__" else []))
if on_spaces():
    handlers.get_engine()  # ZeroGPU wants the model loaded (to cuda) at import time
demo = build_demo(gpu=gpu_decorator())

if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=MAX_FILE_SIZE,
    )
