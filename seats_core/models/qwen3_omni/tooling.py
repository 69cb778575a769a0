"""Qwen3-Omni's benchmark rules: DeepStack keeps its taps when the vision encoder is cut (see models/tooling.py)."""

from __future__ import annotations

from ..tooling import Tooling


class Qwen3Tooling(Tooling):
    family = "qwen3_omni"

    @classmethod
    def reduce_vision(cls, vc, depth: int) -> None:
        """Fewer vision blocks; DeepStack keeps its number of taps, on the last blocks left (>= 1 each)."""
        taps = len(vc.deepstack_visual_indexes)
        vc.depth = max(depth, taps)
        vc.deepstack_visual_indexes = list(range(vc.depth - taps, vc.depth))


TOOLING = Qwen3Tooling
