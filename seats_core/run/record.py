"""RunRecord: one run (clip, question, config) as a typed, versioned record. The CLI writes it (`run --json`),
the evaluation harness stores it (`records.jsonl`), the explorer reads it.

Tokens are columns in original prompt coordinates (one entry per non-text token); `geometry` says how to draw
them, so no reader re-derives it from pixel constants or a model name: a video token (t, row, col) covers the
`block_px` x `block_px` square at (row, col) of the frames the model saw (`frame_size`), in temporal grid t,
which spans `temporal_patch` sampled frames and `seconds_per_grid` seconds; windows of `seconds_per_window`
seconds are the units Stage I and II select within.

The record has no key named `path` anywhere (gradio_client takes such a dict for a file): the clip is named by
its file name only.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

RECORD_VERSION = 1
TOKEN_COLUMNS = (
    "index",  # position in the prompt
    "modality",  # "video" | "audio"
    "window",  # window index (seconds_per_window each)
    "t",  # video: temporal grid; audio: None
    "row",  # video: token row in the frame; audio: None
    "col",  # video: token column; audio: None
    "audio_index",  # audio: token index in the track; video: None
    "start_s",  # seconds covered by the token
    "end_s",
    "survives_to",  # decoder layers that process the token (0 = dropped before the LLM, L = never dropped)
    "importance",  # Stage-I encoder importance, None where not scored
)


class RecordError(ValueError):
    """A record file that cannot be read (wrong version, missing fields): one line saying which."""


@dataclass(frozen=True)
class Geometry:
    """How the token columns map onto the clip (see the module docstring)."""

    grid: tuple[
        int, int, int
    ]  # (temporal grids, token rows, token cols) of the video; (0, 0, 0) without video
    block_px: int  # pixels per token side in the frames the model saw (patch size x spatial merge)
    temporal_patch: int  # sampled frames per temporal grid
    seconds_per_grid: float
    seconds_per_window: float
    frame_size: tuple[int, int]  # (w, h) of the frames the model saw
    audio_tokens_per_second: float = 25.0  # Qwen2.5-Omni 25 (40 ms per token), Qwen3-Omni ~13 (~77 ms)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grid"], d["frame_size"] = list(self.grid), list(self.frame_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        return cls(**{**d, "grid": tuple(d["grid"]), "frame_size": tuple(d["frame_size"])})


@dataclass
class RunRecord:
    """Everything one run produced. `tokens` may be None (the harness stores records without the columns)."""

    answer: str
    model: str
    method: str
    retention: list[float]
    config: dict  # SeatsConfig.to_dict() as resolved for the model
    plan: list[dict]  # planned drops
    num_layers: int
    question: str
    clip: dict  # name, duration_s, frames, frame_size, fps, has_audio, source_size, source_fps, rotation
    media: dict  # MediaConfig.to_dict() the clip was decoded with
    geometry: Geometry
    tokens: dict[str, list] | None  # TOKEN_COLUMNS -> one value per non-text token
    layers: list[dict]  # per decoder layer: text / video / audio tokens processed
    events: list[dict]  # one per drop (and warnings of the pruner)
    relevance: dict[str, list]  # layer -> per-token query relevance (None where not scored)
    retention_measured: dict
    flops: dict  # carried through unchanged from the engine (conventions and all their keys)
    kv_cache_bytes: int
    timing_ms: dict
    timing_spread_ms: dict
    prompt_tokens: int
    new_tokens: int
    peak_memory_bytes: int | None
    device: str
    fast_encoder: bool
    family: str = ""  # model family adapter (e.g. "qwen2_5_omni", "qwen3_omni")
    disclaimer: str | None = None  # e.g. a miniature with random weights: its answers mean nothing
    warnings: list[str] = field(default_factory=list)  # media problems the run went on with
    fusion: dict | None = None  # FusionRecord.to_dict() of this run (Engine.run(fusion=True)), measured apart
    extra: dict = field(default_factory=dict)  # result keys this version does not know, kept as they were
    version: int = RECORD_VERSION

    # -----------------------------------------------------------------------------------------------------------
    # Building

    @classmethod
    def from_result(cls, result: dict, geometry: Geometry, media: dict, warnings=()) -> RunRecord:
        """A record from a result dict with token rows (as stored before Engine.run returned records): token
        rows become columns; the clip loses its path."""
        known = {f.name for f in fields(cls)}
        tokens = result.get("tokens")
        columns = None if tokens is None else {c: [tok[c] for tok in tokens] for c in TOKEN_COLUMNS}
        clip = {k: v for k, v in result["clip"].items() if k != "path"}
        if "path" in result["clip"]:
            clip["name"] = Path(str(result["clip"]["path"])).name
        skip = {"tokens", "clip", "media_config"}
        return cls(
            **{k: v for k, v in result.items() if k in known and k not in skip},
            clip=clip,
            media=dict(media),
            geometry=geometry,
            tokens=columns,
            warnings=list(warnings),
            extra={k: v for k, v in result.items() if k not in known and k not in skip},
        )

    # -----------------------------------------------------------------------------------------------------------
    # Serialisation

    def to_dict(self, tokens: bool = True) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["geometry"] = self.geometry.to_dict()
        if not tokens:
            d["tokens"] = None
        if (
            d["fusion"] is None
        ):  # measured on request only: absent otherwise, so the CLI's keys stay as they were
            del d["fusion"]
        return json.loads(json.dumps(d))  # deep, JSON-clean copy

    @classmethod
    def from_dict(cls, d: dict) -> RunRecord:
        version = d.get("version")
        if version != RECORD_VERSION:
            raise RecordError(f"run record version {version!r} is not {RECORD_VERSION} (rerun to regenerate)")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in d]
        if missing:
            raise RecordError(f"run record lacks {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known and k != "geometry"},
                   geometry=Geometry.from_dict(d["geometry"]))  # fmt: skip

    def to_json(self, tokens: bool = True, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(tokens), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise RecordError(f"not a run record (invalid JSON: {e.msg} at line {e.lineno})") from e

    def save(self, path: str | Path, tokens: bool = True) -> Path:
        path = Path(path)
        path.write_text(self.to_json(tokens))
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        return cls.from_json(Path(path).read_text())


def geometry_of(engine, prep) -> Geometry:
    """The token geometry of a prepared input, from the processor's grid and the family adapter's layout."""
    m = engine.adapter.media_layout
    thw = prep.inputs.get("video_grid_thw")
    grid = (0, 0, 0)
    if thw is not None:
        t, h, w = (int(x) for x in thw.reshape(-1, 3)[0].tolist())  # patches (T, H / patch, W / patch)
        grid = (t, h // m.spatial_merge, w // m.spatial_merge)
    spg = prep.inputs.get("video_second_per_grid")
    seconds_per_grid = float(spg.reshape(-1)[0]) if spg is not None else m.temporal_patch / prep.clip.fps
    frames = prep.clip.frames
    return Geometry(
        grid=grid,
        block_px=m.token_block_px,
        temporal_patch=m.temporal_patch,
        seconds_per_grid=round(seconds_per_grid, 6),
        seconds_per_window=round(m.seconds_per_window(seconds_per_grid), 6),
        frame_size=(int(frames.shape[2]), int(frames.shape[1])),
        audio_tokens_per_second=float(m.audio_tokens_per_second),
    )
