"""Request checks: every value a client sends passes here before anything uses it, or the request is refused.

Any client can call any event with any values, whatever the page offers (GRADIO_NOTES: Trust). So a clip path
must lie under SERVER.clip_roots(), a model must be one the deployment allows, numbers must be finite and in range,
choices must be among those offered, texts must be short. A refusal is a gr.Error with one line that says what is
wrong and what to do (in the page's words, not the CLI's), logged as one line with no traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from pathlib import Path
from types import MappingProxyType

import gradio as gr

from app import deploy
from app.server import SERVER
from seats_core.method import PRESETS
from seats_core.prune.attach import build_plan
from seats_core.prune.config import METHODS, SeatsConfig
from seats_core.run.pipeline import MAX_QUESTION_CHARS

log = logging.getLogger("seats_explorer")

ERROR_SECONDS = 8  # a refusal's message closes itself, so messages never pile up

DEFAULT_METHOD = "seats"
DEFAULT_RETENTION = "R10"
NO_BASELINE = "none"
BASELINES = (NO_BASELINE,) + tuple(m for m in METHODS if m not in ("full", "seats"))
DEFAULT_BASELINE = "divprune-om"
DEFAULT_MAX_NEW_TOKENS = 16
MAX_NEW_TOKENS_LIMIT = 128
AUDIO_MODES = ("waveform", "spectrogram")
FUSION_SOURCES = (
    "last",
    "answer",
)  # the Fusion tab's switch: the question's last token, the first answer token
MAX_PIXEL = 1 << 16  # a click's pixel coordinates
MAX_SEED = 2**32 - 1  # seeds of the random baseline (numpy's and torch's generators take these)
MAX_LAYER_SETTING = 4096  # fastv_layer / late_layer / drop_layers entries: far beyond any model's depth
MAX_TEXT_CHARS = 256  # retention and drop_layers text boxes
MAX_PATH_CHARS = 4096

# SeatsConfig fields offered in the advanced panel (method, retention and the bookkeeping `extra` have their own).
ADVANCED_FIELDS = tuple(
    f.name for f in dataclasses.fields(SeatsConfig) if f.name not in ("method", "retention", "extra")
)
ADVANCED_DEFAULTS = MappingProxyType(
    {f.name: f.default for f in dataclasses.fields(SeatsConfig) if f.name in ADVANCED_FIELDS}
)


def refuse(message: str) -> gr.Error:
    """A one-line gr.Error for a refused request, logged as one line (no traceback)."""
    line = " ".join(str(message).split()) or "request refused"
    log.warning("refused: %s", line)
    return gr.Error(line, duration=ERROR_SECONDS, print_exception=False)


# What the core tells a CLI user, said to a browser user (who has no flags to pass).
CLI_MODEL_FLAG = re.compile(r"(?:use |run with |try )?--model (\S+?)(?=[\s,;:)]|$)")
PASS_MAX_SECONDS = re.compile(r"\([^()]*\bmax_seconds=[^()]*\)")
PASS_MAX_SIDE = re.compile(r"\([^()]*\bmax_side=[^()]*\)")
TRIM_ADVICE = (
    "(trim it to at most {s:g} s, e.g. `ffmpeg -i clip.mp4 -t {s:g} trimmed.mp4`, and upload that; or run the "
    "whole clip with the `seats run` command line, whose --max-seconds sets the limit)"
)
DOWNSCALE_ADVICE = "(downscale it, e.g. `ffmpeg -i clip.mp4 -vf scale=-2:720 smaller.mp4`, and upload that)"


def for_the_page(message: str, max_seconds: float | None = None) -> str:
    """A core message in the page's words: "--model mini" (a CLI flag) becomes the Model menu; "pass
    max_seconds=..." (a library argument) becomes how to trim the clip to `max_seconds`, or the CLI."""
    message = CLI_MODEL_FLAG.sub(lambda m: f"pick {m.group(1)} in the Model menu", message)
    if max_seconds is not None:
        message = PASS_MAX_SECONDS.sub(TRIM_ADVICE.format(s=max_seconds), message)
    return PASS_MAX_SIDE.sub(DOWNSCALE_ADVICE, message)


# ---------------------------------------------------------------------------------------------------------------
# Plain values


def number(value, name: str) -> float:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise refuse(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise refuse(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(x):
        raise refuse(f"{name} must be a finite number, got {value!r}")
    return x


def integer(value, name: str, lo: int, hi: int) -> int:
    x = number(value, name)
    if x != int(x) or not lo <= x <= hi:
        raise refuse(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(x)


def clamped(value, name: str, lo: int, hi: int) -> int:
    """A whole number pulled into [lo, hi] (the layer box: 99 on a 28-layer model shows layer 28, no error);
    anything that is not a finite number is refused."""
    x = number(value, name)
    return int(min(max(round(x), lo), hi))


def choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise refuse(f"{name} must be one of {', '.join(choices)}, got {str(value)[:40]!r}")
    return value


def text(value, name: str, limit: int = MAX_TEXT_CHARS) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise refuse(f"{name} must be text")
    if len(value) > limit:
        raise refuse(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value.strip()


def flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise refuse(f"{name} must be true or false, got {str(value)[:40]!r}")
    return value


def pixel(index) -> tuple[int, int]:
    """The (x, y) pixel of a click on a picture (gr.SelectData.index), or a refusal."""
    if not isinstance(index, (list, tuple)) or len(index) != 2:
        raise refuse("click a patch of the frames or a span of the audio strip")
    return integer(index[0], "the x pixel", 0, MAX_PIXEL), integer(index[1], "the y pixel", 0, MAX_PIXEL)


# ---------------------------------------------------------------------------------------------------------------
# A request's parts


def check_clip_path(clip) -> Path:
    """The clip file a request names, only if it lies where uploads and examples are; one message otherwise
    (the same whether or not such a file exists elsewhere)."""
    if clip in (None, ""):
        raise refuse("No clip: upload a video (with sound, ideally) or pick one of the examples.")
    if isinstance(clip, dict):  # FileData-like from a direct call
        clip = clip.get("path")
    if not isinstance(clip, (str, Path)) or len(str(clip)) > MAX_PATH_CHARS:
        raise refuse("the clip must be an uploaded file")
    p = Path(clip).resolve()
    if not any(p.is_relative_to(r) for r in SERVER.clip_roots()) or not p.is_file():
        raise refuse(f"{p.name}: not a clip this app received; upload it again")
    return p


def check_question(question) -> str:
    q = text(question, "the question", MAX_QUESTION_CHARS)
    if not q:
        raise refuse("The question is empty: ask something about the clip.")
    return q


def check_max_new_tokens(value) -> int:
    if value is None:
        return DEFAULT_MAX_NEW_TOKENS
    return integer(value, "max new tokens", 1, MAX_NEW_TOKENS_LIMIT)


def check_model(model) -> str:
    """The model a request may use (deploy.check_model: a shared deployment serves one model only)."""
    if model in (None, ""):
        return SERVER.model
    if not isinstance(model, str):
        raise refuse("the model must be one of the names offered")
    d = SERVER.served()
    if d.shared:
        try:
            return deploy.check_model(d, model)
        except ValueError as e:
            raise refuse(str(e)) from None
    return choice(model, "the model", SERVER.model_choices())


def presets() -> list[str]:
    """Retention presets the page offers (any 'video,audio' pair is accepted too)."""
    return list(PRESETS)


# ---------------------------------------------------------------------------------------------------------------
# Settings


def advanced_kwargs(values: dict | None) -> dict:
    """SeatsConfig keyword arguments from the advanced panel (blank = paper default); refuses bad values."""
    out = {}
    for name, value in (values or {}).items():
        if name not in ADVANCED_FIELDS:
            raise refuse(f"unknown advanced setting {str(name)[:40]!r}")
        if name == "drop_layers":
            parts = [x for x in text(value, name).replace(" ", ",").split(",") if x]
            out[name] = tuple(integer(x, name, 1, MAX_LAYER_SETTING) for x in parts) if parts else None
        elif name == "late_layer":
            out[name] = None if value in (None, "") else integer(value, name, 1, MAX_LAYER_SETTING)
        elif name in ("encoder_scale", "temperature"):  # blank: the model family's paper value
            out[name] = None if value in (None, "") else number(value, name)
        elif name == "fastv_layer":
            out[name] = integer(value, name, 1, MAX_LAYER_SETTING)
        elif name == "seed":
            out[name] = integer(value, name, 0, MAX_SEED)
        elif name in ("use_importance", "use_windows", "prune_kv"):
            out[name] = flag(value, name)
        elif name == "score_layer":
            out[name] = choice(value, name, ("same", "next"))
        else:
            out[name] = number(value, name)
    return out


def method_config(method, retention) -> dict:
    """The SeatsConfig dict of one method at one retention (the /run API's settings)."""
    method = choice(method or DEFAULT_METHOD, "the method", METHODS)
    try:
        return SeatsConfig.make(method, text(retention, "retention") or DEFAULT_RETENTION).to_dict()
    except ValueError as e:
        raise refuse(f"settings: {e}") from None


def make_configs(
    method: str, retention: str, baseline: str, advanced: dict | None = None
) -> dict[str, dict | str]:
    """RUN_KEYS -> SeatsConfig dict, or an error message for a baseline that cannot run at these settings.

    Raises gr.Error for a bad method / retention / advanced setting (the user's main choice)."""
    kw = advanced_kwargs(advanced)
    method = choice(method or DEFAULT_METHOD, "the method", METHODS)
    retention = text(retention, "retention") or DEFAULT_RETENTION
    if baseline not in (None, ""):
        choice(baseline, "the baseline", BASELINES)
    try:
        configs: dict[str, dict | str] = {
            "full": SeatsConfig.make("full", retention, **kw).to_dict(),
            "method": SeatsConfig.make(method, retention, **kw).to_dict(),
        }
    except ValueError as e:
        raise refuse(f"settings: {e}") from None
    if baseline and baseline != NO_BASELINE:
        try:
            configs["baseline"] = SeatsConfig.make(baseline, retention, **kw).to_dict()
        except ValueError as e:
            configs["baseline"] = f"{baseline}: {e}"
    return configs


def check_plans(configs: dict[str, dict | str], model) -> dict[str, dict | str]:
    """Replace configs whose method cannot meet its retention on `model` (a family adapter or its Recipe) by an
    error message (FastV cannot average below its floor, fastv keeps all audio, ...); gr.Error when it is the
    main method."""
    out = dict(configs)
    for key, cfg in configs.items():
        if isinstance(cfg, str):
            continue
        try:
            build_plan(SeatsConfig.from_dict(cfg).resolve(model), model.num_layers)
        except ValueError as e:
            if key == "method":
                raise refuse(f"{cfg['method']}: {e}") from None
            out[key] = f"{cfg['method']}: {e}"
    return out
