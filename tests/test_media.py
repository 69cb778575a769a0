"""seats_core.run.media against hand-computed sampling rules and against what synth rendered (pixels and tones)."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
from PIL import Image

from seats_core.data import synth
from seats_core.run import media
from seats_core.run.media import (
    MediaConfig,
    MediaError,
    clip_from_arrays,
    load_clip,
    sample_indices,
    smart_resize,
)

TOKEN = 28 * 28  # pixels per LLM token per temporal grid


# ---------------------------------------------------------------------------------------------------------------
# smart_resize


@pytest.mark.parametrize(
    ("hw", "expected"),
    [
        # 240x320: rounds to 252x308 = 99 tokens < 128; beta = sqrt(100352/76800) = 1.1431,
        # ceil(274.3/28)=10 -> 280, ceil(365.8/28)=14 -> 392: 140 tokens.
        ((240, 320), (280, 392)),
        # 1080x1920: 1092x1932 too big; beta = sqrt(2073600/112896) = 30/7: 252/28=9, 448/28=16 -> 144 tokens.
        ((1080, 1920), (252, 448)),
        # 10x10: 28x28 = 1 token; beta = sqrt(100352/100) = 31.68: ceil(316.8/28)=12 -> 336: 144 tokens.
        ((10, 10), (336, 336)),
        # 308x364 = 11x13 blocks = 143 tokens: already inside the budget, unchanged.
        ((308, 364), (308, 364)),
        # 300x370 rounds to 308x364 (nearest multiples), within budget.
        ((300, 370), (308, 364)),
        # 500x333 -> 504x336 too big; beta = 1.2144: floor(411.7/28)=14 -> 392, floor(274.2/28)=9 -> 252.
        # Flooring both sides can land below min_pixels (126 tokens), exactly as qwen-omni-utils does.
        ((500, 333), (392, 252)),
    ],
)
def test_smart_resize_hand_cases(hw, expected):
    assert smart_resize(*hw) == expected


def test_smart_resize_custom_budget_and_factor():
    # 480x640 with max 256*256: beta = sqrt(307200/65536) = 2.165; floor(221.7/16)=13 -> 208, floor(295.6/16)=18 -> 288
    assert smart_resize(480, 640, factor=16, min_pixels=16 * 16, max_pixels=256 * 256) == (208, 288)


@pytest.mark.parametrize("hw", [(240, 320), (720, 1280), (1080, 1920), (2160, 3840), (64, 64), (480, 640)])
def test_smart_resize_defaults_stay_in_the_token_band(hw):
    h, w = smart_resize(*hw)
    assert h % 28 == 0 and w % 28 == 0
    assert 128 <= h * w / TOKEN <= 144
    assert abs(math.log((h / w) / (hw[0] / hw[1]))) < 0.2  # aspect roughly kept


def test_smart_resize_rejects_extreme_aspect():
    with pytest.raises(MediaError, match="aspect ratio"):
        smart_resize(10, 2500)


# ---------------------------------------------------------------------------------------------------------------
# sample_indices


def test_sample_indices_10s_at_30fps_gives_20_frames():
    idx = sample_indices(300, 30.0, fps=2.0)
    # round(linspace(0, 299, 20)): step 15.7368
    expected = [0, 16, 31, 47, 63, 79, 94, 110, 126, 142, 157, 173, 189, 205, 220, 236, 252, 268, 283, 299]
    assert idx.tolist() == expected


def test_sample_indices_short_video_gets_min_frames():
    assert sample_indices(30, 30.0).tolist() == [0, 10, 19, 29]  # 1 s -> 2 frames -> min 4


def test_sample_indices_odd_count_rounds_down_to_even():
    assert len(sample_indices(165, 30.0)) == 10  # 5.5 s * 2 fps = 11 -> 10
    assert len(sample_indices(300, 30.0, max_frames=7)) == 6
    assert len(sample_indices(3, 30.0)) == 2  # fewer frames than min_frames: capped by the video, then even
    assert sample_indices(3, 30.0).tolist() == [0, 2]


def test_sample_indices_caps_at_max_frames():
    assert len(sample_indices(400 * 30, 30.0)) == 768


def test_sample_indices_needs_two_frames():
    with pytest.raises(MediaError, match="at least 2"):
        sample_indices(1, 30.0)


# ---------------------------------------------------------------------------------------------------------------
# MediaConfig


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0},
        {"min_frames": 1},
        {"max_frames": 2, "min_frames": 4},
        {"min_pixels": 10, "max_pixels": 5},
        {"total_pixels": 0},
        {"sample_rate": 0},
        {"max_seconds": -1},
        {"max_side": 0},
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        MediaConfig(**kwargs)


def test_config_total_pixels_lowers_the_per_frame_cap():
    cfg = MediaConfig(min_pixels=4 * TOKEN, total_pixels=20 * 50 * TOKEN)
    assert cfg.frame_max_pixels(20) == 50 * TOKEN
    assert cfg.frame_max_pixels(10_000) == 4 * TOKEN  # never below min_pixels
    assert MediaConfig(total_pixels=10**12).frame_max_pixels(2) == cfg.max_pixels  # never above max_pixels
    assert MediaConfig().to_dict()["max_pixels"] == 144 * TOKEN


# ---------------------------------------------------------------------------------------------------------------
# load_clip on real files


@pytest.fixture(scope="module")
def av_clip(clip_av):
    return load_clip(clip_av)


def test_load_clip_shapes_and_timing(av_clip):
    clip = av_clip
    t, h, w, c = clip.frames.shape
    assert clip.frames.dtype == np.uint8 and c == 3
    assert t == 20 and t % 2 == 0  # 10 s at 2 fps
    assert (h, w) == (280, 392) and h % 28 == 0 and w % 28 == 0
    assert 128 <= h * w / TOKEN <= 144
    assert clip.duration == pytest.approx(10.0, abs=1e-6)
    assert clip.fps == pytest.approx(t / clip.duration)
    assert clip.source_size == (320, 240) and clip.source_fps == pytest.approx(10.0)
    assert np.all(np.diff(clip.frame_times) > 0)
    assert clip.frame_times[0] == pytest.approx(0.0) and clip.frame_times[-1] == pytest.approx(9.9)
    assert clip.has_audio and clip.audio.dtype == np.float32 and clip.audio.ndim == 1
    assert abs(len(clip.audio) - round(clip.duration * 16000)) <= 1


def _peak_hz(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[np.argmax(spectrum)])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _check_tones(clip, scene, margin=0.15):
    sr = clip.sample_rate
    tones = scene["tones"]
    for tn in tones:
        seg = clip.audio[round((tn["start"] + margin) * sr) : round((tn["end"] - margin) * sr)]
        assert _rms(seg) > 0.1  # a 0.3-amplitude sine has RMS 0.21
        assert abs(_peak_hz(seg, sr) - tn["freq"]) < 5
    for a, b in zip(tones, tones[1:]):
        gap = clip.audio[round((a["end"] + margin) * sr) : round((b["start"] - margin) * sr)]
        assert _rms(gap) < 0.01


def test_load_clip_audio_matches_rendered_tones(av_clip, scene_av):
    _check_tones(av_clip, scene_av)


def _check_colours(clip, scene):
    """Each sampled frame against the scene rendered at that frame's time: per-shape mean colour and whole frame."""
    w0, h0 = scene["size"]
    _, h, w, _ = clip.frames.shape
    checked = 0
    for frame, t in zip(clip.frames, clip.frame_times):
        reference = synth.render_shapes(t, scene["size"], scene["shapes"], scene["background"])
        for shape in scene["shapes"]:
            box = synth.shape_box(shape, t)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            q = (x1 - x0) // 5  # middle fifth: away from edges blurred by scaling and chroma subsampling
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            ref_patch = reference[cy - q : cy + q, cx - q : cx + q]
            if not np.all(ref_patch == shape["color"]):  # covered by a later shape here
                continue
            sx, sy = w / w0, h / h0
            got = frame[
                round((cy - q) * sy) : round((cy + q) * sy), round((cx - q) * sx) : round((cx + q) * sx)
            ]
            assert np.abs(got.reshape(-1, 3).mean(0) - shape["color"]).max() < 20, (shape["name"], t)
            checked += 1
        resized = np.asarray(Image.fromarray(reference).resize((w, h), Image.Resampling.BICUBIC), dtype=float)
        assert np.abs(frame - resized).mean() < 6, t
        corner = frame[:4, :4].reshape(-1, 3).mean(0)
        if np.all(reference[:4, :4] == scene["background"]):
            assert np.abs(corner - scene["background"]).max() < 12
    assert checked >= len(clip.frames)  # most frames show at least one shape


def test_load_clip_frames_match_rendered_colours(av_clip, scene_av):
    _check_colours(av_clip, scene_av)


def test_load_clip_silent_has_no_audio(clip_silent, scene_silent):
    clip = load_clip(clip_silent)
    assert clip.audio is None and not clip.has_audio
    assert clip.frames.shape == (12, 280, 392, 3)  # 6 s at 2 fps
    _check_colours(clip, scene_silent)


def test_load_clip_short(clip_short_av, scene_short_av):
    clip = load_clip(clip_short_av)
    assert clip.frames.shape[0] == 8 and clip.duration == pytest.approx(4.0)
    assert abs(len(clip.audio) - 64000) <= 1
    _check_tones(clip, scene_short_av, margin=0.1)


def test_load_clip_total_pixels_budget(clip_av):
    cfg = MediaConfig(min_pixels=4 * TOKEN, total_pixels=20 * 50 * TOKEN)
    clip = load_clip(clip_av, cfg)
    # per-frame cap 50 tokens: beta = sqrt(76800/39200) = 1.3997; floor(6.12)=6 -> 168, floor(8.16)=8 -> 224
    assert clip.frames.shape == (20, 168, 224, 3)


def test_load_clip_custom_fps_and_sample_rate(clip_av, scene_av):
    clip = load_clip(clip_av, MediaConfig(fps=1.0, sample_rate=8000))
    assert clip.frames.shape[0] == 10 and clip.fps == pytest.approx(1.0)
    assert abs(len(clip.audio) - 80000) <= 1
    _check_tones(clip, scene_av)


def test_probe(clip_av, clip_silent):
    info = media.probe(clip_av)
    assert info["has_video"] and info["has_audio"]
    assert (info["width"], info["height"], info["frames"]) == (320, 240, 100)
    assert info["fps"] == pytest.approx(10.0) and info["duration"] == pytest.approx(10.0)
    assert info["video_codec"] in ("h264", "mpeg4") and info["audio_codec"] == "aac"
    assert media.probe(clip_silent)["has_audio"] is False


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs and limits


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("corrupt", "cannot be decoded (corrupt or not a media file)"),
        ("truncated", "truncated: decoded only"),
        ("empty", "file is empty"),
        ("text", "cannot be decoded (corrupt or not a media file)"),
        ("audio_only", "no video stream (audio-only files are not supported"),
        ("missing", "not found"),
    ],
)
def test_bad_files_raise_one_clear_line(bad_files, name, needle):
    path = bad_files[name]
    with pytest.raises(MediaError) as info:
        load_clip(path)
    message = str(info.value)
    assert needle in message
    assert message.startswith(path.rsplit("/", 1)[-1] + ": ")
    assert "\n" not in message and "Traceback" not in message


def test_corrupt_file_chains_the_decoder_error(bad_files):
    with pytest.raises(MediaError) as info:
        media.probe(bad_files["corrupt"])
    assert isinstance(info.value.__cause__, av.FFmpegError)


def test_truncated_message_gives_durations(bad_files):
    with pytest.raises(MediaError, match=r"decoded only \d+\.\d s of the 10\.0 s the container declares"):
        load_clip(bad_files["truncated"])


def test_slightly_truncated_tail_still_loads(clip_av, tmp_path):
    data = open(clip_av, "rb").read()
    path = tmp_path / "tail_cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.99)])
    clip = load_clip(path)
    assert 9.0 <= clip.duration < 10.0
    assert clip.frames.shape[0] % 2 == 0 and clip.frames.shape[0] >= 16
    assert abs(len(clip.audio) - round(clip.duration * 16000)) <= 1


def test_limits_are_checked_before_decoding(clip_av, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before checking limits")

    monkeypatch.setattr(media, "_decode_pass", no_decoding)
    with pytest.raises(MediaError, match=r"clip is 10\.0 s long; the limit is 5 s \(pass max_seconds=\.\.\."):
        load_clip(clip_av, MediaConfig(max_seconds=5))
    with pytest.raises(MediaError, match="resolution 320x240 exceeds the 100-pixel side limit"):
        load_clip(clip_av, MediaConfig(max_side=100))


def test_array_limits():
    frames = np.zeros((4, 30, 20, 3), np.uint8)
    with pytest.raises(MediaError, match="resolution 20x30 exceeds the 16-pixel side limit"):
        clip_from_arrays(frames, None, 1.0, config=MediaConfig(max_side=16))
    with pytest.raises(MediaError, match="clip is 4.0 s long; the limit is 2 s"):
        clip_from_arrays(frames, None, 1.0, config=MediaConfig(max_seconds=2))
    with pytest.raises(MediaError, match="uint8"):
        clip_from_arrays(frames.astype(np.float32), None, 1.0)
    with pytest.raises(MediaError, match="mono"):
        clip_from_arrays(frames, np.zeros((2, 100), np.float32), 1.0)


# ---------------------------------------------------------------------------------------------------------------
# clip_from_arrays


def test_clip_from_arrays_matches_the_decoded_file(scene_av, av_clip):
    frames, audio = synth.render_scene(scene_av)
    clip = clip_from_arrays(frames, audio, scene_av["fps"], 16000)
    assert clip.frames.shape == av_clip.frames.shape
    np.testing.assert_allclose(clip.frame_times, av_clip.frame_times, atol=1e-6)
    assert clip.fps == pytest.approx(av_clip.fps) and clip.duration == pytest.approx(av_clip.duration)
    assert len(clip.audio) == len(av_clip.audio)
    assert np.abs(clip.frames.astype(float) - av_clip.frames).mean() < 6  # only codec loss differs
    _check_tones(clip, scene_av)
    _check_colours(clip, scene_av)


def test_clip_from_arrays_resamples_and_pads_audio():
    frames = np.zeros((30, 56, 56, 3), np.uint8)  # 3 s at 10 fps
    audio = synth.tone(1000.0, 2.0, 44100)  # short: the last second is zero-padded
    clip = clip_from_arrays(frames, audio, 10.0, 44100)
    assert len(clip.audio) == 48000 and clip.sample_rate == 16000
    assert abs(_peak_hz(clip.audio[1600:30000], 16000) - 1000.0) < 5
    assert np.all(clip.audio[33000:] == 0)
    long = clip_from_arrays(frames, synth.tone(1000.0, 5.0, 16000), 10.0, 16000)
    assert len(long.audio) == 48000  # trimmed to the video


def test_only_sampled_frames_are_converted():
    calls = []

    def frames():
        for i in range(100):
            yield i / 10, lambda i=i: calls.append(i) or np.zeros((10, 10, 3), np.uint8)

    indices = sample_indices(100, 10.0)
    sampled = media._sample_frames(frames(), indices, (28, 28), 0.1)
    assert calls == indices.tolist() and sampled.seen == 100 and sampled.end == pytest.approx(10.0)


# ---------------------------------------------------------------------------------------------------------------
# Audio views


def test_waveform_for_display_envelope():
    audio = synth.tone(200.0, 1.0, 16000, amp=0.5)
    times, lo, hi = media.waveform_for_display(audio, 16000, points=100)
    assert times.shape == lo.shape == hi.shape == (100,)
    assert times[0] == pytest.approx(80 / 16000) and times[-1] == pytest.approx(1 - 80 / 16000)
    assert np.all(hi[1:-1] > 0.49) and np.all(lo[1:-1] < -0.49)  # each 10 ms bucket holds two periods
    assert np.all(lo <= hi)
    short_t, _, _ = media.waveform_for_display(np.ones(7, np.float32), 16000, points=2000)
    assert len(short_t) == 7
    assert len(media.waveform_for_display(np.zeros(0, np.float32), 16000)[0]) == 0


def test_log_mel_peak_band_follows_the_tone():
    sr = 16000
    audio = np.concatenate([synth.tone(300.0, 1.0, sr), synth.tone(3000.0, 1.0, sr)])
    db, times = media.log_mel(audio, sr, n_mels=64, hop_s=0.02)
    assert db.shape == (64, len(times)) and db.dtype == np.float32
    assert np.diff(times) == pytest.approx(0.02)
    assert db.max() == pytest.approx(0.0, abs=1e-3) and db.min() >= -80.0 - 1e-3
    # independent mel scale (HTK formula) for the band edges: 64 bands over 0..8 kHz
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    band = lambda f: mel(f) / mel(sr / 2) * 65 - 1  # noqa: E731  approximate band index of a frequency
    low, high = db[:, int(0.5 / 0.02)], db[:, int(1.5 / 0.02)]
    assert np.argmax(low) < np.argmax(high)
    assert abs(np.argmax(low) - band(300)) < 6 and abs(np.argmax(high) - band(3000)) < 6


# ---------------------------------------------------------------------------------------------------------------
# Rotation, damage, still images, decode cost


def _set_display_matrix(path, matrix) -> None:
    """Overwrite the video track's tkhd matrix (ISO/IEC 14496-12 8.3.2: nine 32-bit values, a b u c d v x y w
    with a..d, x, y in 16.16 and u, v, w in 2.30 fixed point): what phones write for a portrait recording."""
    import struct

    data = bytearray(open(path, "rb").read())
    at = data.find(b"tkhd")
    version = data[at + 4]
    # version, flags; creation, modification, track id, reserved, duration (v0: 4-byte times); reserved (8),
    # layer, alternate group, volume, reserved (2 each): then the matrix.
    offset = at + 4 + 4 + (20 if version == 0 else 32) + 8 + 8
    data[offset : offset + 36] = struct.pack(">9i", *matrix)
    open(path, "wb").write(bytes(data))


QUARTER_CLOCKWISE = (0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)  # QuickTime's "rotate 90"
HALF_TURN = (-(1 << 16), 0, 0, 0, -(1 << 16), 0, 0, 0, 1 << 30)


@pytest.mark.parametrize("matrix, upright", [(QUARTER_CLOCKWISE, "red right"), (HALF_TURN, "red bottom")])
def test_rotated_clip_reaches_the_model_upright(tmp_path, matrix, upright):
    frames = np.zeros((8, 96, 160, 3), np.uint8)  # landscape as stored: red top half, blue bottom half
    frames[:, :48] = (255, 0, 0)
    frames[:, 48:] = (0, 0, 255)
    path = tmp_path / "phone.mp4"
    synth.write_clip(path, frames, fps=4)
    _set_display_matrix(path, matrix)
    clip = load_clip(path, MediaConfig(min_pixels=4 * TOKEN, max_pixels=24 * TOKEN))
    t, h, w, _ = clip.frames.shape
    red = clip.frames[0, :, :, 0].astype(float) - clip.frames[0, :, :, 2]  # (H, W) > 0 where red
    if upright == "red right":  # turned a quarter clockwise: the stored top is now the right side
        assert h > w and clip.source_size == (96, 160) and clip.rotation == 270
        assert red[:, : w // 2 - 4].max() < 0 < red[:, w // 2 + 4 :].min()
    else:
        assert w > h and clip.rotation == 180
        assert red[: h // 2 - 4].max() < 0 < red[h // 2 + 4 :].min()


def test_corrupt_middle_is_decoded_with_a_warning(tmp_path):
    path = tmp_path / "damaged.mp4"
    synth.make_demo_clip(path, seconds=10, seed=3)
    data = bytearray(path.read_bytes())
    lo, hi = int(len(data) * 0.4), int(len(data) * 0.6)
    data[lo:hi] = np.random.default_rng(0).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    clip = load_clip(path)
    assert clip.undecodable_frames > 0
    assert len(clip.warnings) == 1 and f"{clip.undecodable_frames} of 100 frames" in clip.warnings[0]
    assert load_clip(path.with_name("damaged.mp4")).warnings  # deterministic
    intact = tmp_path / "intact.mp4"
    synth.make_demo_clip(intact, seconds=10, seed=3)
    assert load_clip(intact).warnings == () and load_clip(intact).undecodable_frames == 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_still_images_are_refused_as_such(tmp_path, fmt):
    path = tmp_path / f"photo.{fmt.lower()}"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(path, format=fmt)
    with pytest.raises(MediaError, match=f"this is a still image \\({fmt}\\), not a video"):
        load_clip(path)


def test_cli_and_app_share_one_side_limit():
    from app import work

    assert MediaConfig().max_side == media.MAX_SOURCE_SIDE == work.APP_MEDIA.max_side == 4096


def test_high_rate_source_skips_frames_but_samples_the_right_times(tmp_path, monkeypatch):
    n, fps = 240, 120.0  # 2 s at 120 fps; frame i is grey level i: the decoded value names the frame
    frames = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None], 3, axis=3)
    frames = np.ascontiguousarray(np.broadcast_to(frames, (n, 64, 64, 3)))
    path = tmp_path / "fast.mp4"
    synth.write_clip(path, frames, fps=fps)
    passes = []
    real = media._decode_pass

    def spy(*args, **kwargs):
        passes.append(real(*args, **kwargs))
        return passes[-1]

    monkeypatch.setattr(media, "_decode_pass", spy)
    clip = load_clip(path)
    wanted = sample_indices(n, fps)  # what index sampling would pick: 4 frames spread over 2 s
    got = clip.frames.reshape(len(clip.frames), -1).mean(axis=1)
    assert len(passes) == 1 and passes[0].sampled.seen < n  # one pass, and not every frame reconstructed
    np.testing.assert_allclose(got, wanted, atol=4)  # each sampled frame within a few frames of its time


def test_decode_caps_name_the_numbers(tmp_path):
    path = tmp_path / "c.mp4"
    synth.write_clip(path, np.zeros((20, 64, 64, 3), np.uint8), fps=10)
    with pytest.raises(MediaError, match=r"more than 10 frames to decode \(20\)"):
        load_clip(path, MediaConfig(max_decode_frames=10))
    with pytest.raises(MediaError, match=r"decoding 20 frames of 64x64 is 0\.0 gigapixels"):
        load_clip(path, MediaConfig(max_decode_pixels=20 * 64 * 64 - 1))
    assert len(load_clip(path, MediaConfig(max_decode_frames=20, max_decode_pixels=20 * 64 * 64)).frames) == 4
