"""A model family's SEATS constants, as its authors publish and run them (SEATS_SPEC §0-§3, §9).

Each family adapter owns one `Recipe` for its published model (depth, drop layers, late layer, presets, the
window temperature, lambda and the Stage-I block sizes); `Recipe.for_depth` resolves it for a loaded model of any
depth, and `SeatsConfig.resolve(adapter)` reads every paper value from it. Nothing else writes these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .schedule import ENCODER_SCALE, derive_drop_layers
from .selection import AUDIO_BLOCK_TOKENS, VIDEO_BLOCK_GRIDS


@dataclass(frozen=True)
class Recipe:
    """num_layers: decoder depth these values are for; drop_layers: Stage II, 1-based "after layer d";
    late_layer: first text-only layer (Stage III); derived: drop layers scaled from the published depth;
    presets: name -> layer-averaged (R_video, R_audio); temperature: T of Stage II's window softmax;
    encoder_scale: lambda (Stage I keeps lambda * R); video_block_grids / audio_block_tokens: Stage-I windows."""

    family: str
    num_layers: int
    drop_layers: tuple[int, ...]
    late_layer: int
    presets: dict = field(compare=False)
    temperature: float
    encoder_scale: float = ENCODER_SCALE
    video_block_grids: int = VIDEO_BLOCK_GRIDS
    audio_block_tokens: int = AUDIO_BLOCK_TOKENS
    derived: bool = False

    def for_depth(self, num_layers: int) -> Recipe:
        """This recipe for a decoder of `num_layers` layers (drop layers scaled from the published depth)."""
        drops, late, derived = derive_drop_layers(
            num_layers, self.num_layers, self.drop_layers, self.late_layer
        )
        return replace(self, num_layers=num_layers, drop_layers=drops, late_layer=late, derived=derived)
