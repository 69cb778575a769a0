"""The real-checkpoint load path, exercised structurally on the miniature (saved to disk like a hub snapshot)."""

from __future__ import annotations

import pytest
import torch

from seats_core.models.loader import ModelLoadError, hub_reachable, load_model
from seats_core.prune.config import SeatsConfig
from seats_core.run.pipeline import Engine
from tests.helpers import mini


@pytest.fixture(scope="module")
def saved_mini(tmp_path_factory):
    model, proc = mini("sdpa")
    path = tmp_path_factory.mktemp("mini_ckpt")
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return path, model


def test_local_folder_loads_through_the_real_checkpoint_path(saved_mini, clip_short_av):
    path, original = saved_mini
    loaded = load_model(str(path), device="cpu")
    assert not loaded.is_mini and loaded.dtype == torch.float32
    for (n1, p1), (n2, p2) in zip(original.state_dict().items(), loaded.thinker.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    engine = Engine(loaded)
    prep = engine.prepare(clip_short_av, "What colour is the square?")
    r = engine.run(prep, SeatsConfig.make("seats", "R25"), max_new_tokens=2).to_dict()
    assert r["model"] == str(path) and r["num_layers"] == 28
    assert r["retention_measured"]["video"] == pytest.approx(0.20, abs=0.02)


def test_unknown_and_unreachable_models_fail_fast_with_one_line(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown model"):
        load_model("definitely-not-a-model")
    with pytest.raises(ModelLoadError, match="unknown model"):
        load_model(str(tmp_path / "missing_dir"))
    if not hub_reachable():
        with pytest.raises(ModelLoadError, match="unreachable") as e:
            load_model("Qwen/Qwen2.5-Omni-7B")
        assert "--model mini" in str(e.value) and "\n" not in str(e.value)


def test_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError) as e:
        load_model(str(tmp_path))
    assert "\n" not in str(e.value)


@pytest.mark.weights
def test_real_checkpoint_answers(clip_short_av):
    engine = Engine("Qwen/Qwen2.5-Omni-3B")
    prep = engine.prepare(clip_short_av, "What colours are the shapes?")
    full = engine.run(prep, SeatsConfig.make("full"), max_new_tokens=20).to_dict()
    seats = engine.run(prep, SeatsConfig.make("seats", "R25"), max_new_tokens=20).to_dict()
    assert full["answer"] and seats["answer"]
    assert seats["flops"]["prefill"] < full["flops"]["prefill"]


def test_frame_budget_follows_the_model(monkeypatch, clip_short_av):
    """Clips for the trained miniature are resized to its training budget; real models keep the paper's.

    The budget is the models table's entry for a built-in miniature, else 128-144 tokens per frame pair.
    """
    from seats_core.run.media import MediaConfig

    engine = Engine("mini", device="cpu")
    assert engine.model.frame_tokens == (9, 16)
    assert engine.adapter.media_budget() == {"factor": 28, "min_pixels": 128 * 784, "max_pixels": 144 * 784}
    monkeypatch.setattr(engine.model, "frame_tokens", (4, 6))
    media = engine.media(MediaConfig(max_seconds=12.0))
    assert (media.min_pixels, media.max_pixels, media.max_seconds) == (4 * 784, 6 * 784, 12.0)
    prep = engine.prepare(clip_short_av, "What colour is the square?")  # no MediaConfig: the model's
    h, w = prep.clip.frames.shape[1:3]
    assert 4 * 784 <= h * w <= 6 * 784
    explicit = engine.prepare(clip_short_av, "What colour is the square?", MediaConfig())
    assert explicit.clip.frames.shape[1] * explicit.clip.frames.shape[2] > 6 * 784
