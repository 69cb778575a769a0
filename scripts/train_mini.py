"""Train the offline miniature Qwen2.5-Omni thinker on generated audio-visual scenes (CPU, about an hour).

    python scripts/train_mini.py --out assets/mini                # all stages, export if the held-out check passes
    python scripts/train_mini.py --resume                         # continue a stopped decoder stage

Three stages, reproducible from `--seed` (every scene is `seats_core.data.scenes.make_sample(sample_seed(...))`):

1. encoders: the vision and audio towers learn per-token content through linear probe heads on their outputs
   (colour, shape and motion under each 28x28 block of a frame pair, and on every token of a pair the colour and
   motion of its shape; tone pitch at each 40 ms audio token).
2. cache: the frozen towers encode `--clips` scenes once. Per clip the decoder stage keeps the prompt prefix
   (system turn + the user turn's media block, token ids exactly as the stock processor expands them), the media
   embeddings, the M-RoPE positions and per-token labels. A prefix + tokenized chat turns equals the processor's
   output for the whole dialogue (checked on the first clip).
3. decoder: the 28-layer LLM learns to answer, `--batch` clips per step, each asked up to `--questions` questions
   as consecutive chat turns (the first turn is exactly the inference prompt). Targets: the option letter and
   <|im_end|> of every assistant turn, plus dense auxiliary targets read through linear heads (discarded after
   training):
     after layer --fusion-layer, on audio tokens: the colour and motion on screen at their moment, and the
       ordinal of the tone they belong to (among all tones, and among high tones);
     after layer --summary-layer, on the token that closes the media block: how many tones, how many high;
     after layer --query-layer, at each answer position: which question was asked (kind + its parameter).
   They shape where fusion happens (by the fusion layer) and shorten credit assignment on a CPU budget; the
   layers from --query-layer on get only the answer loss, so where the answer reads the media is learned.

Options the shipped weights do not use (the 168 px experiments of docs/MINI.md, issue 15):
  --knockout P --knockout-from K: a share P of the rows lose the media for their text from a layer drawn in
    K..27 (SEATS Stage III / the knockout analysis at a random late layer), so the answer learns to have read
    the media before the late layers, wherever that is;
  --pooled-probes: stage 1 also applies the per-block heads to each frame pair's mean weighted by SEATS' Stage-I
    importance (attention received in the last vision block), and a_tone's head to each 2-s audio window's
    mean weighted by the audio importance, so the towers' attention has a reason to land on the content;
  --init-from CKPT: every stage starts from an earlier run's weights; --until N stops the decoder stage at step N
    while the learning-rate schedule runs to --steps (both make a chain of runs reproducible command by command).

The held-out check runs the whole thinker through the inference path (`Engine.prepare`, the stock processor and
the towers) and the weights are exported only at `--min-accuracy`.

The shipped weights (assets/mini) came from two commands on a 2-core CPU (the first was stopped at step 1000 and
continued with a longer cosine schedule; training.json's log records both segments):

    python scripts/train_mini.py --threads 2 --steps 1500 --minutes 60
    python scripts/train_mini.py --threads 2 --steps 2800 --minutes 70 --resume --out assets/mini
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seats_core.data import scenes  # noqa: E402
from seats_core.data.synth import shape_box  # noqa: E402
from seats_core.models.adapter import OmniAdapter  # noqa: E402
from seats_core.models.hooks import Hooks  # noqa: E402
from seats_core.models.loader import MINI_SYSTEM_PROMPT, LoadedModel  # noqa: E402
from seats_core.models.qwen2_5_omni import mini  # noqa: E402
from seats_core.prune.layout import AUDIO, VIDEO, build_layout  # noqa: E402
from seats_core.run.pipeline import Engine  # noqa: E402

IGNORE = -100
NONE = 0  # class 0 of most auxiliary targets: nothing there
TRAIN_STREAM, HELDOUT_STREAM = 0, 1  # seed streams: sample_seed(seed, stream, i)
BLOCK = 28  # pixels per LLM video token side (patch 14 x merge 2)
MIN_OVERLAP = 0.25  # a video token "contains" a shape when the shape covers this fraction of its block
MEDIA_END = "<|vision_eos|>"  # the user turn's media block ends here; the question text follows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--enc-clips", type=int, default=1200, help="stage 1: clips for the encoder probes")
    p.add_argument("--enc-batch", type=int, default=4)
    p.add_argument("--enc-lr", type=float, default=2e-3)
    p.add_argument(
        "--pooled-probes", action="store_true", help="stage 1: probes on importance-weighted frame means too"
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="a checkpoint (last.pt) every stage starts from instead of the seed's init",
    )
    p.add_argument("--clips", type=int, default=3000, help="stage 2: clips cached for the decoder stage")
    p.add_argument("--steps", type=int, default=3000, help="stage 3: decoder optimizer steps")
    p.add_argument("--batch", type=int, default=8, help="clips per decoder step")
    p.add_argument("--questions", type=int, default=5, help="questions asked per clip (chat turns)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument(
        "--qk-init", type=float, default=0.15, help="std of the decoder's q/k projections at init (0: stock)"
    )
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--aux-weight", type=float, default=0.5)
    p.add_argument("--fusion-layer", type=int, default=8)
    p.add_argument("--summary-layer", type=int, default=10)
    p.add_argument("--query-layer", type=int, default=12)
    p.add_argument(
        "--knockout",
        type=float,
        default=0.0,
        help="share of rows whose text loses the media from a random layer",
    )
    p.add_argument(
        "--knockout-from", type=int, default=20, help="that layer is drawn uniformly from here to the last"
    )
    p.add_argument("--minutes", type=float, default=60.0, help="stop the decoder stage after this wall time")
    p.add_argument(
        "--until",
        type=int,
        default=None,
        help="stop the decoder stage at this step (the schedule runs to --steps)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-accuracy", type=float, default=0.8, help="export only at this held-out accuracy")
    p.add_argument("--heldout", type=int, default=96, help="held-out questions for the periodic check")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--work", default="/tmp/seats_train_mini", help="checkpoints and log")
    p.add_argument("--out", default=str(mini.MINI_DIR))
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


def sample_seed(seed: int, stream: int, i: int) -> int:
    """Seed of the i-th sample of a stream; streams of different (seed, stream) never overlap."""
    return (seed * 10 + stream) * 10_000_000 + i


# ---------------------------------------------------------------------------------------------------------------
# Question types (the query target) and dialogue text


def _question_types() -> list[str]:
    """Every question template with its parameter filled in, e.g. 'Which way does the red shape move?'."""
    out = []
    for template, _, _ in scenes.QUESTIONS.values():
        if "{nth}" in template:
            out += [template.format(nth=n) for n in scenes.ORDINALS]
        elif "{colour}" in template:
            out += [template.format(colour=c) for c in scenes.COLOURS]
        else:
            out.append(template)
    return out


QTYPES = _question_types()


def qtype(question: str) -> int:
    return QTYPES.index(question.split(" (A)")[0])


def pick_questions(rng: np.random.Generator, slots, k: int) -> list[dict]:
    """Up to k answerable questions about one scene, distinct kinds first, in random order."""
    qs = scenes.answerable(slots)
    order = rng.permutation(len(qs)).tolist()
    picked, kinds = [], set()
    for i in order:
        if len(picked) < k and qs[i]["kind"] not in kinds:
            picked.append(qs[i])
            kinds.add(qs[i]["kind"])
    for i in order:
        if len(picked) < k and qs[i] not in picked:
            picked.append(qs[i])
    return picked


def dialogue_text(processor, system_prompt: str, qs: list[dict]) -> str:
    msgs = [{"role": "system", "content": [{"type": "text", "text": system_prompt}]}]
    for j, q in enumerate(qs):
        user = [{"type": "video"}] if j == 0 else []
        msgs.append({"role": "user", "content": user + [{"type": "text", "text": q["question"]}]})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": q["answer"]}]})
    return processor.apply_chat_template(msgs, add_generation_prompt=False, tokenize=False)


def _trim_audio(inputs: dict) -> dict:
    """Drop the feature extractor's zero padding: the audio tower reads only the valid frames (same output)."""
    inputs = dict(inputs)
    valid = int(inputs["feature_attention_mask"].sum())
    inputs["input_features"] = inputs["input_features"][..., :valid].contiguous()
    inputs["feature_attention_mask"] = inputs["feature_attention_mask"][..., :valid]
    return inputs


def prepare(engine: Engine, sample: scenes.Sample) -> dict:
    """Inputs of one question exactly as at inference (Engine.prepare), for the held-out check."""
    prep = engine.prepare(sample.clip(engine.media()), sample.question)
    tok = engine.model.processor.tokenizer
    return {
        "inputs": _trim_audio(prep.inputs),
        "answer": torch.tensor(tok.convert_tokens_to_ids(sample.answer)),
        "kind": sample.kind,
    }


# ---------------------------------------------------------------------------------------------------------------
# Per-clip encoding and labels


def clip_prefix(engine: Engine, sample: scenes.Sample) -> tuple[dict, object]:
    """Processor inputs of the prompt prefix (system turn + user turn up to and including the media block)."""
    clip = sample.clip(engine.media())
    processor = engine.model.processor
    text = dialogue_text(processor, engine.model.system_prompt, [{"question": "", "answer": "A"}])
    prefix = text.split(MEDIA_END, 1)[0] + MEDIA_END
    inputs = OmniAdapter.processor_inputs(
        processor, prefix, clip.frames, clip.fps, clip.audio, clip.sample_rate
    )
    return _trim_audio(inputs), clip


def encode_media(model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(video features (Nv, D) in video-token order, audio features (Na, D) in audio-token order)."""
    inner = model.model
    video = inner.get_video_features(
        inputs["pixel_values_videos"], inputs["video_grid_thw"], return_dict=True
    )
    audio = inner.get_audio_features(
        inputs["input_features"], inputs["feature_attention_mask"], return_dict=True
    ).last_hidden_state
    return torch.cat(video.pooler_output, dim=0), audio


def aux_labels(engine: Engine, sample: scenes.Sample, clip, inputs: dict):
    """(layout, per-position targets over the prefix: long tensors, IGNORE where a target does not apply)."""
    lay = build_layout(
        inputs["input_ids"],
        engine.adapter.token_ids,
        inputs["video_grid_thw"],
        float(inputs["video_second_per_grid"].reshape(-1)[0]),
    )
    P = inputs["input_ids"].shape[1]
    colours, directions = list(scenes.COLOURS), list(scenes.DIRECTIONS)
    lab = {k: torch.full((P,), IGNORE, dtype=torch.long) for k in AUX_CLASSES}
    slots = sample.slots
    shapes = scenes._shape_dicts(slots)
    sx = clip.frames.shape[2] / sample.frames.shape[2]
    sy = clip.frames.shape[1] / sample.frames.shape[1]
    pitch = {None: NONE, "low": 1, "high": 2}
    tones = [i for i, s in enumerate(slots) if s.tone is not None]
    highs = [i for i in tones if slots[i].tone == "high"]
    for i in (lay.modality == VIDEO).nonzero().squeeze(-1).tolist():
        t, r, c = int(lay.t[i]), int(lay.row[i]), int(lay.col[i])
        times = clip.frame_times[2 * t : 2 * t + 2]
        slot_i = min(int(times[0] // scenes.SLOT_S), len(slots) - 1)
        slot = slots[slot_i]
        covered = max(_overlap(shape_box(shapes[slot_i], tt), r, c, sx, sy) for tt in times)
        inside = covered >= MIN_OVERLAP
        lab["v_colour"][i] = 1 + colours.index(slot.colour) if inside else NONE
        lab["v_direction"][i] = 1 + directions.index(slot.direction) if inside else NONE
        lab["v_shape"][i] = 1 + scenes.KINDS.index(slot.kind) if inside else NONE
        lab["g_colour"][i] = colours.index(slot.colour)  # every token of the frame pair: what it shows
        lab["g_direction"][i] = directions.index(slot.direction)
    for i in (lay.modality == AUDIO).nonzero().squeeze(-1).tolist():
        mid = 0.5 * (float(lay.start_s[i]) + float(lay.end_s[i]))
        slot_i = min(int(mid // scenes.SLOT_S), len(slots) - 1)
        slot = slots[slot_i]
        frac = mid / scenes.SLOT_S - slot_i
        sounding = slot.tone is not None and scenes.TONE_SPAN[0] <= frac < scenes.TONE_SPAN[1]
        lab["a_tone"][i] = pitch[slot.tone] if sounding else NONE
        lab["a_colour"][i] = colours.index(slot.colour)
        lab["a_direction"][i] = directions.index(slot.direction)
        lab["a_nth"][i] = 1 + tones.index(slot_i) if sounding else NONE
        lab["a_high_nth"][i] = 1 + highs.index(slot_i) if sounding and slot_i in highs else NONE
    lab["e_count"][P - 1] = len(tones)
    lab["e_high"][P - 1] = len(highs)
    return lay, lab


def _overlap(box, row: int, col: int, sx: float, sy: float) -> float:
    """Fraction of the 28x28 block (row, col) of the resized frame covered by a source-pixel box."""
    if box is None:
        return 0.0
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    bx0, by0 = col * BLOCK, row * BLOCK
    w = max(0.0, min(x1, bx0 + BLOCK) - max(x0, bx0))
    h = max(0.0, min(y1, by0 + BLOCK) - max(y0, by0))
    return w * h / (BLOCK * BLOCK)


AUX_CLASSES = {
    "v_colour": 1 + len(scenes.COLOURS),
    "v_direction": 1 + len(scenes.DIRECTIONS),
    "v_shape": 1 + len(scenes.KINDS),
    "g_colour": len(scenes.COLOURS),
    "g_direction": len(scenes.DIRECTIONS),
    "a_tone": 3,
    "a_colour": len(scenes.COLOURS),
    "a_direction": len(scenes.DIRECTIONS),
    "a_nth": 1 + scenes.MAX_TONES,
    "a_high_nth": 1 + scenes.MAX_TONES,
    "e_count": 1 + scenes.MAX_TONES,
    "e_high": 1 + scenes.MAX_TONES,
    "q_type": len(QTYPES),
}
# The towers' outputs. g_*: every token of a frame pair names the colour / motion of its shape (the vision
# tower's window attention spans the whole 112 x 112 frame), so a later token can read it from any of them.
ENCODER_TARGETS = ("v_colour", "v_direction", "v_shape", "g_colour", "g_direction", "a_tone")
# --pooled-probes: the per-block heads on each frame pair's importance-weighted mean name the pair's shape, and
# a_tone's head on each 2-s audio window's importance-weighted mean names its tone.
POOLED_TARGETS = ("p_colour", "p_direction", "p_tone")
# After --fusion-layer. No video targets there: with use_audio_in_video a window's video tokens come before its
# audio tokens, so under the causal mask a video token cannot see whether its own moment has a tone.
FUSION_TARGETS = ("a_colour", "a_direction", "a_nth", "a_high_nth")
SUMMARY_TARGETS = ("e_count", "e_high")  # after --summary-layer, on the token closing the media block


def rope_positions(model, inputs: dict) -> torch.Tensor:
    """M-RoPE position ids (3, 1, S) of one clip's inputs, as the thinker computes them (audio in video)."""
    ids = inputs["input_ids"]
    pos, _ = model.model.get_rope_index(
        ids,
        None,
        inputs["video_grid_thw"],
        torch.ones_like(ids),
        True,
        inputs["feature_attention_mask"].sum(1),
        inputs["video_second_per_grid"],
    )
    return pos


def encode_clip(engine: Engine, model, sample: scenes.Sample) -> dict:
    """Everything the decoder stage needs about one clip (frozen towers, no grad)."""
    inputs, clip = clip_prefix(engine, sample)
    lay, lab = aux_labels(engine, sample, clip, inputs)
    with torch.no_grad():
        v, a = encode_media(model, inputs)
        pos = rope_positions(model, inputs)
    return {
        "ids": inputs["input_ids"][0],
        "video_at": (lay.modality == VIDEO).nonzero().squeeze(-1),
        "audio_at": (lay.modality == AUDIO).nonzero().squeeze(-1),
        "video": v,
        "audio": a,
        "pos": pos[:, 0],  # (3, P)
        "labels": {k: lab[k] for k in FUSION_TARGETS + SUMMARY_TARGETS},
        "slots": sample.slots,
    }


# ---------------------------------------------------------------------------------------------------------------
# Model


def build(seed: int, qk_init: float = 0.0):
    torch.manual_seed(seed)
    tokenizer = mini.build_tokenizer()
    processor = mini.build_processor(tokenizer)
    config = mini.build_config(tokenizer)
    config._attn_implementation = "sdpa"
    from seats_core.models.family import family_of

    model = family_of(config).thinker_class()(config).float()
    if qk_init:  # larger than the stock 0.02: attention leaves its uniform start sooner (shorter plateau)
        with torch.no_grad():
            for layer in model.model.language_model.layers:
                layer.self_attn.q_proj.weight.normal_(0.0, qk_init)
                layer.self_attn.k_proj.weight.normal_(0.0, qk_init)
    hidden = config.text_config.hidden_size
    heads = torch.nn.ModuleDict({k: torch.nn.Linear(hidden, n) for k, n in AUX_CLASSES.items()})
    engine = Engine(LoadedModel("mini", model, processor, MINI_SYSTEM_PROMPT, True))
    return engine, model, heads


def towers(model) -> list[torch.nn.Parameter]:
    inner = model.model
    return list(inner.visual.parameters()) + list(inner.audio_tower.parameters())


# ---------------------------------------------------------------------------------------------------------------
# Stage 1: encoders


def received_in_chunks(q: torch.Tensor, k: torch.Tensor, bounds: list[int], scale: float) -> torch.Tensor:
    """(N,) attention each row receives inside its chunk [bounds[i], bounds[i+1]), with its gradient.

    The same statistic as the method's `chunked_received_attention` (whose kernel works in place, so it has no
    gradient), written as the plain `received_attention` of each chunk."""
    from seats_core import method as M

    return torch.cat(
        [M.received_attention(q[:, lo:hi], k[:, lo:hi], scale) for lo, hi in pairwise(bounds) if hi > lo]
    )


def pooled_by_importance(engine: Engine, qk: tuple, v: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(grids, D): each frame pair's video features averaged with SEATS' Stage-I importance as the weights.

    The importance is the statistic `attach` computes (SEATS_SPEC §1): the attention each patch receives in the
    last vision block inside a Stage-I window of VIDEO_BLOCK_GRIDS pairs, head mean, pooled per 2x2 merge group
    and put in video-token order; here it keeps its gradient."""
    from seats_core import method as M

    q, k, scale = qk  # (H, N, d) in the encoder's row order
    grids, ad = int(grid[0, 0]), engine.adapter
    window = ad.recipe.video_block_grids * (q.shape[1] // grids)  # patches per Stage-I window
    imp = M.video_token_importance(
        q,
        k,
        scale,
        window,
        ad.spatial_merge_size**2,
        ad.vision_raster_order(grid),
        received=received_in_chunks,
    ).reshape(grids, -1)  # (grids, tokens per pair)
    w = imp / imp.sum(dim=1, keepdim=True)
    return torch.einsum("gt,gtd->gd", w.to(v.dtype), v.reshape(grids, w.shape[1], -1))


def audio_pooled_by_importance(
    engine: Engine, qk: tuple, a: torch.Tensor, tone: torch.Tensor
) -> tuple | None:
    """Each Stage-I audio window's features averaged with SEATS' audio importance, and the window's target.

    The importance is attach's: attention received in the last audio layer inside its attention chunks (2 s),
    head mean, pooled per audio token. Target: the window's tone class (a_tone's NONE / low / high) when it
    holds no tone or tones of one pitch; windows with both pitches are left out. A tone fills about 30% of a
    2-s window, so an unweighted mean reads as silence: the weights must favour the tone."""
    from seats_core import method as M

    q, k, scale, cu = qk
    bounds = [int(b) for b in cu.tolist()]
    pool = engine.adapter.audio_pool
    imp = M.pool_rows(received_in_chunks(q, k, bounds, scale), pool)[: a.shape[0]]  # (Na,) per token
    feats, targets = [], []
    for lo, hi in pairwise([b // pool for b in bounds]):
        hi = min(hi, a.shape[0])
        present = set(tone[lo:hi].tolist()) - {NONE}
        if hi <= lo or len(present) > 1:
            continue
        w = imp[lo:hi] / imp[lo:hi].sum()
        feats.append(w.to(a.dtype) @ a[lo:hi])
        targets.append(present.pop() if present else NONE)
    if not feats:  # every window holds both pitches
        return None
    return torch.stack(feats), torch.tensor(targets)


def encode_media_with_qk(engine: Engine, model, inputs: dict, pooled: bool = True):
    """encode_media, plus (when pooled) the q/k the Stage-I importance reads, as attach's hooks capture them:
    ((video, audio), {"video": vision_qk, "audio": audio_qk})."""
    ad, captured = engine.adapter, {}
    with Hooks() as hooks:
        for name, module, qk_of in (
            ("video", ad.vision_last_block, ad.vision_qk),
            ("audio", ad.audio_last_layer, ad.audio_qk),
        ):
            if not pooled:
                break

            def grab(m, args, kwargs, name=name, qk_of=qk_of):
                captured[name] = qk_of(args, kwargs)

            hooks.pre(module, grab)
        return encode_media(model, inputs), captured


def encoder_losses(engine: Engine, model, heads, sample: scenes.Sample, pooled: bool = False) -> dict:
    """Cross-entropy of each ENCODER_TARGETS probe on the towers' outputs for one clip.

    pooled: also the POOLED_TARGETS. The per-block heads (v_colour, v_direction: NONE on background)
    applied to each frame pair's importance-weighted mean must name the pair's shape, so the last block's
    attention has to land on the shape's tokens; what SEATS' Stage I reads as importance then means something."""
    inputs, clip = clip_prefix(engine, sample)
    lay, lab = aux_labels(engine, sample, clip, inputs)
    (v, a), captured = encode_media_with_qk(engine, model, inputs, pooled)
    parts = {}
    for name in ENCODER_TARGETS:
        on_video = name.startswith(("v_", "g_"))
        feats, at = (v, lay.modality == VIDEO) if on_video else (a, lay.modality == AUDIO)
        parts[name] = F.cross_entropy(heads[name](feats), lab[name][at])
    if pooled:
        grid = inputs["video_grid_thw"]
        per_pair = v.shape[0] // int(grid[0, 0])  # LLM tokens per frame pair
        pooled_v = pooled_by_importance(engine, captured["video"], v, grid)  # (grids, D)
        for name in ("p_colour", "p_direction"):
            head, of_pair = name.replace("p_", "v_"), lab[name.replace("p_", "g_")][lay.modality == VIDEO]
            parts[name] = F.cross_entropy(heads[head](pooled_v), 1 + of_pair[::per_pair])  # 0 is NONE
        tone = lab["a_tone"][lay.modality == AUDIO]
        windows = audio_pooled_by_importance(engine, captured["audio"], a, tone)
        if windows is not None:
            parts["p_tone"] = F.cross_entropy(heads["a_tone"](windows[0]), windows[1])
    return parts


def train_encoders(args, engine: Engine, model, heads, log: list) -> None:
    params = towers(model) + [p for k in ENCODER_TARGETS for p in heads[k].parameters()]
    opt = torch.optim.AdamW(params, lr=args.enc_lr, weight_decay=args.weight_decay)
    steps = args.enc_clips // args.enc_batch
    run: dict[str, float] = {}
    t0 = time.perf_counter()
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = args.enc_lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * (1 - step / steps))
        opt.zero_grad(set_to_none=True)
        for j in range(args.enc_batch):
            sample = scenes.make_sample(sample_seed(args.seed, TRAIN_STREAM, step * args.enc_batch + j))
            parts = encoder_losses(engine, model, heads, sample, pooled=args.pooled_probes)
            (sum(parts.values()) / (len(parts) * args.enc_batch)).backward()
            for k, x in parts.items():
                run[k] = 0.9 * run.get(k, x.item()) + 0.1 * x.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 25 == 0 or step + 1 == steps:
            msg = " ".join(f"{k}={x:.3f}" for k, x in run.items())
            print(
                f"encoders step {step + 1}/{steps} {(time.perf_counter() - t0) / 60:.1f} min {msg}",
                flush=True,
            )
    log.append(
        {
            "stage": "encoders",
            "clips": steps * args.enc_batch,
            "minutes": round((time.perf_counter() - t0) / 60, 2),
            "final_losses": {k: round(x, 4) for k, x in run.items()},
        }
    )


def build_cache(args, engine: Engine, model) -> list[dict]:
    model.eval()
    t0 = time.perf_counter()
    cache = []
    for i in range(args.clips):
        cache.append(encode_clip(engine, model, scenes.make_sample(sample_seed(args.seed, TRAIN_STREAM, i))))
        if (i + 1) % 250 == 0:
            print(f"cache {i + 1}/{args.clips} clips {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    model.train()
    return cache


# ---------------------------------------------------------------------------------------------------------------
# Stage 3: decoder


def make_batch(engine: Engine, model, cache: list[dict], rng: np.random.Generator, args) -> dict:
    """B rows of prefix + chat turns, right-padded: embeddings (media from the cache), positions and targets."""
    processor = engine.model.processor
    tok = processor.tokenizer
    letters = torch.tensor([tok.convert_tokens_to_ids(c) for c in scenes.LETTERS])
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    rows = []
    for ci in rng.choice(len(cache), size=args.batch, replace=False).tolist():
        item = cache[ci]
        qs = pick_questions(rng, item["slots"], args.questions)
        rest = dialogue_text(processor, engine.model.system_prompt, qs).split(MEDIA_END, 1)[1]
        rest_ids = torch.tensor(tok(rest, add_special_tokens=False).input_ids)
        ids = torch.cat([item["ids"], rest_ids])
        start = int(item["pos"].max()) + 1
        pos = torch.cat([item["pos"], (start + torch.arange(len(rest_ids))).expand(3, -1)], dim=1)
        # An answer is a letter directly followed by <|im_end|> (option letters in questions are followed by ")").
        at = (torch.isin(ids[:-1], letters) & (ids[1:] == im_end)).nonzero().squeeze(-1)
        assert at.numel() == len(qs), (at.numel(), len(qs))
        targets = torch.full_like(ids, IGNORE)  # targets[p]: the token the logits at p must predict
        targets[at - 1] = ids[at]
        targets[at] = im_end
        q_type = torch.full_like(ids, IGNORE)
        q_type[at - 1] = torch.tensor([qtype(q["question"]) for q in qs])
        rows.append((item, ids, pos, targets, q_type))
    S = max(len(r[1]) for r in rows)
    B = len(rows)
    pad = tok.convert_tokens_to_ids("<|endoftext|>")
    ids = torch.full((B, S), pad)
    pos = torch.zeros(3, B, S, dtype=torch.long)
    mask = torch.zeros(B, S, dtype=torch.long)
    labels = {k: torch.full((B, S), IGNORE) for k in FUSION_TARGETS + SUMMARY_TARGETS + ("q_type", "answer")}
    media = torch.zeros(B, S, model.config.text_config.hidden_size)
    is_media = torch.zeros(B, S, 1, dtype=torch.bool)
    for b, (item, row_ids, row_pos, targets, q_type) in enumerate(rows):
        n, P = len(row_ids), len(item["ids"])
        ids[b, :n], pos[:, b, :n], mask[b, :n] = row_ids, row_pos, 1
        labels["answer"][b, :n], labels["q_type"][b, :n] = targets, q_type
        for k in FUSION_TARGETS + SUMMARY_TARGETS:
            labels[k][b, :P] = item["labels"][k]
        media[b, item["video_at"]] = item["video"]
        media[b, item["audio_at"]] = item["audio"]
        is_media[b, item["video_at"]] = True
        is_media[b, item["audio_at"]] = True
    return {"ids": ids, "pos": pos, "mask": mask, "labels": labels, "media": media, "is_media": is_media}


def knockout_layers(rng: np.random.Generator, rows: int, layers: int, args) -> torch.Tensor:
    """(rows,) the layer from which each row's text stops seeing the media; `layers` (never) for most rows."""
    hit = rng.random(rows) < args.knockout
    return torch.from_numpy(np.where(hit, rng.integers(args.knockout_from, layers, size=rows), layers))


def _knockout_hooks(llm, is_media: torch.Tensor, from_layer: torch.Tensor) -> Hooks:
    """Pre-hooks that remove the media keys for non-media queries of row b in layers >= from_layer[b].

    The same as SEATS Stage III / the knockout analysis (SEATS_SPEC §8) applied to a random late layer: the answer
    learns to have read the media before it, wherever that is, and the media tokens still see each other (their
    own targets after the last layer stay defined)."""
    media = is_media[..., 0]  # (B, S)
    cut = (~media)[:, None, :, None] & media[:, None, None, :]  # (B, 1, S_q, S_k)

    def hook(layer_idx):
        def pre(module, args, kwargs):
            rows = (from_layer <= layer_idx)[:, None, None, None]
            if not bool(rows.any()):
                return None
            mask = kwargs.get("attention_mask")
            if mask is None:  # no padding in the batch: sdpa runs causal without a mask
                S = media.shape[1]
                mask = torch.ones(S, S, dtype=torch.bool, device=media.device).tril()[None, None]
            assert mask.dtype == torch.bool, "expected sdpa's boolean 4-D mask"
            return args, {**kwargs, "attention_mask": mask & ~(cut & rows)}

        return pre

    hooks = Hooks()
    for i, layer in enumerate(llm.layers):
        hooks.pre(layer, hook(i))
    return hooks


def decoder_losses(model, heads, batch: dict, args, letter_ids: list[int]) -> dict:
    embeds = model.model.get_input_embeddings()(batch["ids"])
    embeds = torch.where(batch["is_media"], batch["media"], embeds)
    llm = model.model.language_model
    hooks = _knockout_hooks(llm, batch["is_media"], batch["knockout"]) if "knockout" in batch else Hooks()
    with hooks:
        out = llm(
            inputs_embeds=embeds,
            attention_mask=batch["mask"],
            position_ids=batch["pos"],
            output_hidden_states=True,
            use_cache=False,
            return_dict=True,
        )
    hs, lab = out.hidden_states, batch["labels"]
    t = lab["answer"]
    sel = t != IGNORE
    logits = model.lm_head(out.last_hidden_state[sel]).float()
    result = {"answer": F.cross_entropy(logits, t[sel])}
    is_letter = torch.isin(t[sel], torch.tensor(letter_ids))
    result["letter"] = F.cross_entropy(logits[is_letter], t[sel][is_letter]).detach()
    layer = {
        **dict.fromkeys(FUSION_TARGETS, args.fusion_layer),
        **dict.fromkeys(SUMMARY_TARGETS, args.summary_layer),
    }
    layer["q_type"] = args.query_layer
    for name, k in layer.items():
        y = lab[name]
        m = y != IGNORE
        result[name] = F.cross_entropy(heads[name](hs[k][m]).float(), y[m])
    return result


@torch.no_grad()
def evaluate(model, items: list[dict], letter_ids: list[int]) -> dict:
    """Accuracy of the first answer token over the option letters, and how often it is a letter at all."""
    model.eval()
    correct, is_letter = 0, 0
    by_kind: dict[str, list[int]] = {}
    for item in items:
        logits = model(**item["inputs"], use_audio_in_video=True).logits[0, -1]  # (V,) first answer token
        top = int(logits.argmax())
        pred = letter_ids[int(logits[letter_ids].argmax())]
        ok = int(pred == int(item["answer"]))
        correct += ok
        is_letter += int(top in letter_ids)
        by_kind.setdefault(item["kind"], []).append(ok)
    model.train()
    return {
        "accuracy": round(correct / len(items), 4),
        "letter_rate": round(is_letter / len(items), 4),
        "by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
    }


def lr_at(step: int, args) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def check_prefix_composition(engine: Engine, cache_item: dict, sample: scenes.Sample, args) -> None:
    """The decoder stage's rows equal the stock processor's ids and get_rope_index's positions for a dialogue."""
    processor = engine.model.processor
    qs = pick_questions(np.random.default_rng(0), sample.slots, args.questions)
    text = dialogue_text(processor, engine.model.system_prompt, qs)
    clip = sample.clip(engine.media())
    full = _trim_audio(
        OmniAdapter.processor_inputs(processor, text, clip.frames, clip.fps, clip.audio, clip.sample_rate)
    )
    rest_ids = processor.tokenizer(text.split(MEDIA_END, 1)[1], add_special_tokens=False).input_ids
    assert full["input_ids"][0].tolist() == cache_item["ids"].tolist() + rest_ids
    pos = rope_positions(engine.model.thinker, full)
    P = len(cache_item["ids"])
    start = int(cache_item["pos"].max()) + 1
    assert torch.equal(pos[:, 0, :P], cache_item["pos"])
    assert torch.equal(pos[:, 0, P:], (start + torch.arange(len(rest_ids))).expand(3, -1))


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints and export


def save_ckpt(path: Path, model, heads, opt, step: int, log: list, elapsed_s: float) -> None:
    tmp = path.with_suffix(".tmp")
    state = {"model": model.state_dict(), "heads": heads.state_dict(), "opt": opt.state_dict()}
    torch.save({**state, "step": step, "log": log, "elapsed_s": elapsed_s}, tmp)
    tmp.replace(path)


def export(out: Path, engine: Engine, model, record: dict) -> None:
    """Weights (fp32 safetensors), config, tokenizer and the training record into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    engine.model.processor.tokenizer.save_pretrained(out)
    (out / mini.METADATA_FILE).write_text(json.dumps(record, indent=2) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)  # other workers share this machine
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt, cache_path = work / "last.pt", work / "cache.pt"
    engine, model, heads = build(args.seed, args.qk_init)
    tok = engine.model.processor.tokenizer
    letter_ids = [tok.convert_tokens_to_ids(c) for c in scenes.LETTERS]
    decoder_params = [
        p for n, p in model.named_parameters() if not n.startswith(("model.visual", "model.audio_tower"))
    ]
    aux_params = [p for k in FUSION_TARGETS + SUMMARY_TARGETS + ("q_type",) for p in heads[k].parameters()]
    opt = torch.optim.AdamW(
        decoder_params + aux_params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98)
    )
    step, log, done_s = 0, [], 0.0
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        heads.load_state_dict(state["heads"])
        opt.load_state_dict(state["opt"])
        step, log, done_s = state["step"], state["log"], state["elapsed_s"]
        log.append({"stage": "resume", "step": step, "planned_steps": args.steps, "minutes": args.minutes})
        print(f"resumed at decoder step {step}", flush=True)
    else:
        if args.init_from:  # a continuation: all three stages start from an earlier run's weights
            state = torch.load(args.init_from, weights_only=False)
            model.load_state_dict(state["model"])
            heads.load_state_dict(state["heads"])
            log = state["log"] + [{"stage": "init", "from": str(args.init_from), "step": state["step"]}]
        train_encoders(args, engine, model, heads, log)
    for p in towers(model):
        p.requires_grad_(False)

    heldout = [
        prepare(engine, scenes.make_sample(sample_seed(args.seed, HELDOUT_STREAM, i)))
        for i in range(args.heldout)
    ]
    if args.resume and cache_path.exists():
        cache = torch.load(cache_path, weights_only=False)
    else:
        cache = build_cache(args, engine, model)
        torch.save(cache, cache_path)
    check_prefix_composition(
        engine, cache[0], scenes.make_sample(sample_seed(args.seed, TRAIN_STREAM, 0)), args
    )
    print(f"cache: {len(cache)} clips; held-out check: {len(heldout)} questions", flush=True)

    model.train()
    t0 = time.perf_counter() - done_s
    run: dict[str, float] = {}
    last = args.steps if args.until is None else min(args.steps, args.until)
    while step < last and (time.perf_counter() - t0) < args.minutes * 60:
        batch = make_batch(engine, model, cache, np.random.default_rng([args.seed, step]), args)
        if args.knockout:  # its own stream: the batches are those of a run without knockout
            batch["knockout"] = knockout_layers(
                np.random.default_rng([args.seed, step, 1]),
                args.batch,
                model.config.text_config.num_hidden_layers,
                args,
            )
        parts = decoder_losses(model, heads, batch, args, letter_ids)
        aux = [v for k, v in parts.items() if k not in ("answer", "letter")]
        loss = parts["answer"] + args.aux_weight * sum(aux) / len(aux)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder_params + aux_params, 1.0)
        opt.step()
        step += 1
        for k, v in parts.items():
            run[k] = 0.95 * run.get(k, v.item()) + 0.05 * v.item()
        if step % 25 == 0:
            el = time.perf_counter() - t0
            msg = " ".join(f"{k}={v:.3f}" for k, v in run.items())
            print(f"step {step} {el / 60:.1f} min lr={lr_at(step, args):.2e} {msg}", flush=True)
        if step % args.eval_every == 0:
            ev = evaluate(model, heldout, letter_ids)
            log.append(
                {"stage": "decoder", "step": step, "minutes": round((time.perf_counter() - t0) / 60, 2), **ev}
            )
            print(f"eval step {step}: {ev}", flush=True)
        if step % args.ckpt_every == 0:
            save_ckpt(ckpt, model, heads, opt, step, log, time.perf_counter() - t0)

    save_ckpt(ckpt, model, heads, opt, step, log, time.perf_counter() - t0)
    train_min = (time.perf_counter() - t0) / 60
    ev = evaluate(model, heldout, letter_ids)
    log.append({"stage": "decoder", "step": step, "minutes": round(train_min, 2), **ev})
    print(f"final eval step {step}: {ev}", flush=True)
    record = training_record(args, model, step, train_min, ev, log)
    (work / mini.METADATA_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if ev["accuracy"] < args.min_accuracy:
        print(f"held-out accuracy {ev['accuracy']:.3f} < {args.min_accuracy}: not exported", flush=True)
        return 1
    export(Path(args.out), engine, model, record)
    print(f"saved to {args.out}", flush=True)
    return 0


def training_record(args, model, step: int, train_min: float, ev: dict, log: list) -> dict:
    cfg = model.config
    return {
        "what": "miniature Qwen2.5-Omni thinker trained on seats_core.data.scenes (scripts/train_mini.py)",
        "seed": args.seed,
        "stages": {
            "encoders": {
                "clips": args.enc_clips,
                "batch": args.enc_batch,
                "lr": args.enc_lr,
                "targets": list(ENCODER_TARGETS) + (list(POOLED_TARGETS) if args.pooled_probes else []),
            },
            "cache": {"clips": args.clips},
            "decoder": {
                "steps": step,
                "planned_steps": args.steps,
                "batch_clips": args.batch,
                "qk_init": args.qk_init,
                "questions_per_clip": args.questions,
                "optimizer": {
                    "name": "AdamW",
                    "lr": args.lr,
                    "betas": [0.9, 0.98],
                    "weight_decay": args.weight_decay,
                },
                "schedule": {"warmup": args.warmup, "cosine_to": 0.1},
                "grad_clip": 1.0,
                "aux_weight": args.aux_weight,
                "knockout": {"rows": args.knockout, "from_layer": f"uniform {args.knockout_from}..last"}
                if args.knockout
                else {},
                "aux_targets": {
                    f"layer {args.fusion_layer} (audio tokens)": list(FUSION_TARGETS),
                    f"layer {args.summary_layer} (media block end)": list(SUMMARY_TARGETS),
                    f"layer {args.query_layer} (answer positions)": ["q_type"],
                },
            },
        },
        "data": {
            "generator": "seats_core.data.scenes.make_sample",
            "train_seeds": f"sample_seed({args.seed}, {TRAIN_STREAM}, 0..{max(args.clips, args.enc_clips) - 1})",
            "heldout_seeds": f"sample_seed({args.seed}, {HELDOUT_STREAM}, 0..{args.heldout - 1})",
            "mix": scenes.MIX,
            "durations_s": list(scenes.DURATIONS_S),
            "frame_size": list(scenes.FRAME_SIZE),
        },
        "media": {k: v for k, v in OmniAdapter(model).media_budget().items() if k != "factor"},
        "widths": {
            "hidden": cfg.text_config.hidden_size,
            "layers": cfg.text_config.num_hidden_layers,
            "heads": cfg.text_config.num_attention_heads,
            "kv_heads": cfg.text_config.num_key_value_heads,
            "vision_hidden": cfg.vision_config.hidden_size,
            "audio_d_model": cfg.audio_config.d_model,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "decoder_minutes": round(train_min, 2),
        "threads": args.threads,
        "heldout_first_token_accuracy": ev,
        "log": log,
    }


if __name__ == "__main__":
    raise SystemExit(main())
