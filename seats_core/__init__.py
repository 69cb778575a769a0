"""SEATS (stage-adaptive token selection) for Qwen2.5-Omni and Qwen3-Omni thinkers: attach, generate, inspect the trace."""

from .prune.attach import Drop, Pruner, build_plan
from .prune.config import METHODS, SeatsConfig
from .prune.trace import PruneTrace

__all__ = ["METHODS", "Drop", "PruneTrace", "Pruner", "SeatsConfig", "build_plan"]
