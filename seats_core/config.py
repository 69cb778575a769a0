"""SeatsConfig: every setting of a pruning run, frozen, validated and serialisable (saved beside each result)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .method import PRESETS, ROUNDINGS, default_drop_layers, parse_retention
from .methods import METHOD_NAMES as METHODS  # the methods registry names them

# Where windows come from (SEATS_SPEC §9): "authors" = Stage I in fixed token blocks (2 temporal grids of video,
# 50 audio tokens), Stage II from the runs of the current sequence; "time" = 2-second windows from timestamps
# (the layout's `window`) in both stages. Identical for Stage I at 2 fps on Qwen2.5-Omni.
WINDOW_RULES = ("authors", "time")


@dataclass(frozen=True)
class SeatsConfig:
    """Settings of one run. Paper defaults (SEATS_SPEC.md); depth-dependent fields resolve against the model.

    retention: layer-averaged keep fraction of (video, audio) tokens over all decoder layers (spec §0).
    drop_layers: Stage-II drop points, 1-based "after layer d"; None = paper's (7B: 16/18/20) or depth-scaled.
    late_layer: 1-based first text-only layer (Stage III); None = paper's (7B: 24) or depth-scaled.
    rounding, window_rule: the authors' decisions by default (SEATS_SPEC §9); the alternatives are named here so
    a run that uses them says so in its saved config.
    """

    method: str = "seats"
    retention: tuple[float, float] = PRESETS["R10"]
    encoder_scale: float = 1.4  # lambda, Stage I keeps lambda*R entering the LLM (spec §1)
    drop_layers: tuple[int, ...] | None = None
    late_layer: int | None = None
    temperature: float = 0.1  # T of the window weights (spec §2)
    score_layer: str = "same"  # "same": re-apply the layer that just ran (authors'); "next": next layer's q/k
    use_importance: bool = True  # Stage I: weight diversity by encoder attention (False = plain max-min)
    use_windows: bool = True  # Stage I/II per window, see window_rule (False = global per modality)
    prune_kv: bool = True  # drop the KV entries of dropped tokens in earlier layers too
    fastv_layer: int = 2  # FastV: one drop after this layer (1-based)
    visionzip_contextual: float = 0.05  # VisionZip: fraction of contextual (merged) tokens per window
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
        if not self.encoder_scale >= 1:
            raise ValueError(f"encoder_scale must be >= 1, got {self.encoder_scale}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.visionzip_contextual < 1:
            raise ValueError(f"visionzip_contextual must be in [0, 1), got {self.visionzip_contextual}")

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

    def resolve(self, num_layers: int, presets: dict | None = None, layout=None) -> SeatsConfig:
        """Fill depth-dependent fields for a model with `num_layers` decoder layers.

        presets: the model family's presets; a config made from a preset name takes its values from them.
        layout: the family's (drop_layers, late_layer, derived) for this depth; default: by depth alone.
        """
        drops, late, derived = default_drop_layers(num_layers) if layout is None else layout
        extra = dict(self.extra)
        preset = extra.get("preset")
        if presets is not None and preset in presets and self.method != "full":
            self = replace(self, retention=tuple(presets[preset]))
        if self.drop_layers is None or self.late_layer is None:
            extra["drop_layers_derived_from_depth"] = derived
        return replace(
            self,
            drop_layers=tuple(self.drop_layers) if self.drop_layers is not None else tuple(drops),
            late_layer=self.late_layer if self.late_layer is not None else late,
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
