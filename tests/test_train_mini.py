"""The miniature's training data path (scripts/train_mini.py) against independent references.

The decoder stage assembles rows from a cached prefix and tokenized chat turns instead of calling the processor
and the towers on every step; the rows must equal what the stock processor and the whole thinker produce.
Auxiliary labels are checked against a hand-built scene.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seats_core import scenes
from seats_core.layout import AUDIO, VIDEO
from seats_core.models.adapter import OmniAdapter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tm():
    spec = importlib.util.spec_from_file_location("train_mini", ROOT / "scripts" / "train_mini.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_mini"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tm):
    engine, model, heads = tm.build(0, qk_init=0.15)
    return engine, model.eval(), heads


def test_rows_equal_the_processor_and_the_whole_thinker(tm, built):
    engine, model, _ = built
    sample = scenes.make_sample(tm.sample_seed(0, tm.TRAIN_STREAM, 7), "colour_at_nth", seconds=4)
    item = tm.encode_clip(engine, model, sample)
    args = tm.parse_args(["--batch", "1", "--questions", "3"])
    tm.check_prefix_composition(engine, item, sample, args)  # the check the training run starts with
    batch = tm.make_batch(engine, model, [item], np.random.default_rng(3), args)
    # Reference: the same dialogue (make_batch's draws: the clip, then the questions) through the stock
    # processor and the thinker's own forward.
    rng = np.random.default_rng(3)
    rng.choice(1, size=1, replace=False)
    qs = tm.pick_questions(rng, sample.slots, 3)
    text = tm.dialogue_text(engine.model.processor, engine.model.system_prompt, qs)
    clip = sample.clip(scenes.MINI_MEDIA)
    full = OmniAdapter.processor_inputs(
        engine.model.processor, text, clip.frames, clip.fps, clip.audio, clip.sample_rate
    )
    assert torch.equal(full["input_ids"], batch["ids"])
    with torch.no_grad():
        ref = model(**full, use_audio_in_video=True).logits[0]
        embeds = torch.where(
            batch["is_media"], batch["media"], model.model.get_input_embeddings()(batch["ids"])
        )
        out = model.model.language_model(
            inputs_embeds=embeds, attention_mask=batch["mask"], position_ids=batch["pos"], return_dict=True
        )
        got = model.lm_head(out.last_hidden_state)[0]
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)
    # Targets: each answer letter is predicted one position before it, then <|im_end|>.
    t = batch["labels"]["answer"][0]
    tok = engine.model.processor.tokenizer
    letters = [tok.convert_ids_to_tokens(int(x)) for x in t[t != tm.IGNORE]]
    assert letters == [x for q in qs for x in (q["answer"], "<|im_end|>")]
    q_type = batch["labels"]["q_type"][0]
    assert [tm.QTYPES[int(x)] for x in q_type[q_type != tm.IGNORE]] == [
        q["question"].split(" (A)")[0] for q in qs
    ]


def test_aux_labels_of_a_hand_built_scene(tm, built):
    engine, model, _ = built
    rng = np.random.default_rng(0)
    slots = [scenes._random_slot(rng, scenes.FRAME_SIZE) for _ in range(4)]
    for s, colour in zip(slots, ("red", "green", "blue", "yellow")):
        s.colour = colour
    slots[1].tone, slots[1].freq = "high", 1200.0
    slots[3].tone, slots[3].freq = "low", 300.0
    frames, audio = scenes.render(slots, rng)
    sample = scenes.Sample(0, "count_tones", "", (), "A", "", "a", slots, frames, audio)
    inputs, clip = tm.clip_prefix(engine, sample)
    lay, lab = tm.aux_labels(engine, sample, clip, inputs)
    audio_at = lay.modality == AUDIO
    mid = 0.5 * (lay.start_s + lay.end_s)
    # Tone ordinals: slot 1 holds the first tone (high), slot 3 the second (low), sounding over 0.2..0.8 s.
    in_slot1 = audio_at & (mid > 1.25) & (mid < 1.75)
    in_slot3 = audio_at & (mid > 3.25) & (mid < 3.75)
    silent = audio_at & (mid < 1.0)
    assert (lab["a_nth"][in_slot1] == 1).all() and (lab["a_nth"][in_slot3] == 2).all()
    assert (lab["a_high_nth"][in_slot1] == 1).all() and (lab["a_high_nth"][in_slot3] == 0).all()
    assert (lab["a_tone"][in_slot1] == 2).all() and (lab["a_tone"][silent] == 0).all()
    assert (lab["a_colour"][audio_at & (mid > 2.0) & (mid < 3.0)] == 2).all()  # blue on screen in slot 2
    P = inputs["input_ids"].shape[1]
    assert lab["e_count"][P - 1] == 2 and lab["e_high"][P - 1] == 1
    assert (lab["e_count"][: P - 1] == tm.IGNORE).all()
    video_at = lay.modality == VIDEO
    # Every token of a frame pair names its slot's colour; per-block colour only where the shape is.
    assert (lab["g_colour"][video_at & (lay.t == 2)] == 2).all()
    per_block = lab["v_colour"][video_at & (lay.t == 2)]
    assert set(per_block.tolist()) == {0, 3}  # background, or blue (1 + index 2)
    assert ((lab["v_colour"] != tm.IGNORE) == video_at).all()


def test_every_probe_target_is_defined_and_trainable(tm, built):
    """Each encoder probe has labels on its modality's tokens: finite losses and gradients into the towers."""
    engine, model, heads = built
    parts = tm.encoder_losses(engine, model, heads, scenes.make_sample(5, "colour_of_circle", seconds=4))
    assert set(parts) == set(tm.ENCODER_TARGETS)
    for name, loss in parts.items():
        assert torch.isfinite(loss), name
        grads = torch.autograd.grad(loss, tm.towers(model), allow_unused=True, retain_graph=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_every_answerable_question_has_one_query_class(tm):
    # 1 + 3 ordinals (colour at high / nth), 1 + 3 (direction at low / nth), 2 counts, circle, 4 colours
    assert len(tm.QTYPES) == len(set(tm.QTYPES)) == 15
    seen = set()
    for s in scenes.make_set(11, 40):
        for q in scenes.answerable(s.slots):
            seen.add(tm.qtype(q["question"]))
    assert len(seen) >= 13  # all but rare ones show up in 40 scenes
