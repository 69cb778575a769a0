"""Shared session fixtures: synthetic clips with real pictures and sound, and files a loader must reject.

Path fixtures are str. `scene_av`, `scene_silent`, `scene_short_av` (and `scenes`, keyed by clip fixture name)
are the scene dicts synth rendered, so tests can compare decoded frames and audio against what was drawn.
"""

from __future__ import annotations

import os

import pytest
import torch

# One intra-op thread: on a shared 2-core machine torch's spinning OpenMP workers slow small ops 10-100x when
# another process holds a core (measured: a 1724x64 linear took 15.6 ms with 2 threads vs 1.1 ms with 1).
# Subprocesses (the CLI black-box test) inherit the same setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from seats_core.data import synth  # noqa: E402


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def scene_av(media_dir) -> dict:
    return synth.make_demo_clip(media_dir / "clip_av.mp4", seconds=10, size=(320, 240), fps=10, seed=0)


@pytest.fixture(scope="session")
def scene_silent(media_dir) -> dict:
    return synth.make_demo_clip(media_dir / "clip_silent.mp4", seconds=6, with_audio=False, seed=1)


@pytest.fixture(scope="session")
def scene_short_av(media_dir) -> dict:
    return synth.make_demo_clip(media_dir / "clip_short_av.mp4", seconds=4, seed=2)


@pytest.fixture(scope="session")
def scenes(scene_av, scene_silent, scene_short_av) -> dict[str, dict]:
    """Scene dicts (what synth rendered) keyed by clip fixture name."""
    return {"clip_av": scene_av, "clip_silent": scene_silent, "clip_short_av": scene_short_av}


@pytest.fixture(scope="session")
def clip_av(scene_av) -> str:
    """10 s, 320x240, 10 fps, H.264 + AAC: moving coloured shapes and three tones."""
    return scene_av["path"]


@pytest.fixture(scope="session")
def clip_silent(scene_silent) -> str:
    """6 s, 320x240, 10 fps video with no audio stream."""
    return scene_silent["path"]


@pytest.fixture(scope="session")
def clip_short_av(scene_short_av) -> str:
    """4 s, 320x240, 10 fps, with audio."""
    return scene_short_av["path"]


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, str]:
    """name -> path: corrupt, truncated, empty, text, audio_only, missing (see synth.make_bad_files)."""
    files = synth.make_bad_files(tmp_path_factory.mktemp("bad_media"))
    return {name: str(path) for name, path in files.items()}


def pytest_collection_modifyitems(config, items):
    """GPU and real-weight tests are skipped here, never faked: they need a CUDA device / a cached checkpoint."""
    import torch

    from seats_core.models.loader import _in_hf_cache

    has_weights = _in_hf_cache("Qwen/Qwen2.5-Omni-3B")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
        if "weights" in item.keywords and not has_weights:
            item.add_marker(
                pytest.mark.skip(reason="needs Qwen/Qwen2.5-Omni-3B in the local Hugging Face cache")
            )


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium (.ci/run installs it); browser tests skip without it


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one test module (Playwright driving Debian's chromium)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()
