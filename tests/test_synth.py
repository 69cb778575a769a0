"""seats_core.data.synth: what it renders, and that the files it writes are what a browser and the loader expect."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from seats_core.data import synth


def test_tone_frequency_amplitude_and_edges():
    x = synth.tone(440.0, 1.0, 16000, amp=0.3)
    assert x.dtype == np.float32 and x.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(x))
    assert np.fft.rfftfreq(16000, 1 / 16000)[np.argmax(spectrum)] == pytest.approx(440.0)
    assert np.abs(x).max() == pytest.approx(0.3, abs=1e-3)
    assert abs(x[0]) < 1e-6 and abs(x[-1]) < 1e-6  # faded edges: no click


def test_render_shapes_draws_colours_in_place():
    shapes = [
        {"name": "sq", "kind": "square", "color": (200, 0, 0), "size": 20, "start": 0, "end": 2,
         "from": (20, 20), "to": (60, 20)},
        {"name": "ci", "kind": "circle", "color": (0, 200, 0), "size": 20, "start": 1, "end": 2,
         "from": (50, 50), "to": (50, 50)},
    ]  # fmt: skip
    f0 = synth.render_shapes(0.0, (80, 64), shapes)
    assert f0.shape == (64, 80, 3) and f0.dtype == np.uint8
    assert tuple(f0[20, 20]) == (200, 0, 0) and tuple(f0[50, 50]) == synth.BACKGROUND
    f1 = synth.render_shapes(1.0, (80, 64), shapes)  # square halfway to (60, 20) is at x=40; circle visible
    assert tuple(f1[20, 40]) == (200, 0, 0) and tuple(f1[20, 20]) == synth.BACKGROUND
    assert (
        tuple(f1[50, 50]) == (0, 200, 0) and tuple(f1[41, 41]) == synth.BACKGROUND
    )  # circle corner is empty
    assert synth.shape_box(shapes[1], 2.0) is None  # end is exclusive


def test_demo_scene_is_seeded_and_well_formed():
    a, b, c = synth.demo_scene(seed=0), synth.demo_scene(seed=0), synth.demo_scene(seed=3)
    assert a == b and a != c
    tones = a["tones"]
    assert len({t["freq"] for t in tones}) == len(tones) == 3
    assert all(t["start"] < t["end"] <= u["start"] for t, u in zip(tones, tones[1:]))
    assert all(0 <= s["start"] < s["end"] <= a["seconds"] for s in a["shapes"])
    frames, audio = synth.render_scene(a)
    assert frames.shape == (100, 240, 320, 3) and audio.shape == (160000,)


def test_write_clip_is_browser_friendly_h264_aac(tmp_path):
    frames = np.zeros((12, 48, 64, 3), np.uint8)
    frames[:, :, :32] = (255, 0, 0)
    path = synth.write_clip(tmp_path / "x.mp4", frames, 6.0, synth.tone(440.0, 2.0))
    data = Path(path).read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while downloading
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name in ("h264", "mpeg4") and v.codec_context.pix_fmt == "yuv420p"
        assert (v.codec_context.width, v.codec_context.height) == (64, 48) and v.frames == 12
        assert float(v.average_rate) == pytest.approx(6.0)
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == 16000
        first = next(c.decode(v)).to_ndarray(format="rgb24")
    assert np.abs(first[24, 8].astype(int) - (255, 0, 0)).max() < 20
    assert np.abs(first[24, 56].astype(int)).max() < 20


def test_write_clip_rejects_odd_sizes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        synth.write_clip(tmp_path / "odd.mp4", np.zeros((2, 11, 10, 3), np.uint8), 5.0)


def test_demo_clip_is_small_and_described(tmp_path):
    scene = synth.make_demo_clip(tmp_path / "d.mp4", seconds=4, seed=1)
    assert Path(scene["path"]).stat().st_size < 100_000
    assert scene["has_audio"] and scene["seconds"] == 4.0 and len(scene["shapes"]) == 3


def test_make_bad_files(bad_files, clip_av):
    assert set(bad_files) == {"corrupt", "truncated", "empty", "text", "audio_only", "missing"}
    assert not Path(bad_files["missing"]).exists()
    assert Path(bad_files["empty"]).stat().st_size == 0
    assert Path(bad_files["text"]).suffix == ".txt"
    full = Path(clip_av).stat().st_size  # same scene (10 s, seed 0) as the truncated source
    assert 0.25 < Path(bad_files["truncated"]).stat().st_size / full < 0.35
    with av.open(bad_files["audio_only"]) as c:
        assert len(c.streams.video) == 0 and len(c.streams.audio) == 1
