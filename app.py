"""SEATS Explorer entry point: `python app.py [--model M] [--port P] [--share]`, `gradio app.py`, or Spaces.

`demo` is built at import (Spaces and `gradio app.py` pick it up); it launches only under __main__. Gradio's
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured (flags win). Which model is served is decided by
app/deploy.py: `--model`, else `$SEATS_MODEL`, else Qwen2.5-Omni-7B on Hugging Face Spaces (SPACE_ID set), else
the 7B where a GPU and a cached copy exist, else the offline miniature. A Space always starts: without a GPU, or
without the hub, or when the 7B fails to load, it serves the miniature with a banner saying so.
"""

from __future__ import annotations

import argparse
import sys

from app import deploy

SPACES = deploy.import_spaces()  # ZeroGPU: `spaces` must be imported before anything initialises CUDA

from app import work  # noqa: E402 -- after `spaces`
from app.server import SERVER  # noqa: E402
from app.ui import MAX_FILE_SIZE, build_demo  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--model",
        default=None,
        help=f"'mini' (offline), a hub id or a local folder (default: ${deploy.ENV_MODEL})",
    )
    p.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    p.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME or 127.0.0.1")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    return p.parse_args(argv)


def _load(name: str) -> None:
    SERVER.configure(name)
    work.get_engine(name)


DEPLOYMENT = deploy.plan(sys.argv[1:] if __name__ == "__main__" else [])
if DEPLOYMENT.shared:  # Spaces: load now (ZeroGPU wants the model on cuda at import), fall back to the mini
    DEPLOYMENT = deploy.load_or_fallback(DEPLOYMENT, _load)
SERVER.configure(DEPLOYMENT.model, DEPLOYMENT)
demo = deploy.add_banner(build_demo(gpu=deploy.gpu_decorator(SPACES)), DEPLOYMENT.banner)

if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=MAX_FILE_SIZE,
    )
