"""Seeded synthetic clips with real pictures and sound, for tests and example generation.

A demo scene is a plain background with a few coloured shapes moving in straight lines, and pure tones of
different pitch at different moments. Everything the scene contains is returned as a small dict, so a test can
check decoded frames and audio against what was rendered (an independent reference, not the decoder itself).

Files are H.264 (yuv420p, even sides, moov atom up front) + AAC in mp4, which Chromium plays.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

VIDEO_CRF = 28  # small files; flat synthetic colours survive this quality comfortably
AUDIO_BIT_RATE = 48_000  # bits/s for mono AAC; pure tones survive with a clean spectral peak
AAC_FRAME = 1024  # samples per AAC frame
BACKGROUND = (32, 32, 40)  # dark blue-grey, far from every shape colour
TONE_RAMP_S = 0.01  # raised-cosine fade in/out so tone edges do not click

# (name, kind, colour); colours are saturated and far apart so a region's mean identifies the shape.
SHAPES = (
    ("red square", "square", (220, 40, 40)),
    ("green circle", "circle", (40, 200, 60)),
    ("yellow square", "square", (230, 210, 40)),
)
TONE_PITCHES_HZ = (330.0, 440.0, 550.0, 660.0, 880.0)


def _video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _add_audio_stream(container: av.container.OutputContainer, sample_rate: int) -> av.audio.AudioStream:
    stream = container.add_stream("aac", rate=sample_rate, layout="mono")
    stream.bit_rate = AUDIO_BIT_RATE
    return stream


def _encode_audio(
    container: av.container.OutputContainer, stream: av.audio.AudioStream, audio: np.ndarray, sample_rate: int
) -> None:
    """Encode `audio` (float32 (N,)) into an AAC stream of an open output container."""
    samples = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)  # (N,)
    pts = 0
    for start in range(0, len(samples), AAC_FRAME):
        chunk = samples[start : start + AAC_FRAME][None, :]  # (1, n) planar mono
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += chunk.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_clip(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> Path:
    """Write frames (T, H, W, 3) uint8 at `fps` and optional mono float32 audio as an H.264/AAC mp4.

    H and W must be even (yuv420p). Both streams are declared before the first packet (the header is written
    then); video and audio are encoded one after the other and the muxer interleaves them.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if t == 0 or h % 2 or w % 2:
        raise ValueError(f"need at least one frame and even sides for yuv420p, got {w}x{h}")
    path = Path(path)
    with av.open(str(path), mode="w", format="mp4", container_options={"movflags": "+faststart"}) as out:
        codec = _video_codec()
        options = {"crf": str(VIDEO_CRF), "preset": "veryfast"} if codec == "libx264" else {"qscale": "6"}
        video = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        sound = _add_audio_stream(out, sample_rate) if audio is not None else None
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            _encode_audio(out, sound, audio, sample_rate)
    return path


def write_audio_only(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = 16000) -> Path:
    """Write mono float32 audio as an AAC-only mp4/m4a (no video stream)."""
    path = Path(path)
    with av.open(str(path), mode="w", format="mp4") as out:
        _encode_audio(out, _add_audio_stream(out, sample_rate), audio, sample_rate)
    return path


def tone(freq: float, seconds: float, sample_rate: int = 16000, amp: float = 0.3) -> np.ndarray:
    """A pure sine of `freq` Hz, (round(seconds*sample_rate),) float32, with short raised-cosine edges."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    wave = amp * np.sin(2 * math.pi * freq * t)
    ramp = min(round(TONE_RAMP_S * sample_rate), n // 2)
    if ramp > 0:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, ramp))
        wave[:ramp] *= edge
        wave[n - ramp :] *= edge[::-1]
    return wave.astype(np.float32)


def shape_box(shape: dict, t: float) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1) of a scene shape at time t (linear motion), or None when it is not visible."""
    if not shape["start"] <= t < shape["end"]:
        return None
    a = (t - shape["start"]) / (shape["end"] - shape["start"])
    (x0, y0), (x1, y1) = shape["from"], shape["to"]
    cx, cy = x0 + a * (x1 - x0), y0 + a * (y1 - y0)
    r = shape["size"] / 2
    return round(cx - r), round(cy - r), round(cx + r), round(cy + r)


def render_shapes(t: float, size: tuple[int, int], shapes: list[dict], background=BACKGROUND) -> np.ndarray:
    """Render one frame (H, W, 3) uint8 of `shapes` (scene dicts, drawn in order) at time t; size is (w, h)."""
    w, h = size
    frame = np.empty((h, w, 3), dtype=np.uint8)
    frame[:] = background
    ys, xs = np.mgrid[0:h, 0:w]  # (H, W) each
    for shape in shapes:
        box = shape_box(shape, t)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        if shape["kind"] == "circle":
            cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
            mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r  # (H, W)
            frame[mask] = shape["color"]
        else:
            frame[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = shape["color"]
    return frame


def demo_scene(
    seconds: float = 10, size: tuple[int, int] = (320, 240), fps: float = 10, seed: int = 0
) -> dict:
    """Describe a demo scene: shapes with straight-line paths and tones, all seeded.

    Shapes enter one after another (each visible for about half the clip); three tones play in separate thirds
    of the clip with silence between them, at distinct pitches.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    side = max(8, round(min(w, h) / 4))
    margin = side / 2 + 2
    shapes = []
    for k, (name, kind, color) in enumerate(SHAPES):
        start = seconds * k / (2 * len(SHAPES))
        end = start + seconds / 2
        ya, yb = rng.uniform(margin, h - margin, size=2)
        start_x, end_x = (margin, w - margin) if k % 2 == 0 else (w - margin, margin)
        shapes.append(
            {
                "name": name,
                "kind": kind,
                "color": color,
                "size": side,
                "start": float(start),
                "end": float(end),
                "from": (float(start_x), float(ya)),
                "to": (float(end_x), float(yb)),
            }
        )
    pitches = rng.choice(TONE_PITCHES_HZ, size=3, replace=False)
    third = seconds / 3
    tones = [
        {"start": float(third * i + 0.1 * third), "end": float(third * i + 0.7 * third), "freq": float(f)}
        for i, f in enumerate(pitches)
    ]
    return {
        "seconds": float(seconds),
        "size": (w, h),
        "fps": float(fps),
        "background": BACKGROUND,
        "shapes": shapes,
        "tones": tones,
    }


def render_scene(scene: dict, sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) uint8 and mono audio (N,) float32 of a scene from `demo_scene`."""
    n_frames = round(scene["seconds"] * scene["fps"])
    frames = np.stack(
        [
            render_shapes(i / scene["fps"], scene["size"], scene["shapes"], scene["background"])
            for i in range(n_frames)
        ]
    )
    audio = np.zeros(round(scene["seconds"] * sample_rate), dtype=np.float32)
    for tn in scene["tones"]:
        s = round(tn["start"] * sample_rate)
        wave = tone(tn["freq"], tn["end"] - tn["start"], sample_rate)
        audio[s : s + len(wave)] += wave[: len(audio) - s]
    return frames, audio


def make_demo_clip(
    path: str | os.PathLike,
    seconds: float = 10,
    size: tuple[int, int] = (320, 240),
    fps: float = 10,
    with_audio: bool = True,
    seed: int = 0,
    sample_rate: int = 16000,
) -> dict:
    """Render and write a demo clip; returns the scene dict (plus "path" and "has_audio")."""
    scene = demo_scene(seconds, size, fps, seed)
    frames, audio = render_scene(scene, sample_rate)
    write_clip(path, frames, fps, audio if with_audio else None, sample_rate)
    return {**scene, "path": str(path), "has_audio": with_audio, "sample_rate": sample_rate}


def make_bad_files(directory: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Write inputs a loader must reject with a clear message; returns name -> path.

    corrupt: random bytes named .mp4; truncated: a real 10 s mp4 cut to 30% of its bytes; empty: 0 bytes;
    text: prose in a .txt; audio_only: AAC-only .m4a; missing: a path that does not exist.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = {
        name: d / fname
        for name, fname in [
            ("corrupt", "corrupt.mp4"),
            ("truncated", "truncated.mp4"),
            ("empty", "empty.mp4"),
            ("text", "notes.txt"),
            ("audio_only", "audio_only.m4a"),
            ("missing", "missing.mp4"),
        ]
    }
    files["corrupt"].write_bytes(rng.integers(0, 256, size=8192, dtype=np.uint8).tobytes())
    full = d / "full_for_truncation.mp4"
    make_demo_clip(full, seconds=10, seed=seed)
    data = full.read_bytes()
    files["truncated"].write_bytes(data[: int(len(data) * 0.3)])
    full.unlink()
    files["empty"].write_bytes(b"")
    files["text"].write_text("This is not a video. It is a short note about token pruning.\n" * 20)
    write_audio_only(files["audio_only"], tone(440.0, 2.0))
    if files["missing"].exists():
        files["missing"].unlink()
    return files
