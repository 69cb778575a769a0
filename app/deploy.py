"""Which model a deployment serves, and what the page says about it: a Space starts on any hardware.

Rules (`plan`), in order:
- the model asked for is `--model`, else `$SEATS_MODEL`, else Qwen2.5-Omni-7B on Spaces, else the 7B where a GPU
  and a cached copy exist, else the miniature;
- on Spaces without a GPU the 7B is never loaded (it would load in fp32, ~35 GB, and answer in minutes): the
  miniature is served with a banner saying why;
- a hub model that is neither on disk nor in the Hugging Face cache, with the hub unreachable, gives the miniature
  with a banner;
- a model that fails to load at start (`load_or_fallback`) gives the miniature with a banner naming the error.

On Spaces one model serves every visitor (`Deployment.shared`): `allowed_models` is then that model alone, so the
page's Model dropdown cannot evict it for the others. This module imports neither torch nor gradio at import time:
app.py imports it first so that `spaces` (ZeroGPU) is imported before anything initialises CUDA.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

MINI = "mini"  # seats_core.models.loader.MINI (not imported here: that module imports torch)
SPACES_MODEL = "Qwen/Qwen2.5-Omni-7B"
ENV_MODEL = "SEATS_MODEL"  # optional override of the default model (e.g. a Space's settings -> variables)
GPU_DURATION_S = 120  # ZeroGPU time slot per model call (three runs of one clip)
BANNER_ID = "seats-banner"


@dataclass(frozen=True)
class Deployment:
    """model: what this process serves; requested: what was asked for; banner: markdown for the top of the page
    (None when the request is served as asked, off Spaces); shared: one model for every visitor (Spaces)."""

    model: str
    requested: str
    banner: str | None
    shared: bool


def on_spaces(env: Mapping[str, str] = os.environ) -> bool:
    return bool(env.get("SPACE_ID"))


def on_zero_gpu(env: Mapping[str, str] = os.environ) -> bool:
    return str(env.get("SPACES_ZERO_GPU", "")).lower() in ("1", "true", "yes")


def import_spaces(env: Mapping[str, str] = os.environ):
    """The `spaces` module on Spaces where it is installed, else None. Call before torch touches CUDA:
    ZeroGPU refuses to start once CUDA was initialised."""
    if not on_spaces(env):
        return None
    try:
        import spaces
    except ImportError:
        return None
    return spaces


def gpu_decorator(spaces_module=None, duration: int = GPU_DURATION_S) -> Callable[[Callable], Callable]:
    """spaces.GPU(duration=...) where `spaces` was imported (ZeroGPU), else the identity."""
    if spaces_module is None:
        return lambda f: f
    return spaces_module.GPU(duration=duration)


def requested_model(argv: list[str], env: Mapping[str, str] = os.environ) -> str | None:
    """--model from argv, else $SEATS_MODEL, else the 7B on Spaces, else None (let `plan` pick)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", default=None)
    known, _ = parser.parse_known_args(argv)
    return known.model or env.get(ENV_MODEL) or (SPACES_MODEL if on_spaces(env) else None)


def _has_gpu(env: Mapping[str, str]) -> bool:
    if on_zero_gpu(env):
        return True
    import torch

    return torch.cuda.is_available()


def _cached(name: str) -> bool:
    from pathlib import Path

    from seats_core.models.loader import _in_hf_cache

    return Path(name).expanduser().exists() or _in_hf_cache(name)


def _hub_reachable() -> bool:
    from seats_core.models.loader import hub_reachable

    return hub_reachable()


def plan(
    argv: list[str] | None = None,
    env: Mapping[str, str] = os.environ,
    has_gpu: Callable[[], bool] | None = None,
    cached: Callable[[str], bool] = _cached,
    hub_reachable: Callable[[], bool] = _hub_reachable,
) -> Deployment:
    """The model this process serves and the banner that says so (probes are arguments, for tests)."""
    gpu = has_gpu if has_gpu is not None else (lambda: _has_gpu(env))
    spaces = on_spaces(env)
    asked = requested_model(argv or [], env)
    if asked is None:  # local default: the 7B only where a GPU and a cached copy exist (no surprise download)
        asked = SPACES_MODEL if gpu() and cached(SPACES_MODEL) else MINI
    if asked == MINI:
        banner = None
        if spaces:
            banner = mini_banner(f"`{ENV_MODEL}` (or `--model`) asks for the miniature")
        return Deployment(MINI, asked, banner, spaces)
    if spaces and not gpu():
        why = (
            f"this Space has no GPU, and `{asked}` on a CPU would load in fp32 (~35 GB) and answer in minutes; "
            "pick GPU hardware in the Space's settings to serve it"
        )
        return Deployment(MINI, asked, mini_banner(why), spaces)
    if not cached(asked) and not hub_reachable():
        why = f"`{asked}` is not in the local cache and the Hugging Face hub is unreachable"
        return Deployment(MINI, asked, mini_banner(why), spaces)
    return Deployment(asked, asked, None, spaces)


def mini_banner(why: str) -> str:
    return (
        f"**This page serves the miniature model**, not Qwen2.5-Omni: {why}. The miniature has the real "
        "architecture (28 layers) with tiny widths and understands only four-option questions about generated "
        "scenes: use **New generated scene** or the examples."
    )


def load_or_fallback(deployment: Deployment, load: Callable[[str], object]) -> Deployment:
    """Load the deployment's model now (`load(name)`); if that fails, load the miniature instead and say why.

    Never raises for the first model: a Space must start. A failing miniature is a broken install and raises."""
    if deployment.model == MINI:
        load(MINI)
        return deployment
    try:
        load(deployment.model)
    except Exception as e:  # noqa: BLE001 -- any failure (download, memory, CUDA) becomes one banner line
        message = str(getattr(e, "message", None) or e)  # gr.Error's str() is the repr of its message
        line = (message.strip().splitlines() or [type(e).__name__])[0]
        load(MINI)
        why = f"`{deployment.model}` could not be loaded ({line})"
        return replace(deployment, model=MINI, banner=mini_banner(why))
    return deployment


def allowed_models(deployment: Deployment) -> list[str]:
    """Models the page may offer. Shared deployments (Spaces): only the one served, so no visitor can swap the
    shared model; local: it first, then the miniature and the known checkpoints."""
    if deployment.shared:
        return [deployment.model]
    from seats_core.models.loader import KNOWN_REAL

    return list(dict.fromkeys([deployment.model, MINI, *KNOWN_REAL]))


def check_model(deployment: Deployment, name: str | None) -> str:
    """The model a request may use: `name` if allowed (None -> the served one), else ValueError in one line."""
    name = name or deployment.model
    if name not in allowed_models(deployment):
        raise ValueError(
            f"this deployment serves {deployment.model} only (one model for every visitor); "
            "run the explorer locally to compare models"
        )
    return name


def add_banner(demo, markdown: str | None):
    """Put `markdown` at the top of a built gr.Blocks page (elem_id `seats-banner`); returns demo.

    Re-entering the Blocks rebuilds its config on exit; the new component is moved to the front of the page."""
    if not markdown:
        return demo
    import gradio as gr

    with demo:
        gr.Markdown(f"> ⚠️ {markdown}", elem_id=BANNER_ID)
        demo.children.insert(0, demo.children.pop())
    return demo
