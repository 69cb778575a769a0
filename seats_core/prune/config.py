"""SeatsConfig: every setting of a pruning run, frozen, validated and serialisable (saved beside each result)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..method import PRESETS, ROUNDINGS, parse_retention
from ..method.omnizip import DISCARD_MAX, DISCARD_MIN, OMNIZIP_CONTEXTUAL_RATIO, OMNIZIP_G
from ..method.schedule import FASTV_DROP_LAYER
from ..method.selection import VISIONZIP_CONTEXTUAL_FRACTION
from .methods import METHOD_NAMES as METHODS  # the methods registry names them

# Where windows come from (SEATS_SPEC §9): "authors" = Stage I in fixed token blocks (2 temporal grids of video,
# 50 audio tokens), Stage II from the runs of the current sequence; "time" = 2-second windows from timestamps
# (the layout's `window`) in both stages. Identical for Stage I at 2 fps on Qwen2.5-Omni.
WINDOW_RULES = ("authors", "time")


@dataclass(frozen=True)
class SeatsConfig:
    """Settings of one run. Paper defaults (SEATS_SPEC.md); a field left None is the model family's paper value,
    filled by `resolve(adapter)` from the adapter's Recipe (the only place those values are written).

    retention: layer-averaged keep fraction of (video, audio) tokens over all decoder layers (spec §0); a preset
    name given to `make` is read again from the family's presets by `resolve`.
    encoder_scale: lambda, Stage I keeps lambda*R entering the LLM (spec §1); None = the family's (1.4).
    drop_layers: Stage-II drop points, 1-based "after layer d"; None = the family's (7B: 16/18/20, 30B: 27/31/35)
    or, at another depth, its depth-scaled fractions.
    late_layer: 1-based first text-only layer (Stage III); None = the family's (7B: 24, 30B: 40) or depth-scaled.
    temperature: T of Stage II's window weights (spec §2, §9); None = the family's (Qwen2.5 0.1, Qwen3 0.3).
    rounding, window_rule: the authors' decisions by default (SEATS_SPEC §9); the alternatives are named here so
    a run that uses them says so in its saved config.
    """

    method: str = "seats"
    retention: tuple[float, float] = PRESETS["R10"]
    encoder_scale: float | None = None
    drop_layers: tuple[int, ...] | None = None
    late_layer: int | None = None
    temperature: float | None = None
    score_layer: str = "same"  # "same": re-apply the layer that just ran (authors'); "next": next layer's q/k
    use_importance: bool = True  # Stage I: weight diversity by encoder attention (False = plain max-min)
    use_windows: bool = True  # Stage I/II per window, see window_rule (False = global per modality)
    prune_kv: bool = True  # drop the KV entries of dropped tokens in earlier layers too
    fastv_layer: int = FASTV_DROP_LAYER  # FastV: one drop after this layer (1-based)
    visionzip_contextual: float = VISIONZIP_CONTEXTUAL_FRACTION  # VisionZip: contextual (merged) share
    omnizip_g: int = OMNIZIP_G  # OmniZip: audio tokens merged into each contextual anchor at most
    omnizip_contextual: float = (
        OMNIZIP_CONTEXTUAL_RATIO  # OmniZip: contextual audio anchors, share of the audio
    )
    omnizip_discard_min: float = DISCARD_MIN  # OmniZip: clamp of a time group's video discard ratio
    omnizip_discard_max: float = DISCARD_MAX
    seed: int = 0  # random baseline
    rounding: str = (
        "half_even"  # token counts: "half_even" (authors', Python round) or "half_up" (floor(x+.5))
    )
    window_rule: str = "authors"  # "authors" (Stage I token blocks, Stage II runs) or "time" (2-s windows)
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method == "full":  # the unpruned model keeps everything, whatever retention was asked
            object.__setattr__(self, "retention", (1.0, 1.0))
        v, a = self.retention
        if not (0 < v <= 1 and 0 < a <= 1):
            raise ValueError(f"retention must be in (0, 1] per modality, got {self.retention}")
        if self.score_layer not in ("same", "next"):
            raise ValueError(f"score_layer must be 'same' or 'next', got {self.score_layer!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}")
        if self.window_rule not in WINDOW_RULES:
            raise ValueError(
                f"window_rule must be one of {', '.join(WINDOW_RULES)}, got {self.window_rule!r}"
            )
        if self.encoder_scale is not None and not self.encoder_scale >= 1:
            raise ValueError(f"encoder_scale must be >= 1, got {self.encoder_scale}")
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.visionzip_contextual < 1:
            raise ValueError(f"visionzip_contextual must be in [0, 1), got {self.visionzip_contextual}")
        if self.omnizip_g < 0:
            raise ValueError(f"omnizip_g must be >= 0, got {self.omnizip_g}")
        if not 0 <= self.omnizip_contextual < 1:
            raise ValueError(f"omnizip_contextual must be in [0, 1), got {self.omnizip_contextual}")
        if not 0 <= self.omnizip_discard_min <= self.omnizip_discard_max <= 1:
            raise ValueError(
                "need 0 <= omnizip_discard_min <= omnizip_discard_max <= 1, got "
                f"{self.omnizip_discard_min}, {self.omnizip_discard_max}"
            )

    @classmethod
    def make(
        cls,
        method: str = "seats",
        retention: str | tuple[float, float] = "R10",
        presets: dict | None = None,
        **kw,
    ) -> SeatsConfig:
        """Build from CLI-style values: retention as 'R10' or 'V,A' or a pair.

        A preset name is parsed with `presets` (default: Qwen2.5-Omni's) and remembered in extra["preset"], so
        `resolve` reads it again from the family's own presets (Qwen3-Omni's differ) once the model is known.
        """
        pair = (
            parse_retention(retention, presets)
            if isinstance(retention, str)
            else tuple(float(x) for x in retention)
        )
        if isinstance(retention, str) and "," not in retention:  # a preset name: kept in extra["preset"]
            kw["extra"] = {**kw.get("extra", {}), "preset": retention.strip().upper()}
        return cls(method=method, retention=pair, **kw)

    @property
    def resolved(self) -> bool:
        """Whether `resolve` has filled the model-dependent fields."""
        return None not in (self.drop_layers, self.late_layer, self.temperature, self.encoder_scale)

    def resolve(self, model) -> SeatsConfig:
        """Fill every field left None with the paper value of `model`'s family, for its depth.

        model: a family adapter (anything with a `recipe`) or a `Recipe` itself. A config made from a preset
        name takes its retention from the family's presets. The only way a config meets a model.
        """
        recipe = getattr(model, "recipe", model)
        extra = dict(self.extra)
        preset = extra.get("preset")
        if preset in recipe.presets and self.method != "full":
            self = replace(self, retention=tuple(recipe.presets[preset]))
        if self.drop_layers is None or self.late_layer is None:
            extra["drop_layers_derived_from_depth"] = recipe.derived
        extra["family"] = recipe.family
        return replace(
            self,
            drop_layers=tuple(self.drop_layers) if self.drop_layers is not None else recipe.drop_layers,
            late_layer=self.late_layer if self.late_layer is not None else recipe.late_layer,
            temperature=self.temperature if self.temperature is not None else recipe.temperature,
            encoder_scale=self.encoder_scale if self.encoder_scale is not None else recipe.encoder_scale,
            extra=extra,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["retention"] = list(self.retention)
        d["drop_layers"] = list(self.drop_layers) if self.drop_layers is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SeatsConfig:
        d = dict(d)
        d["retention"] = tuple(d["retention"])
        if d.get("drop_layers") is not None:
            d["drop_layers"] = tuple(d["drop_layers"])
        return cls(**d)
