"""Video + audio loading for Qwen2.5-Omni, with the frame sampling and resizing rules of qwen-omni-utils.

A clip becomes: an even number of RGB frames sampled at about `fps` (each pair of frames is one temporal grid of
the vision encoder), resized so both sides are multiples of 28 (one 28x28 block = one LLM token per temporal
grid) within a pixel budget, plus the audio track as 16 kHz mono float32 trimmed to the video's duration.

Every user-facing failure raises `MediaError` with one line naming the file, the problem and what to do.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

# MediaConfig's defaults when no model is involved (qwen-omni-utils' rules: 28 px blocks, 128-144 tokens per frame
# pair). A model's own budget always comes from its adapter (`FamilyAdapter.frame_budget`, via `Engine.media`).
FACTOR = 28  # patch 14 x spatial merge 2: one 28x28 block is one LLM token per temporal grid
MIN_PIXELS = 128 * FACTOR * FACTOR
MAX_PIXELS = 144 * FACTOR * FACTOR
MAX_ASPECT_RATIO = 200  # qwen-omni-utils rejects more extreme shapes
# A container whose decodable video ends this much before its declared duration counts as truncated.
TRUNCATED_MIN_MISSING_S = 0.5
TRUNCATED_MIN_MISSING_FRACTION = 0.1
NON_MEDIA_FORMATS = {"tty"}  # FFmpeg demuxers that "open" plain text as ANSI art video
STILL_IMAGE_FORMATS = {"image2", "apng"}  # plus every FFmpeg "*_pipe" demuxer (png_pipe, jpeg_pipe, ...)
# Largest source side accepted, by the CLI and the app alike (frames are resized to ~128-144 tokens anyway).
MAX_SOURCE_SIDE = 4096
# A source with at least this many frames per sampled frame is decoded with non-reference frames skipped (the
# decoder never reconstructs them) and sampled by time: a 120 fps clip sampled at 2 fps decodes about half its
# frames instead of all of them. Below it, every frame is decoded and frames are picked by index.
SKIP_NONREF_MIN_STRIDE = 16


class MediaError(ValueError):
    """A media file or array cannot be used; the message is one line saying what is wrong and what to do."""


@dataclass(frozen=True)
class MediaConfig:
    """How a clip is sampled, resized and limited (defaults: qwen-omni-utils rules, paper's token budget)."""

    fps: float = 2.0  # target sampling rate, frames per second
    min_frames: int = 4
    max_frames: int = 768
    min_pixels: int = MIN_PIXELS  # per frame
    max_pixels: int = MAX_PIXELS  # per frame
    total_pixels: int | None = None  # optional budget over all frames (qwen-omni-utils' VIDEO_TOTAL_PIXELS)
    sample_rate: int = 16000  # audio, Hz (Whisper feature extractor)
    max_seconds: float = 600.0
    max_side: int = MAX_SOURCE_SIDE  # source resolution limit, pixels
    factor: int = FACTOR
    max_decode_frames: int | None = None  # refuse sources with more frames than this (declared or decoded)
    max_decode_pixels: int | None = None  # refuse sources whose frames x width x height exceed this

    def __post_init__(self):
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.min_frames < 2:
            raise ValueError(f"min_frames must be >= 2 (one temporal grid), got {self.min_frames}")
        if self.max_frames < self.min_frames:
            raise ValueError(f"max_frames ({self.max_frames}) must be >= min_frames ({self.min_frames})")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")
        if self.total_pixels is not None and self.total_pixels <= 0:
            raise ValueError(f"total_pixels must be > 0 or None, got {self.total_pixels}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0, got {self.sample_rate}")
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.max_side < 1:
            raise ValueError(f"max_side must be >= 1, got {self.max_side}")
        for name in ("max_decode_frames", "max_decode_pixels"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ValueError(f"{name} must be >= 2 or None, got {value}")

    def to_dict(self) -> dict:
        return asdict(self)

    def frame_max_pixels(self, nframes: int) -> int:
        """Per-frame pixel cap for `nframes` frames: max_pixels, lowered to fit total_pixels when that is set."""
        if self.total_pixels is None:
            return self.max_pixels
        return int(min(self.max_pixels, max(self.min_pixels, self.total_pixels / nframes)))


@dataclass
class Clip:
    """A sampled clip ready for the processor. frames (T, H, W, 3) uint8 with T even, H and W multiples of 28."""

    path: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    frame_times: np.ndarray  # (T,) float64 seconds of each sampled frame from the video start
    fps: float  # actual sampling rate T / duration: a temporal grid of 2 frames spans 2 / fps seconds
    duration: float  # seconds of the video stream
    audio: np.ndarray | None  # (round(duration * sample_rate),) float32 mono, None without an audio track
    sample_rate: int
    source_size: tuple[int, int]  # (w, h) of the source as displayed (after its rotation)
    source_fps: float
    rotation: int = 0  # degrees the source's display matrix turned its frames (counter-clockwise)
    undecodable_frames: int = 0  # frames of the source the decoder could not reconstruct
    warnings: tuple[str, ...] = ()  # one line each, for the result and the page
    media: MediaConfig | None = None  # the settings it was sampled and resized with
    decode_ms: float = 0.0  # wall time of decoding, sampling and resizing

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


# ---------------------------------------------------------------------------------------------------------------
# Sampling rules (qwen-omni-utils)


def smart_resize(
    height: int, width: int, factor: int = FACTOR, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS
) -> tuple[int, int]:
    """(h, w) with both sides multiples of `factor`, area within [min_pixels, max_pixels], aspect kept."""
    if height <= 0 or width <= 0:
        raise MediaError(f"invalid frame size {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        ratio = max(height, width) / min(height, width)
        raise MediaError(
            f"aspect ratio {ratio:.0f}:1 of {width}x{height} exceeds the limit of {MAX_ASPECT_RATIO}:1"
        )
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def sample_indices(
    total_frames: int, source_fps: float, fps: float = 2.0, min_frames: int = 4, max_frames: int = 768
) -> np.ndarray:
    """Indices (n,) int64 of the frames to keep: n = duration * fps clamped to [min_frames, min(max_frames,
    total_frames)], rounded down to even (>= 2), spread by rounded linspace over the whole video."""
    if total_frames < 2:
        raise MediaError(f"video has {total_frames} frame(s); at least 2 are needed (one temporal grid)")
    n = total_frames / source_fps * fps
    n = min(max(n, min_frames), min(max_frames, total_frames))
    n = max(2, math.floor(n / 2 + 1e-9) * 2)  # tolerance: 19.9999999 from float division means 20
    return np.round(np.linspace(0, total_frames - 1, n)).astype(np.int64)


def _plan(total_frames: int, source_fps: float, width: int, height: int, config: MediaConfig):
    """Indices to keep and the (h, w) to resize them to."""
    indices = sample_indices(total_frames, source_fps, config.fps, config.min_frames, config.max_frames)
    size = smart_resize(
        height, width, config.factor, config.min_pixels, config.frame_max_pixels(len(indices))
    )
    return indices, size


def _check_limits(
    name: str, duration: float | None, width: int, height: int, config: MediaConfig, frames: int | None = None
) -> None:
    if duration is not None and duration > config.max_seconds:
        raise MediaError(
            f"{name}: clip is {duration:.1f} s long; the limit is {config.max_seconds:g} s "
            "(pass max_seconds=... to raise it)"
        )
    if max(width, height) > config.max_side:
        raise MediaError(
            f"{name}: resolution {width}x{height} exceeds the {config.max_side}-pixel side limit "
            "(downscale the video or pass max_side=... to raise it)"
        )
    if width <= 0 or height <= 0:
        raise MediaError(f"{name}: video stream has no valid frame size ({width}x{height})")
    if frames is None:
        return
    _check_frame_count(name, frames, config)
    if config.max_decode_pixels is not None and frames * width * height > config.max_decode_pixels:
        raise MediaError(
            f"{name}: decoding {frames} frames of {width}x{height} is {frames * width * height / 1e9:.1f} "
            f"gigapixels; the limit is {config.max_decode_pixels / 1e9:.1f} (lower the frame rate, the "
            "resolution or the length)"
        )


def _check_frame_count(name: str, frames: int, config: MediaConfig) -> None:
    if config.max_decode_frames is not None and frames > config.max_decode_frames:
        raise MediaError(
            f"{name}: the video has more than {config.max_decode_frames} frames to decode "
            f"({frames}); lower its frame rate or cut it"
        )


# ---------------------------------------------------------------------------------------------------------------
# Shared sampling / resizing / audio fitting (files and arrays take the same path)


@dataclass
class _Sampled:
    frames: np.ndarray  # (T, H, W, 3) uint8, resized
    times: np.ndarray  # (T,) seconds from the first frame
    seen: int  # frames iterated over
    end: float  # seconds from the first frame to the end of the last frame seen


def _sample_frames(
    frames: Iterable[tuple[float, Callable[[], np.ndarray]]],
    indices: np.ndarray,
    size: tuple[int, int],
    frame_s: float,
) -> _Sampled:
    """Walk (time, get_rgb) pairs in order, converting and resizing only the frames at `indices`."""
    wanted = set(indices.tolist())
    h, w = size
    kept, times = [], []
    seen, t0, last = 0, None, 0.0
    for t, get_rgb in frames:
        t0 = t if t0 is None else t0
        last = t - t0
        if seen in wanted:
            image = Image.fromarray(get_rgb()).resize((w, h), Image.Resampling.BICUBIC)
            kept.append(np.asarray(image, dtype=np.uint8))  # (H, W, 3)
            times.append(last)
        seen += 1
    stacked = np.stack(kept) if kept else np.zeros((0, h, w, 3), np.uint8)
    return _Sampled(stacked, np.asarray(times, dtype=np.float64), seen, last + frame_s if seen else 0.0)


def _sample_by_time(
    frames: Iterable[tuple[float, Callable[[], np.ndarray]]],
    targets: np.ndarray,
    size: tuple[int, int],
    frame_s: float,
) -> _Sampled:
    """Like _sample_frames, but keep the decoded frame nearest each target time (seconds from the first frame),
    for decodes that skip frames (the indices of the frames that arrive are not the source's indices)."""
    h, w = size
    kept, times = [], []
    seen, t0, last = 0, None, 0.0
    prev = None  # (time, get_rgb) of the last frame before the next target
    k = 0

    def keep(t: float, get_rgb) -> None:
        image = Image.fromarray(get_rgb()).resize((w, h), Image.Resampling.BICUBIC)
        kept.append(np.asarray(image, dtype=np.uint8))  # (H, W, 3)
        times.append(t)

    for t, get_rgb in frames:
        t0 = t if t0 is None else t0
        last = t - t0
        seen += 1
        while k < len(targets) and last >= targets[k]:
            if prev is not None and targets[k] - prev[0] < last - targets[k]:
                keep(*prev)
            else:
                keep(last, get_rgb)
            k += 1
        prev = (last, get_rgb)
    while k < len(targets) and prev is not None:  # targets past the last decoded frame
        keep(*prev)
        k += 1
    stacked = np.stack(kept) if kept else np.zeros((0, h, w, 3), np.uint8)
    return _Sampled(stacked, np.asarray(times, dtype=np.float64), seen, last + frame_s if seen else 0.0)


def _audio_resampler(sample_rate: int) -> av.AudioResampler:
    return av.AudioResampler(format="flt", layout="mono", rate=sample_rate)


def _resample(resampler: av.AudioResampler, frame: av.AudioFrame | None) -> list[np.ndarray]:
    """Resampled mono chunks (n,) float32 of one decoded frame (None flushes the resampler)."""
    return [f.to_ndarray().reshape(-1).astype(np.float32, copy=False) for f in resampler.resample(frame)]


def _fit_audio(chunks: list[np.ndarray], n_samples: int, offset: int = 0) -> np.ndarray:
    """Concatenate chunks, shift by `offset` samples (positive: audio starts late), trim or zero-pad to n."""
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if offset > 0:
        audio = np.concatenate([np.zeros(offset, np.float32), audio])
    elif offset < 0:
        audio = audio[-offset:]
    out = np.zeros(n_samples, np.float32)
    n = min(n_samples, len(audio))
    out[:n] = audio[:n]  # trailing AAC padding beyond the video is dropped; a short tail is zero-padded
    return out


# ---------------------------------------------------------------------------------------------------------------
# Files


def _name(path) -> str:
    return Path(path).name or str(path)


def _open(path) -> av.container.InputContainer:
    """Open a media file for reading, turning every failure into a one-line MediaError."""
    name = _name(path)
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{name}: not found (check the path: {p})")
    if not p.is_file():
        raise MediaError(f"{name}: is not a file")
    if p.stat().st_size == 0:
        raise MediaError(f"{name}: file is empty")
    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(f"{name}: cannot be decoded (corrupt or not a media file): {_reason(e)}") from e
    if container.format.name in NON_MEDIA_FORMATS:
        container.close()
        raise MediaError(f"{name}: cannot be decoded (corrupt or not a media file): looks like plain text")
    fmt = container.format.name
    if fmt in STILL_IMAGE_FORMATS or fmt.endswith("_pipe"):
        kind = fmt.removesuffix("_pipe").upper()
        container.close()
        raise MediaError(f"{name}: this is a still image ({kind}), not a video; SEATS needs a video clip")
    return container


def _reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.splitlines()[0][:120] if text else type(e).__name__


def _stream_meta(container: av.container.InputContainer) -> dict:
    """Declared metadata of the first video and audio streams (no decoding)."""
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    meta = {
        "format": container.format.name,
        "has_video": video is not None,
        "has_audio": audio is not None,
        "audio_codec": audio.codec_context.name if audio is not None else None,
        "audio_sample_rate": audio.codec_context.sample_rate if audio is not None else None,
    }
    duration = None
    if video is not None and video.duration and video.time_base:
        duration = float(video.duration * video.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    meta["duration"] = duration
    if video is None:
        none = dict.fromkeys(("width", "height", "fps", "frames", "video_codec"))
        return {**meta, **none, "frames_counted": False}
    rate = video.average_rate or video.guessed_rate or video.base_rate
    fps = float(rate) if rate else None
    frames = video.frames or (round(duration * fps) if duration and fps else None)
    return {
        **meta,
        "width": video.codec_context.width,
        "height": video.codec_context.height,
        "fps": fps,
        "frames": frames,
        "frames_counted": bool(video.frames),  # the container counts its frames (else estimated)
        "video_codec": video.codec_context.name,
    }


def probe(path: str | os.PathLike) -> dict:
    """Declared properties of a media file without decoding it.

    Keys: duration (s or None), width, height, fps, frames, has_video, has_audio, video_codec, audio_codec,
    audio_sample_rate, format. Raises MediaError when the file cannot be opened.
    """
    with _open(path) as container:
        return _stream_meta(container)


def _rotation(container: av.container.InputContainer) -> int:
    """Degrees (0, 90, 180, 270, counter-clockwise) the stream's display matrix turns its frames: read from the
    first decoded frame (PyAV exposes the matrix there), snapped to quarter turns."""
    video = container.streams.video[0]
    try:
        for frame in container.decode(video):
            return round((frame.rotation or 0) / 90) % 4 * 90
    except av.FFmpegError:
        return 0
    return 0


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """(H, W, 3) as stored -> as displayed: np.rot90 turns counter-clockwise, like the display matrix angle."""
    return np.ascontiguousarray(np.rot90(rgb, k=rotation // 90)) if rotation else rgb


@dataclass
class _Pass:
    sampled: _Sampled
    chunks: list[np.ndarray]  # resampled audio
    offset: int  # audio start vs the first video frame, in samples
    error: str  # last decoder error, "" if none
    bad_packets: int  # video packets the decoder refused


def _decode_pass(path, container, indices, size, meta, config, rotation=0, skip_nonref=False) -> _Pass:
    """One sequential decode: keep the sampled video frames, resample all audio.

    skip_nonref: the decoder skips non-reference frames and frames are picked by time (indices / fps) rather
    than by index. A decode error ends the pass early or skips a packet; the caller judges the result.
    """
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    if skip_nonref:
        video.codec_context.skip_frame = "NONREF"
    audio = container.streams.audio[0] if container.streams.audio else None
    resampler = _audio_resampler(config.sample_rate) if audio is not None else None
    chunks: list[np.ndarray] = []
    starts = {"video": None, "audio": None}
    state = {"error": "", "bad": 0}
    frame_s = 1.0 / meta["fps"]

    def decoded_video() -> Iterator[tuple[float, Callable[[], np.ndarray]]]:
        count = 0
        streams = (video, audio) if audio is not None else (video,)
        try:
            for packet in container.demux(*streams):
                try:
                    decoded = packet.decode()
                except av.FFmpegError as e:  # a damaged packet: skip it, keep what decodes after it
                    state["error"] = _reason(e)
                    state["bad"] += packet.stream.type == "video"
                    continue
                for frame in decoded:
                    t = frame.time if frame.time is not None else count * frame_s
                    kind = packet.stream.type
                    if starts[kind] is None:
                        starts[kind] = t
                    if kind == "audio":
                        chunks.extend(_resample(resampler, frame))
                        continue
                    if t - starts["video"] > config.max_seconds:
                        raise MediaError(
                            f"{_name(path)}: clip is longer than the limit of {config.max_seconds:g} s "
                            "(pass max_seconds=... to raise it)"
                        )
                    count += 1
                    _check_frame_count(_name(path), count, config)
                    yield t, lambda f=frame: _upright(f.to_ndarray(format="rgb24"), rotation)
        except av.FFmpegError as e:
            state["error"] = _reason(e)
        if resampler is not None:
            chunks.extend(_resample(resampler, None))

    if skip_nonref:
        sampled = _sample_by_time(decoded_video(), indices * frame_s, size, frame_s)
    else:
        sampled = _sample_frames(decoded_video(), indices, size, frame_s)
    offset = 0
    if starts["audio"] is not None and starts["video"] is not None:
        offset = round((starts["audio"] - starts["video"]) * config.sample_rate)
    return _Pass(sampled, chunks, offset, state["error"], state["bad"])


def load_clip(path: str | os.PathLike, config: MediaConfig = MediaConfig()) -> Clip:
    """Decode, sample and resize a video file's frames and resample its audio track (see module docstring).

    Limits (duration, resolution, frames and pixels to decode) are checked from the container's metadata before
    decoding. Frames are decoded sequentially and only the sampled ones are converted and kept; frames are
    turned upright by the stream's display matrix (phone clips). Frames the decoder could not reconstruct are
    counted in `undecodable_frames` and described in `warnings`.
    """
    t0 = time.perf_counter()
    name = _name(path)
    with _open(path) as container:
        meta = _stream_meta(container)
        if not meta["has_video"]:
            what = "audio-only files are not supported" if meta["has_audio"] else "no streams SEATS can use"
            raise MediaError(f"{name}: no video stream ({what}; SEATS needs video frames)")
        if not meta["fps"]:
            raise MediaError(f"{name}: video stream declares no frame rate; re-encode it (e.g. with ffmpeg)")
        declared = meta["frames"] or 0
        _check_limits(name, meta["duration"], meta["width"], meta["height"], config, declared)
        if declared < 2:
            raise MediaError(f"{name}: video stream declares {declared} frame(s); at least 2 are needed")
        rotation = _rotation(container)
    width, height = meta["width"], meta["height"]
    if rotation in (90, 270):
        width, height = height, width
    indices, size = _plan(declared, meta["fps"], width, height, config)
    skip = declared / len(indices) >= SKIP_NONREF_MIN_STRIDE
    with _open(path) as container:
        done = _decode_pass(path, container, indices, size, meta, config, rotation, skip)
    sampled = done.sampled

    if sampled.seen < 2:
        detail = f": {done.error}" if done.error else ""
        raise MediaError(f"{name}: cannot be decoded (corrupt or not a media file): no video frames{detail}")
    expected = meta["duration"] or sampled.end
    missing = expected - sampled.end
    if missing > max(TRUNCATED_MIN_MISSING_S, TRUNCATED_MIN_MISSING_FRACTION * expected):
        raise MediaError(
            f"{name}: truncated: decoded only {sampled.end:.1f} s of the {expected:.1f} s the container "
            "declares (re-download or re-encode the file)"
        )
    undecodable = done.bad_packets
    if not skip and sampled.seen != declared:
        # The container's frame count was off (a damaged middle or tail): sample again over what decodes.
        if meta["frames_counted"]:
            undecodable = max(undecodable, declared - sampled.seen)
        indices, size = _plan(sampled.seen, meta["fps"], width, height, config)
        with _open(path) as container:
            done = _decode_pass(path, container, indices, size, meta, config, rotation)
        sampled = done.sampled
    warnings = []
    if undecodable > 0:
        warnings.append(
            f"{name}: {undecodable} of {declared} frames could not be decoded (damaged file); the model saw "
            f"{len(sampled.frames)} frames sampled from the rest"
        )

    audio = None
    if meta["has_audio"]:
        audio = _fit_audio(done.chunks, round(sampled.end * config.sample_rate), done.offset)
    return Clip(
        path=str(path),
        frames=sampled.frames,
        frame_times=sampled.times,
        fps=len(sampled.frames) / sampled.end,
        duration=sampled.end,
        audio=audio,
        sample_rate=config.sample_rate,
        source_size=(width, height),
        source_fps=meta["fps"],
        rotation=rotation,
        undecodable_frames=int(undecodable),
        warnings=tuple(warnings),
        media=config,
        decode_ms=(time.perf_counter() - t0) * 1e3,
    )


def clip_from_arrays(
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps_source: float,
    sample_rate: int = 16000,
    config: MediaConfig = MediaConfig(),
    name: str = "<arrays>",
) -> Clip:
    """A Clip from in-memory frames (N, H, W, 3) uint8 at `fps_source` and mono audio (M,) at `sample_rate`.

    Same limits, sampling, resizing, audio resampling and trimming as `load_clip`.
    """
    t0 = time.perf_counter()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(f"{name}: frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    if not fps_source > 0:
        raise MediaError(f"{name}: fps_source must be > 0, got {fps_source}")
    n, height, width, _ = frames.shape
    duration = n / fps_source
    _check_limits(name, duration, width, height, config, n)
    indices, size = _plan(n, fps_source, width, height, config)
    frame_s = 1.0 / fps_source
    sampled = _sample_frames(((i * frame_s, lambda i=i: frames[i]) for i in range(n)), indices, size, frame_s)

    fitted = None
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise MediaError(f"{name}: audio must be mono (M,), got shape {audio.shape}")
        resampler = _audio_resampler(config.sample_rate)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[None, :]), format="flt", layout="mono")
        frame.sample_rate = sample_rate
        chunks = _resample(resampler, frame) + _resample(resampler, None)
        fitted = _fit_audio(chunks, round(sampled.end * config.sample_rate))
    return Clip(
        path=name,
        frames=sampled.frames,
        frame_times=sampled.times,
        fps=len(sampled.frames) / sampled.end,
        duration=sampled.end,
        audio=fitted,
        sample_rate=config.sample_rate,
        source_size=(width, height),
        source_fps=float(fps_source),
        media=config,
        decode_ms=(time.perf_counter() - t0) * 1e3,
    )


# ---------------------------------------------------------------------------------------------------------------
# Audio views for the explorer


def waveform_for_display(
    audio: np.ndarray, sample_rate: int, points: int = 2000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of mono audio in `points` equal buckets: (times (P,), lo (P,), hi (P,)), P <= points."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    p = min(points, len(audio))
    if p == 0:
        empty = np.zeros(0, np.float32)
        return empty.astype(np.float64), empty, empty
    edges = np.linspace(0, len(audio), p + 1).astype(np.int64)  # (P+1,) strictly increasing since p <= len
    lo = np.minimum.reduceat(audio, edges[:-1])  # (P,)
    hi = np.maximum.reduceat(audio, edges[:-1])  # (P,)
    times = (edges[:-1] + edges[1:]) / 2 / sample_rate  # (P,) bucket centres
    return times, lo, hi


def log_mel(
    audio: np.ndarray, sample_rate: int, n_mels: int = 64, hop_s: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel spectrogram in dB (0 = loudest, floor -80): (db (n_mels, F) float32, times (F,) seconds)."""
    import librosa  # heavy import, only needed for the explorer's audio view

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    hop = max(1, round(hop_s * sample_rate))
    win = 2 * hop
    n_fft = 1 << (win - 1).bit_length()  # next power of two >= the window
    power = librosa.feature.melspectrogram(
        y=audio, sr=sample_rate, n_fft=n_fft, hop_length=hop, win_length=win, n_mels=n_mels
    )  # (n_mels, F)
    db = librosa.power_to_db(power, ref=max(float(power.max()), 1e-10), top_db=80.0).astype(np.float32)
    times = librosa.frames_to_time(np.arange(db.shape[1]), sr=sample_rate, hop_length=hop)
    return db, times
