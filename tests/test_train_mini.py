"""The miniature's training data path (scripts/train_mini.py) against independent references.

The decoder stage assembles rows from a cached prefix and tokenized chat turns instead of calling the processor
and the towers on every step; the rows must equal what the stock processor and the whole thinker produce.
Auxiliary labels are checked against a hand-built scene.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seats_core.data import scenes
from seats_core.models.adapter import OmniAdapter
from seats_core.prune.layout import AUDIO, VIDEO

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
    clip = sample.clip(engine.media())
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


def test_training_knockout_equals_removing_the_media_from_that_layer(tm, built):
    """--knockout: a row whose text loses the media from layer k gives the text what a sequence without the media
    tokens from layer k on gives (reference: the layers run one by one, the media rows deleted before layer k);
    other rows are untouched."""
    engine, model, _ = built
    cache = [
        tm.encode_clip(engine, model, scenes.make_sample(tm.sample_seed(0, tm.TRAIN_STREAM, i)))
        for i in (3, 4)
    ]
    args = tm.parse_args(["--batch", "2", "--questions", "2"])
    batch = tm.make_batch(engine, model, cache, np.random.default_rng(5), args)
    llm = model.model.language_model
    layers = model.config.text_config.num_hidden_layers
    embeds = torch.where(batch["is_media"], batch["media"], model.model.get_input_embeddings()(batch["ids"]))

    def run(from_layer):
        with tm._knockout_hooks(llm, batch["is_media"], torch.tensor(from_layer)), torch.no_grad():
            return llm(
                inputs_embeds=embeds, attention_mask=batch["mask"], position_ids=batch["pos"]
            ).last_hidden_state

    plain = run([layers, layers])
    n = int(batch["mask"][0].sum())
    text = ~batch["is_media"][0, :n, 0]
    for k in (0, layers // 2, layers - 1):
        got = run([k, layers])
        h, pos = embeds[:1, :n], batch["pos"][:, :1, :n]
        with torch.no_grad():
            for i, layer in enumerate(llm.layers):
                if i == k:
                    h, pos = h[:, text], pos[:, :, text]
                causal = torch.ones(h.shape[1], h.shape[1], dtype=torch.bool).tril()[None, None]
                h = layer(
                    h, attention_mask=causal, position_embeddings=llm.rotary_emb(h, pos), position_ids=pos[0]
                )
            ref = llm.norm(h)[0]
        torch.testing.assert_close(got[0, :n][text], ref, atol=2e-5, rtol=1e-4)
        assert (got[0, :n][text] - plain[0, :n][text]).abs().max() > 1e-3  # the media mattered
        torch.testing.assert_close(got[1], plain[1], atol=0, rtol=0)


def test_knockout_layers_draws_late_layers_for_the_given_share(tm):
    args = tm.parse_args(["--knockout", "0.5", "--knockout-from", "20"])
    got = tm.knockout_layers(np.random.default_rng(0), 4000, 28, args)
    hit = got < 28
    assert abs(float(hit.float().mean()) - 0.5) < 0.03
    assert int(got[hit].min()) == 20 and int(got[hit].max()) == 27
    assert not tm.knockout_layers(np.random.default_rng(0), 100, 28, tm.parse_args([])).lt(28).any()


def test_pooled_probes_weight_by_the_importance_seats_reads_and_train_the_tower(tm, built):
    """--pooled-probes: the weights are attach's Stage-I importance (the method's kernel, in video-token order),
    and the pooled loss sends a gradient into the last vision block's q/k projections."""
    from seats_core import method as M

    engine, model, heads = built
    sample = scenes.make_sample(tm.sample_seed(0, tm.TRAIN_STREAM, 11), "colour_of_circle", seconds=4)
    inputs, _ = tm.clip_prefix(engine, sample)
    grid = inputs["video_grid_thw"]
    block = engine.adapter.vision_last_block
    with torch.no_grad():
        (v, _), captured = tm.encode_media_with_qk(engine, model, inputs)
    qk = captured["video"]
    q, k, scale = qk
    per_grid = int(grid[0, 1] * grid[0, 2])
    ref = M.pool_rows(M.chunked_received_attention(q, k, M.fixed_chunks(q.shape[1], 2 * per_grid), scale), 4)
    ref = ref[engine.adapter.vision_raster_order(grid)].reshape(int(grid[0, 0]), -1)  # (grids, tokens)
    ref_pooled = torch.einsum(
        "gt,gtd->gd", ref / ref.sum(1, keepdim=True), v.reshape(ref.shape[0], ref.shape[1], -1)
    )
    got = tm.pooled_by_importance(engine, qk, v, grid)
    torch.testing.assert_close(got, ref_pooled, atol=1e-5, rtol=1e-4)

    model.zero_grad(set_to_none=True)
    parts = tm.encoder_losses(engine, model, heads, sample, pooled=True)
    assert set(tm.POOLED_TARGETS) <= set(parts)
    sum(parts[n] for n in tm.POOLED_TARGETS).backward()
    assert float(block.attn.q.weight.grad.abs().sum()) > 0  # the attention itself learns where to look
    model.zero_grad(set_to_none=True)


def test_audio_pooled_probe_weights_are_the_stage_one_audio_importance(tm, built):
    """The audio windows are the last audio layer's attention chunks; each one's features are averaged with
    attach's audio importance (the method's kernel, pooled per token); windows with both pitches are left out."""
    from seats_core import method as M

    engine, model, _ = built
    sample = scenes.make_sample(tm.sample_seed(0, tm.TRAIN_STREAM, 12), "count_tones", seconds=6)
    inputs, clip = tm.clip_prefix(engine, sample)
    lay, lab = tm.aux_labels(engine, sample, clip, inputs)
    with torch.no_grad():
        (_, a), captured = tm.encode_media_with_qk(engine, model, inputs)
    qk = captured["audio"]
    q, k, scale, cu = qk
    pool = engine.adapter.audio_pool
    imp = M.pool_rows(M.chunked_received_attention(q, k, cu.tolist(), scale), pool)
    tone = lab["a_tone"][lay.modality == AUDIO]
    want_feats, want_targets = [], []
    for lo, hi in zip(cu[:-1].tolist(), cu[1:].tolist()):
        lo, hi = lo // pool, min(hi // pool, a.shape[0])
        present = set(tone[lo:hi].tolist()) - {tm.NONE}
        if len(present) <= 1:
            want_feats.append((imp[lo:hi] / imp[lo:hi].sum()) @ a[lo:hi])
            want_targets.append(present.pop() if present else tm.NONE)
    got = tm.audio_pooled_by_importance(engine, qk, a, tone)
    assert got is not None and got[1].tolist() == want_targets
    torch.testing.assert_close(got[0], torch.stack(want_feats), atol=1e-5, rtol=1e-4)
    assert len(cu) - 1 == 3  # a 6-s clip: three 2-s attention chunks


def test_the_documented_commands_reproduce_the_shipped_record(tm):
    """The docstring's commands for the shipped weights, parsed, give the settings assets/mini/training.json
    recorded at training time (the record is written from the arguments the run actually had)."""
    record = json.loads((ROOT / "assets" / "mini" / "training.json").read_text())
    doc = tm.__doc__.split("The shipped weights", 1)[1]
    commands = [
        ln.strip() for ln in doc.splitlines() if ln.strip().startswith("python scripts/train_mini.py")
    ]
    assert len(commands) == 2, commands
    first, last = (tm.parse_args(shlex.split(c)[2:]) for c in commands)
    assert not first.resume and last.resume and last.out == "assets/mini"
    enc, cache, dec = (record["stages"][k] for k in ("encoders", "cache", "decoder"))
    for args in (first, last):  # a resumed run must keep the first run's settings
        assert args.seed == record["seed"]
        assert (args.enc_clips, args.enc_batch, args.enc_lr) == (enc["clips"], enc["batch"], enc["lr"])
        assert args.clips == cache["clips"]
        assert (args.batch, args.questions, args.qk_init) == (
            dec["batch_clips"],
            dec["questions_per_clip"],
            dec["qk_init"],
        )
        assert (args.lr, args.weight_decay, args.aux_weight) == (
            dec["optimizer"]["lr"],
            dec["optimizer"]["weight_decay"],
            dec["aux_weight"],
        )
        assert args.warmup == dec["schedule"]["warmup"]
        layers = {int(k.split()[1]) for k in dec["aux_targets"]}
        assert {args.fusion_layer, args.summary_layer, args.query_layer} == layers
        assert args.knockout == 0 and not args.pooled_probes
    assert last.steps == dec["planned_steps"] == dec["steps"]
