"""Generate the explorer's example clips (synthetic scenes with real sound) and precompute their runs.

    python scripts/make_examples.py [--model mini] [--out assets/examples] [--max-new-tokens 16]

Writes <name>.mp4 (each well under 2 MB), <name>.results.json ({"runs": {full, method, baseline}}: Engine.run
dicts), <name>.analysis.json when seats_core.analysis exists, and index.json (see app/examples.py). Rerun it
whenever the model changes (e.g. when a trained miniature lands): the app only uses precomputed results whose
settings match what the user asked for.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.examples import INDEX, file_sha256  # noqa: E402
from seats_core import synth  # noqa: E402
from seats_core.config import SeatsConfig  # noqa: E402
from seats_core.pipeline import Engine  # noqa: E402

SAMPLE_RATE = 16000
FPS = 10
SIZE = (320, 240)  # (w, h)
MAX_BYTES = 2 * 1024 * 1024
METHOD, RETENTION, BASELINE = "seats", "R10", "divprune-om"
CLICK_S = 0.03  # length of one impact sound
BALL_COLOR = (240, 120, 40)
FLOOR_COLOR = (150, 150, 160)
BAR_COLOR = (60, 180, 220)


def click(seconds: float = CLICK_S, seed: int = 0, amp: float = 0.6) -> np.ndarray:
    """A short exponentially decaying noise burst (a knock), (n,) float32."""
    n = round(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    decay = np.exp(-np.arange(n) / (n / 5))
    return (amp * rng.uniform(-1, 1, n) * decay).astype(np.float32)


def chirp(f0: float, f1: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    """A sine gliding linearly from f0 to f1 Hz, (n,) float32."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (amp * np.sin(phase)).astype(np.float32)


def bouncing_ball(seconds: float = 8.0, bounces: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A ball bouncing on a floor `bounces` times, with a knock at each impact."""
    w, h = SIZE
    n = round(seconds * FPS)
    floor_y, radius = h - 30, 16
    period = seconds / bounces
    frames = np.empty((n, h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    audio = np.zeros(round(seconds * SAMPLE_RATE), np.float32)
    for k in range(bounces):
        s = round(((k + 0.5) * period) * SAMPLE_RATE)
        knock = click(seed=k)
        audio[s : s + len(knock)] += knock[: len(audio) - s]
    for i in range(n):
        t = i / FPS
        phase = ((t / period) + 0.5) % 1.0  # 0.5 = impact
        height = 1 - (2 * phase - 1) ** 2  # parabola: 0 at impact, 1 at the top
        cy = floor_y - radius - height * (h - 2 * radius - 60)
        cx = 30 + (w - 60) * t / seconds
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = synth.BACKGROUND
        frame[floor_y:] = FLOOR_COLOR
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = BALL_COLOR
        frames[i] = frame
    return frames, audio


def rising_bar(seconds: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """A bar grows while the pitch glides up, pauses in silence, then shrinks while the pitch glides down."""
    w, h = SIZE
    n = round(seconds * FPS)
    third = seconds / 3
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        t = i / FPS
        level = min(t / third, 1.0) if t < 2 * third else max(0.0, 1 - (t - 2 * third) / third)
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = synth.BACKGROUND
        top = round(h - 20 - level * (h - 40))
        frame[top : h - 20, w // 2 - 30 : w // 2 + 30] = BAR_COLOR
        frames[i] = frame
    gap = np.zeros(round(third * SAMPLE_RATE), np.float32)
    audio = np.concatenate([chirp(300, 900, third), gap, chirp(900, 300, third)])
    return frames, audio


def shapes_and_tones(path: Path) -> None:
    synth.make_demo_clip(path, seconds=10, size=SIZE, fps=FPS, seed=3, sample_rate=SAMPLE_RATE)


EXAMPLES = [
    {
        "name": "shapes_tones",
        "title": "Shapes and tones (10 s)",
        "question": "Which shape is on screen while the highest tone plays?",
        "make": shapes_and_tones,
    },
    {
        "name": "bouncing_ball",
        "title": "Bouncing ball with knocks (8 s)",
        "question": "How many times does the ball hit the floor?",
        "make": lambda p: synth.write_clip(p, *_av(bouncing_ball()), sample_rate=SAMPLE_RATE),
    },
    {
        "name": "rising_bar",
        "title": "Growing bar, gliding pitch (6 s)",
        "question": "Does the pitch go up or down while the bar grows?",
        "make": lambda p: synth.write_clip(p, *_av(rising_bar()), sample_rate=SAMPLE_RATE),
    },
]


def _av(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, float, np.ndarray]:
    frames, audio = pair
    return frames, FPS, audio


def precompute(engine: Engine, clip: Path, question: str, max_new_tokens: int) -> tuple[dict, dict | None]:
    """The three runs the explorer shows by default, and the dependency analysis where available."""
    prep = engine.prepare(str(clip), question)
    configs = {
        "full": SeatsConfig.make("full", RETENTION),
        "method": SeatsConfig.make(METHOD, RETENTION),
        "baseline": SeatsConfig.make(BASELINE, RETENTION),
    }
    runs = {k: engine.run(prep, c, max_new_tokens=max_new_tokens) for k, c in configs.items()}
    for run in runs.values():
        run["clip"]["path"] = clip.name  # relative: the app points it at the shipped file
    try:
        from seats_core import analysis
    except ModuleNotFoundError:
        return runs, None
    result = analysis.analyze(engine, prep)
    result["clip"]["path"] = clip.name
    return runs, result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mini")
    p.add_argument("--out", default=str(ROOT / "assets" / "examples"))
    p.add_argument("--max-new-tokens", type=int, default=16)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engine = Engine(args.model)
    entries = []
    for ex in EXAMPLES:
        clip = out / f"{ex['name']}.mp4"
        ex["make"](clip)
        size = clip.stat().st_size
        if size >= MAX_BYTES:
            raise SystemExit(f"{clip.name} is {size} bytes; examples must stay under {MAX_BYTES}")
        runs, analysis = precompute(engine, clip, ex["question"], args.max_new_tokens)
        results = f"{ex['name']}.results.json"
        (out / results).write_text(json.dumps({"runs": runs}))
        analysis_file = None
        if analysis is not None:
            analysis_file = f"{ex['name']}.analysis.json"
            (out / analysis_file).write_text(json.dumps(analysis))
        entries.append(
            {
                "name": ex["name"],
                "title": ex["title"],
                "clip": clip.name,
                "question": ex["question"],
                "sha256": file_sha256(clip),
                "results": results,
                "analysis": analysis_file,
            }
        )
        print(f"{clip.name}: {size / 1024:.0f} kB; seats answer: {runs['method']['answer']!r}")
    settings = {
        "model": engine.model.name,
        "method": METHOD,
        "retention": RETENTION,
        "baseline": BASELINE,
        "max_new_tokens": args.max_new_tokens,
    }
    (out / INDEX).write_text(json.dumps({"settings": settings, "examples": entries}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
