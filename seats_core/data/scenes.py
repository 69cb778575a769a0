"""Seeded audio-visual scenes with multiple-choice questions: the training and evaluation data of the miniature.

A scene is a short clip cut into 1-second slots. Each slot shows one coloured shape (square or circle) moving in
a straight line (left, right, up or down); some slots also carry a pure tone, low or high. Slots are aligned with
the vision encoder's temporal grids (2 fps sampling x temporal patch 2 = one grid per second), so "the shape on
screen when the tone sounds" is always well defined.

Questions have four options in a fixed order per kind and a one-letter answer ("A".."D"). Most need both
modalities (which slot has the tone -> what is on screen then); some need only the audio (counting tones) or only
the video (the colour of the circle). `make_sample(seed)` returns everything as arrays and a dict; the arrays go
through `seats_core.run.media.clip_from_arrays` (the same sampling and resizing path as files) or are written to a real
H.264 + AAC mp4 with `write_sample`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluation.benchmarks.mcq import extract_letter
from ..run.media import Clip, MediaConfig, clip_from_arrays
from .synth import BACKGROUND, render_shapes, tone, write_clip

LETTERS = ("A", "B", "C", "D")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 235), "yellow": (230, 210, 40)}
KINDS = ("square", "circle")
DIRECTIONS = ("left", "right", "up", "down")
DIRECTION_VECTORS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
ORDINALS = ("first", "second", "third")
COUNT_WORDS = ("zero", "one", "two", "three", "four")

SLOT_S = 1.0  # one slot per temporal grid of the vision encoder (2 frames at 2 fps)
DURATIONS_S = (4, 6)  # clip lengths drawn for a scene
FRAME_SIZE = (112, 112)  # (w, h): 4 x 4 LLM tokens per temporal grid
SOURCE_FPS = 10.0  # rendered frame rate (the media path samples it down to 2 fps)
SAMPLE_RATE = 16000
SHAPE_SIDE = 32  # pixels
TRAVEL = 44  # pixels a shape moves during its slot (more than one 28-pixel token)
TONE_SPAN = (0.2, 0.8)  # a tone sounds over this fraction of its slot
LOW_HZ = (260.0, 400.0)  # pitch ranges: two octaves apart so "low" and "high" are unambiguous
HIGH_HZ = (1100.0, 1600.0)
TONE_AMP = 0.3
NOISE_AMP = 0.01  # faint noise floor so silence is not digital zero
MAX_TONES = 4


# kind -> (template, options, modalities needed)
QUESTIONS = {
    "colour_at_high": ("What colour is the shape on screen when the high tone sounds?", tuple(COLOURS), "av"),
    "colour_at_nth": ("What colour is the shape on screen during the {nth} tone?", tuple(COLOURS), "av"),
    "direction_at_low": ("Which way does the shape move when the low tone sounds?", DIRECTIONS, "av"),
    "direction_at_nth": ("Which way does the shape move during the {nth} tone?", DIRECTIONS, "av"),
    "count_tones": ("How many tones are there?", COUNT_WORDS[1:], "a"),
    "count_high": ("How many high tones are there?", COUNT_WORDS[:4], "a"),
    "colour_of_circle": ("What colour is the circle?", tuple(COLOURS), "v"),
    "direction_of_colour": ("Which way does the {colour} shape move?", DIRECTIONS, "v"),
}
# Default mix: most questions need both modalities.
MIX = {
    "colour_at_high": 0.2,
    "colour_at_nth": 0.15,
    "direction_at_low": 0.1,
    "direction_at_nth": 0.15,
    "count_tones": 0.1,
    "count_high": 0.1,
    "colour_of_circle": 0.1,
    "direction_of_colour": 0.1,
}


@dataclass
class Slot:
    colour: str
    kind: str
    direction: str
    start_xy: tuple[float, float]  # shape centre at the slot's start, pixels
    tone: str | None = None  # None, "low" or "high"
    freq: float = 0.0


@dataclass
class Sample:
    """One question about one scene. frames (N, H, W, 3) uint8 at `fps`; audio (M,) float32 at `sample_rate`."""

    seed: int
    kind: str
    question: str  # with the options, as asked
    options: tuple[str, ...]
    answer: str  # "A".."D"
    answer_text: str
    modalities: str  # "av", "a" or "v"
    slots: list[Slot]
    frames: np.ndarray
    audio: np.ndarray
    fps: float = SOURCE_FPS
    sample_rate: int = SAMPLE_RATE
    meta: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return len(self.slots) * SLOT_S

    def clip(self, media: MediaConfig) -> Clip:
        """The clip a model sees, decoded with its `Engine.media()`: the same sampling/resizing/audio path as a
        decoded file."""
        return clip_from_arrays(
            self.frames, self.audio, self.fps, self.sample_rate, media, f"scene-{self.seed}"
        )

    def to_dict(self) -> dict:
        """JSON-ready description (no arrays)."""
        return {
            "seed": self.seed,
            "kind": self.kind,
            "question": self.question,
            "options": list(self.options),
            "answer": self.answer,
            "answer_text": self.answer_text,
            "modalities": self.modalities,
            "seconds": self.seconds,
            "slots": [s.__dict__ for s in self.slots],
        }


# ---------------------------------------------------------------------------------------------------------------
# Scene content


def _random_slot(rng: np.random.Generator, size: tuple[int, int]) -> Slot:
    direction = DIRECTIONS[rng.integers(len(DIRECTIONS))]
    dx, dy = DIRECTION_VECTORS[direction]
    w, h = size
    r = SHAPE_SIDE / 2
    # The whole path stays inside the frame.
    x_lo, x_hi = r + max(0, -dx) * TRAVEL, w - r - max(0, dx) * TRAVEL
    y_lo, y_hi = r + max(0, -dy) * TRAVEL, h - r - max(0, dy) * TRAVEL
    start = (float(rng.uniform(x_lo, x_hi)), float(rng.uniform(y_lo, y_hi)))
    return Slot(
        colour=list(COLOURS)[rng.integers(len(COLOURS))],
        kind=KINDS[rng.integers(len(KINDS))],
        direction=direction,
        start_xy=start,
    )


def _place_tones(rng: np.random.Generator, slots: list[Slot], pitches: list[str]) -> list[int]:
    """Put one tone of each pitch (in order) on distinct random slots, earliest first. Returns the slot indices."""
    where = np.sort(rng.choice(len(slots), size=len(pitches), replace=False)).tolist()
    for i, p in zip(where, pitches):
        lo, hi = LOW_HZ if p == "low" else HIGH_HZ
        slots[i].tone, slots[i].freq = p, float(rng.uniform(lo, hi))
    return where


def _pitches(rng: np.random.Generator, n: int, n_high: int) -> list[str]:
    p = ["high"] * n_high + ["low"] * (n - n_high)
    return [p[i] for i in rng.permutation(n)]


def _build(kind: str, rng: np.random.Generator, n_slots: int, size: tuple[int, int]):
    """Slots satisfying question `kind`, the index of the correct option and template fields."""
    slots = [_random_slot(rng, size) for _ in range(n_slots)]
    max_tones = min(MAX_TONES, n_slots)
    fields = {}
    if kind in ("colour_at_high", "direction_at_low"):
        pitch, other = ("high", "low") if kind == "colour_at_high" else ("low", "high")
        n = int(rng.integers(1, max_tones + 1))
        p = [pitch] + [other] * (n - 1)
        where = _place_tones(rng, slots, [p[i] for i in rng.permutation(n)])
        target = slots[next(i for i in where if slots[i].tone == pitch)]
        answer = int(rng.integers(4))
        if kind == "colour_at_high":
            target.colour = list(COLOURS)[answer]
        else:
            _set_direction(target, DIRECTIONS[answer], size)
    elif kind in ("colour_at_nth", "direction_at_nth"):
        nth = int(rng.integers(len(ORDINALS)))
        n = int(rng.integers(nth + 1, max_tones + 1))
        where = _place_tones(rng, slots, _pitches(rng, n, int(rng.integers(n + 1))))
        target = slots[where[nth]]
        answer = int(rng.integers(4))
        fields["nth"] = ORDINALS[nth]
        if kind == "colour_at_nth":
            target.colour = list(COLOURS)[answer]
        else:
            _set_direction(target, DIRECTIONS[answer], size)
    elif kind == "count_tones":
        answer = int(rng.integers(max_tones))
        n = answer + 1
        _place_tones(rng, slots, _pitches(rng, n, int(rng.integers(n + 1))))
    elif kind == "count_high":
        answer = int(rng.integers(min(4, max_tones)))
        n = int(rng.integers(max(answer, 1), max_tones + 1))
        _place_tones(rng, slots, _pitches(rng, n, answer))
    elif kind == "colour_of_circle":
        for s in slots:
            s.kind = "square"
        target = slots[rng.integers(n_slots)]
        answer = int(rng.integers(4))
        target.kind, target.colour = "circle", list(COLOURS)[answer]
        n = int(rng.integers(0, max_tones + 1))
        _place_tones(rng, slots, _pitches(rng, n, int(rng.integers(n + 1))))
    elif kind == "direction_of_colour":
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        others = [c for c in COLOURS if c != colour]
        for s in slots:
            s.colour = others[rng.integers(len(others))]
        target = slots[rng.integers(n_slots)]
        target.colour = colour
        answer = int(rng.integers(4))
        _set_direction(target, DIRECTIONS[answer], size)
        fields["colour"] = colour
        n = int(rng.integers(0, max_tones + 1))
        _place_tones(rng, slots, _pitches(rng, n, int(rng.integers(n + 1))))
    else:
        raise ValueError(f"unknown question kind {kind!r}; choose one of {', '.join(QUESTIONS)}")
    return slots, answer, fields


def _set_direction(slot: Slot, direction: str, size: tuple[int, int]) -> None:
    """Give `slot` a new direction, moving its start so the path stays inside the frame."""
    slot.direction = direction
    dx, dy = DIRECTION_VECTORS[direction]
    w, h = size
    r = SHAPE_SIDE / 2
    x, y = slot.start_xy
    x = min(max(x, r + max(0, -dx) * TRAVEL), w - r - max(0, dx) * TRAVEL)
    y = min(max(y, r + max(0, -dy) * TRAVEL), h - r - max(0, dy) * TRAVEL)
    slot.start_xy = (float(x), float(y))


# ---------------------------------------------------------------------------------------------------------------
# Rendering


def _shape_dicts(slots: list[Slot]) -> list[dict]:
    """Slots as `synth.render_shapes` shape dicts: one shape per slot, visible for exactly that slot."""
    out = []
    for i, s in enumerate(slots):
        dx, dy = DIRECTION_VECTORS[s.direction]
        x0, y0 = s.start_xy
        out.append(
            {
                "name": f"{s.colour} {s.kind}",
                "kind": s.kind,
                "color": COLOURS[s.colour],
                "size": SHAPE_SIDE,
                "start": i * SLOT_S,
                "end": (i + 1) * SLOT_S,
                "from": (x0, y0),
                "to": (x0 + dx * TRAVEL, y0 + dy * TRAVEL),
            }
        )
    return out


def render(
    slots: list[Slot], rng: np.random.Generator, size=FRAME_SIZE, fps=SOURCE_FPS, sample_rate=SAMPLE_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """Frames (round(seconds*fps), H, W, 3) uint8 and audio (round(seconds*sample_rate),) float32."""
    seconds = len(slots) * SLOT_S
    shapes = _shape_dicts(slots)
    n_frames = round(seconds * fps)
    frames = np.stack([render_shapes(k / fps, size, shapes, BACKGROUND) for k in range(n_frames)])
    audio = (NOISE_AMP * rng.standard_normal(round(seconds * sample_rate))).astype(np.float32)
    for i, s in enumerate(slots):
        if s.tone is None:
            continue
        t0 = (i + TONE_SPAN[0]) * SLOT_S
        wave = tone(s.freq, (TONE_SPAN[1] - TONE_SPAN[0]) * SLOT_S, sample_rate, TONE_AMP)
        k = round(t0 * sample_rate)
        audio[k : k + len(wave)] += wave
    return frames, audio


# ---------------------------------------------------------------------------------------------------------------
# Public API


def make_sample(seed: int, kind: str | None = None, seconds: int | None = None, size=FRAME_SIZE) -> Sample:
    """One scene + question, fully determined by `seed` (kind and length drawn from MIX / DURATIONS_S if None)."""
    rng = np.random.default_rng(seed)
    kinds = list(MIX)
    if kind is None:
        kind = kinds[rng.choice(len(kinds), p=np.asarray([MIX[k] for k in kinds]))]
    if seconds is None:
        seconds = int(DURATIONS_S[rng.integers(len(DURATIONS_S))])
    n_slots = round(seconds / SLOT_S)
    slots, answer, fields = _build(kind, rng, n_slots, size)
    template, options, modalities = QUESTIONS[kind]
    frames, audio = render(slots, rng, size)
    return Sample(
        seed=seed,
        kind=kind,
        question=format_question(template.format(**fields), options),
        options=tuple(options),
        answer=LETTERS[answer],
        answer_text=options[answer],
        modalities=modalities,
        slots=slots,
        frames=frames,
        audio=audio,
        meta={"size": list(size), "template_fields": fields},
    )


def answerable(slots: list[Slot]) -> list[dict]:
    """Every question of QUESTIONS that has exactly one correct option for this scene.

    Each is {kind, question (with options), options, answer (letter), answer_text, modalities}: the scene's other
    questions, used to ask several questions about one clip (training) or to cross-check a generated scene.
    """
    tones = [i for i, s in enumerate(slots) if s.tone is not None]
    out = []

    def add(kind, answer, **fields):
        template, options, modalities = QUESTIONS[kind]
        q = format_question(template.format(**fields), options)
        out.append(
            {
                "kind": kind,
                "question": q,
                "options": list(options),
                "answer": LETTERS[answer],
                "answer_text": options[answer],
                "modalities": modalities,
            }
        )

    for pitch, kind in (("high", "colour_at_high"), ("low", "direction_at_low")):
        at = [i for i in tones if slots[i].tone == pitch]
        if len(at) == 1:
            s = slots[at[0]]
            add(
                kind,
                list(COLOURS).index(s.colour) if kind == "colour_at_high" else DIRECTIONS.index(s.direction),
            )
    for nth, i in enumerate(tones[: len(ORDINALS)]):
        add("colour_at_nth", list(COLOURS).index(slots[i].colour), nth=ORDINALS[nth])
        add("direction_at_nth", DIRECTIONS.index(slots[i].direction), nth=ORDINALS[nth])
    if 1 <= len(tones) <= MAX_TONES:
        add("count_tones", len(tones) - 1)
    n_high = sum(slots[i].tone == "high" for i in tones)
    if tones and n_high < len(COUNT_WORDS) - 1:
        add("count_high", n_high)
    circles = [s for s in slots if s.kind == "circle"]
    if len(circles) == 1:
        add("colour_of_circle", list(COLOURS).index(circles[0].colour))
    for colour in COLOURS:
        with_colour = [s for s in slots if s.colour == colour]
        if len(with_colour) == 1:
            add("direction_of_colour", DIRECTIONS.index(with_colour[0].direction), colour=colour)
    return out


def format_question(question: str, options) -> str:
    """'<question> (A) red (B) green (C) blue (D) yellow' -- the exact text the model is trained on."""
    return question + " " + " ".join(f"({letter}) {opt}" for letter, opt in zip(LETTERS, options))


def make_set(seed: int, n: int, kind: str | None = None) -> list[Sample]:
    """`n` samples whose seeds are derived from `seed` (disjoint ranges for different `seed`s)."""
    return [set_sample(seed, i, kind) for i in range(n)]


def set_sample(seed: int, i: int, kind: str | None = None) -> Sample:
    """The i-th sample of `make_set(seed, ...)`, made alone."""
    base = int(np.random.SeedSequence(seed).generate_state(1)[0]) * 100_000
    return make_sample(base + i, kind)


def write_sample(sample: Sample, path: str | os.PathLike) -> Path:
    """Write a sample's scene as an H.264 + AAC mp4 (the media path decodes it like any user clip)."""
    return write_clip(path, sample.frames, sample.fps, sample.audio, sample.sample_rate)


def parse_answer(text: str) -> str | None:
    """The option letter of a generated answer ('B', '(B) green', 'BD' ...) among A-D, or None: the project's
    one answer parser (`benchmarks.mcq.extract_letter`) with the scenes' four letters."""
    return extract_letter(text, n_letters=len(LETTERS))
