"""Load a thinker + processor: a built-in miniature ("mini", "mini-qwen3") or a real Qwen2.5-Omni / Qwen3-Omni
checkpoint (hub id or local folder), thinker only. The family's adapter names the classes."""

from __future__ import annotations

import importlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

HUB_PROBE_TIMEOUT_S = 3.0
MINI = "mini"
MINI_QWEN3 = "mini-qwen3"
MINIS = (MINI, MINI_QWEN3)
KNOWN_REAL = (
    "Qwen/Qwen2.5-Omni-3B",
    "Qwen/Qwen2.5-Omni-7B",
    "Qwen/Qwen3-Omni-30B-A3B-Instruct",
    "Qwen/Qwen3-Omni-30B-A3B-Thinking",
)
MINI_SYSTEM_PROMPT = "You are a helpful assistant."
# The system prompt Qwen2.5-Omni was trained with (its model card asks for it verbatim).
QWEN_SYSTEM_PROMPT = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory "
    "and visual inputs, as well as generating text and speech."
)


class ModelLoadError(RuntimeError):
    """One line: what could not be loaded, why, and the offline alternative."""


@dataclass
class LoadedModel:
    name: str
    thinker: torch.nn.Module
    processor: object
    system_prompt: str
    is_mini: bool
    disclaimer: str | None = None  # said beside every answer when the answers mean nothing (random weights)
    frame_tokens: tuple[int, int] | None = None  # (min, max) LLM tokens per frame pair; None = the paper's

    @property
    def device(self) -> torch.device:
        return next(self.thinker.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.thinker.parameters()).dtype


@dataclass(frozen=True)
class Builtin:
    """A built-in miniature: how to build it (module and function, imported on demand), its chat system prompt,
    what to say beside its answers, and the frame budget it was made for (tokens per frame pair)."""

    module: str
    system_prompt: str
    frame_tokens: tuple[int, int]
    disclaimer: str | None = None


# The models table of the built-in miniatures. Any other name is a checkpoint (hub id or folder) of a family the
# adapters know, with the paper's frame budget and the Qwen system prompt.
BUILTINS = {
    MINI: Builtin("qwen2_5_omni.mini", MINI_SYSTEM_PROMPT, (9, 16)),  # trained on 112 x 112 frames
    MINI_QWEN3: Builtin(
        "qwen3_omni.mini",
        MINI_SYSTEM_PROMPT,
        (16, 16),  # 128 x 128 frames in 32 px blocks
        "mini-qwen3 has random weights: its answers mean nothing (it exercises the Qwen3-Omni code paths)",
    ),
}


def frame_budget(name: str) -> dict | None:
    """MediaConfig fields of a built-in miniature's frame budget, from its config alone (no weights), or None for
    a checkpoint (load it: `Engine.media`). The explorer decodes an example this way before any model loads."""
    if name not in BUILTINS:
        return None
    from .family import family_of

    config = importlib.import_module(f"{__package__}.{BUILTINS[name].module}").thinker_config()
    return family_of(config).frame_budget(config, BUILTINS[name].frame_tokens)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    name: str = MINI,
    *,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    attn_implementation: str = "sdpa",
) -> LoadedModel:
    """Load `name` ("mini", "mini-qwen3", a hub id like Qwen/Qwen2.5-Omni-7B, or a local folder) -- thinker only."""
    device = device or default_device()
    if name in BUILTINS:
        b = BUILTINS[name]
        thinker, processor = importlib.import_module(f"{__package__}.{b.module}").build_model(
            attn_implementation=attn_implementation
        )
        return LoadedModel(
            name, thinker.to(device), processor, b.system_prompt, True, b.disclaimer, b.frame_tokens
        )
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    local = Path(name).expanduser()
    if not local.exists() and ("/" not in name or name.startswith((".", "/", "~"))):
        raise ModelLoadError(
            f"unknown model {name!r}: not 'mini' / 'mini-qwen3', not an existing local folder, and not a hub id "
            f"like {KNOWN_REAL[1]} or {KNOWN_REAL[2]} (use --model mini for the built-in miniature)"
        )
    family = checkpoint_family(name, local)
    source = str(local) if local.exists() else name
    local_only = local.exists() or _in_hf_cache(name)
    if not local_only and not hub_reachable():
        raise ModelLoadError(
            f"cannot download {name!r}: the Hugging Face hub is unreachable from this machine and the model is not "
            "in the local cache; run with --model mini (the built-in offline miniature) or pass a local folder"
        )
    try:
        import transformers

        processor = getattr(transformers, family.processor_class_name).from_pretrained(
            source, local_files_only=local_only
        )
        thinker = family.thinker_class().from_pretrained(
            source, dtype=dtype, attn_implementation=attn_implementation, local_files_only=local_only
        )
    except Exception as e:  # noqa: BLE001 -- every failure becomes one clear line
        raise ModelLoadError(_explain(name, e)) from e
    return LoadedModel(name, thinker.to(device).eval(), processor, QWEN_SYSTEM_PROMPT, False)


def checkpoint_family(name: str, local: Path | None = None):
    """The family adapter class of a checkpoint, from a local folder's config.json or else the hub id's name."""
    from .family import FAMILIES

    local = local if local is not None else Path(name).expanduser()
    if (local / "config.json").exists():
        model_type = json.loads((local / "config.json").read_text()).get("model_type", "")
        for fam in FAMILIES.values():
            if model_type in fam.model_types or model_type in fam.checkpoint_types:
                return fam
        from .family import family_of

        family_of(type("Config", (), {"model_type": model_type}))  # raises: names the type and version
    lowered = name.lower()
    for fam in FAMILIES.values():
        if any(tag in lowered for tag in fam.name_tags):
            return fam
    return FAMILIES["qwen2_5_omni"]


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Fast check (one TCP connect) so an offline machine fails in seconds, not after minutes of retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, "config.json")
        return isinstance(hit, str)
    except Exception:  # noqa: BLE001 -- a malformed id is simply "not cached"
        return False


def _explain(name: str, e: Exception) -> str:
    text = f"{type(e).__name__}: {e}".lower()
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    if (
        any(s in text for s in ("connection", "resolve", "offline", "timed out", "max retries", "network"))
        or offline
    ):
        return (
            f"cannot download {name!r}: the Hugging Face hub is unreachable from this machine and the model is not "
            "in the local cache; run with --model mini (the built-in offline miniature) or pass a local folder"
        )
    if any(s in text for s in ("not found", "404", "repository", "does not appear", "is not a valid model")):
        return (
            f"unknown model {name!r}: no such Qwen-Omni checkpoint on the hub or on disk (try --model mini)"
        )
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"could not load {name!r} as a Qwen-Omni thinker: {first}"
