"""The family registry: one adapter per model family, chosen from the loaded thinker's config `model_type`.

A third family is one folder beside qwen2_5_omni/ and qwen3_omni/ (adapter.py: a `FamilyAdapter` subclass
overriding what differs, with its paper `Recipe`; shapes.py; tooling.py with `TOOLING`; optionally a miniature) plus
one line in FAMILIES.
"""

from __future__ import annotations

import importlib

import torch
import transformers

from ..method import Recipe
from .base import KW_CACHE, KW_HIDDEN, KW_MASK, KW_POS, KW_ROPE, FamilyAdapter, UnsupportedModel, apply_rope
from .qwen2_5_omni.adapter import Qwen25OmniAdapter
from .qwen3_omni.adapter import Qwen3OmniAdapter

FAMILIES: dict[str, type[FamilyAdapter]] = {
    "qwen2_5_omni": Qwen25OmniAdapter,
    "qwen3_omni": Qwen3OmniAdapter,
}
TRANSFORMERS_VERSION = transformers.__version__
_BY_MODEL_TYPE = {mt: cls for cls in FAMILIES.values() for mt in cls.model_types}


def family_of(config) -> type[FamilyAdapter]:
    """The adapter class for a thinker config (by `model_type`); unknown types raise UnsupportedModel."""
    model_type = getattr(config, "model_type", None)
    if model_type not in _BY_MODEL_TYPE:
        known = ", ".join(sorted(_BY_MODEL_TYPE))
        raise UnsupportedModel(
            f"unsupported model family {model_type!r} (transformers {transformers.__version__}); seats_core has "
            f"adapters for {known}: load the thinker of a Qwen2.5-Omni or Qwen3-Omni checkpoint"
        )
    return _BY_MODEL_TYPE[model_type]


def recipe_for(family: str, num_layers: int) -> Recipe:
    """A family's paper recipe at a depth, for records that name their family (no model loaded)."""
    if family not in FAMILIES:
        raise UnsupportedModel(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[family].paper.for_depth(num_layers)


def tooling_of(config):
    """The benchmark tooling (config reduction rules) of a thinker config's family: the `TOOLING` class of its
    folder's tooling.py (kept apart from the run-time adapter, loaded only by benchmarks)."""
    return importlib.import_module(f"{__package__}.{family_of(config).family}.tooling").TOOLING


def get_adapter(thinker: torch.nn.Module) -> FamilyAdapter:
    """The family adapter viewing one loaded thinker."""
    return family_of(getattr(thinker, "config", None))(thinker)


__all__ = [
    "FAMILIES",
    "KW_CACHE",
    "KW_HIDDEN",
    "KW_MASK",
    "KW_POS",
    "KW_ROPE",
    "FamilyAdapter",
    "Qwen25OmniAdapter",
    "Qwen3OmniAdapter",
    "TRANSFORMERS_VERSION",
    "UnsupportedModel",
    "apply_rope",
    "family_of",
    "get_adapter",
    "recipe_for",
    "tooling_of",
]
