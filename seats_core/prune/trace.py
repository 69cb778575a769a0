"""PruneTrace: what one prefill kept, in original token coordinates. Visualisation reads this, never the model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .layout import AUDIO, MODALITY_NAMES, TEXT, VIDEO, TokenLayout


@dataclass
class PruneTrace:
    layout: TokenLayout
    num_layers: int
    survives_to: (
        torch.Tensor
    )  # (S,) long: number of decoder layers that process each token (L = never dropped)
    importance: torch.Tensor  # (S,) float: Stage-I encoder importance of non-text tokens, nan elsewhere
    relevance: dict[int, torch.Tensor] = field(
        default_factory=dict
    )  # layer -> (S,) last-token score, nan if absent
    events: list[dict] = field(default_factory=list)  # one per drop: layer, stage, counts before/after, info
    kv_bytes: int = 0  # KV-cache bytes right after prefill
    selection_ms: float = 0.0  # time spent choosing tokens (Stage I + scoring), inside the prefill
    importance_ms: float = 0.0  # time of the Stage-I statistics in the encoders (not in selection_ms)

    @classmethod
    def new(cls, layout: TokenLayout, num_layers: int) -> PruneTrace:
        S = layout.length
        nan = torch.full((S,), float("nan"))
        return cls(layout, num_layers, torch.full((S,), num_layers, dtype=torch.long), nan)

    def layer_counts(self) -> list[dict[str, int]]:
        """For each decoder layer, how many text / video / audio tokens it processes."""
        mod = self.layout.modality
        out = []
        for layer in range(self.num_layers):
            alive = self.survives_to > layer
            out.append({MODALITY_NAMES[m]: int((alive & (mod == m)).sum()) for m in (TEXT, VIDEO, AUDIO)})
        return out

    def tokens_per_layer(self) -> list[int]:
        return [sum(c.values()) for c in self.layer_counts()]

    def retention(self) -> dict[str, float]:
        """Layer-averaged fraction of non-text tokens kept (spec §0), per modality and overall."""
        mod, L = self.layout.modality, self.num_layers
        res = {}
        for name, sel in (("video", mod == VIDEO), ("audio", mod == AUDIO), ("overall", mod != TEXT)):
            n = int(sel.sum())
            res[name] = float(self.survives_to[sel].clamp(max=L).sum()) / (n * L) if n else math.nan
        return res
