"""Train the offline miniature Qwen2.5-Omni thinker on generated audio-visual scenes (CPU, one thread).

    python scripts/train_mini.py --minutes 33 --out assets/mini          # train, save, write training.json
    python scripts/train_mini.py --resume                                  # continue a stopped run

Every step draws a fresh scene + question (`seats_core.scenes.make_sample(seed_base + step)`), so the run is
reproducible from `--seed` and a resumed run sees exactly the data it would have seen. Inputs go through the
inference path: `Engine.prepare` (media sampling/resizing, chat prompt, stock processor). Each clip is asked up to
`--questions` questions as consecutive chat turns (the first turn is exactly the inference prompt); the targets
are the option letter and <|im_end|> of every assistant turn (labels elsewhere are ignored).

Auxiliary losses (training only; their linear heads are discarded): per-token content at the encoder outputs
(shape colour / motion on video tokens, tone pitch on audio tokens) and cross-modal content after decoder layer
`--fusion-layer` (audio tokens predict what is on screen at their moment, video tokens whether a tone sounds).
They give the randomly initialised encoders and the early decoder layers a dense signal.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seats_core import scenes  # noqa: E402
from seats_core.layout import AUDIO, VIDEO, build_layout  # noqa: E402
from seats_core.models import mini  # noqa: E402
from seats_core.models.adapter import OmniAdapter  # noqa: E402
from seats_core.models.loader import MINI_SYSTEM_PROMPT, LoadedModel  # noqa: E402
from seats_core.pipeline import Engine  # noqa: E402
from seats_core.synth import shape_box  # noqa: E402

IGNORE = -100
NONE = 0  # class 0 of every auxiliary target: nothing there
TRAIN_STREAM, HELDOUT_STREAM = 0, 1  # seed streams: scenes.make_set(seed * 10 + stream, ...)
CURRICULUM_KINDS = ("count_tones", "count_high", "colour_of_circle", "direction_of_colour")
BLOCK = 28  # pixels per LLM video token side (patch 14 x merge 2)
MIN_OVERLAP = 0.25  # a video token "contains" a shape when the shape covers this fraction of its block


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=750, help="optimizer steps (one clip each)")
    p.add_argument("--minutes", type=float, default=33.0, help="stop (and save) after this wall time")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--aux-weight", type=float, default=0.5)
    p.add_argument(
        "--fusion-layer", type=int, default=8, help="cross-modal auxiliary targets after this layer"
    )
    p.add_argument("--questions", type=int, default=4, help="questions asked per clip (chat turns)")
    p.add_argument(
        "--deep-every",
        type=int,
        default=4,
        help="also score the answer from every this-many decoder layers through the final norm + LM head (0: off)",
    )
    p.add_argument(
        "--curriculum",
        type=int,
        default=300,
        help="the first steps ask only single-modality questions (CURRICULUM_KINDS); 0: off",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--min-accuracy", type=float, default=0.8, help="export to --out only at this held-out accuracy"
    )
    p.add_argument("--heldout", type=int, default=96, help="held-out questions for the periodic check")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--work", default="/tmp/seats_train_mini", help="checkpoints and log")
    p.add_argument("--out", default=str(mini.MINI_DIR))
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# Data


def train_sample(args, step: int) -> scenes.Sample:
    """The step's training scene: a single-modality kind during the curriculum, else drawn from scenes.MIX."""
    seed = sample_seed(args.seed, TRAIN_STREAM, step)
    kind = CURRICULUM_KINDS[step % len(CURRICULUM_KINDS)] if step < args.curriculum else None
    return scenes.make_sample(seed, kind)


def sample_seed(seed: int, stream: int, i: int) -> int:
    """Seed of the i-th sample of a stream; streams of different (seed, stream) never overlap."""
    return (seed * 10 + stream) * 10_000_000 + i


def _trim_audio(inputs: dict) -> dict:
    """Drop the feature extractor's zero padding: the audio tower reads only the valid frames (same output)."""
    inputs = dict(inputs)
    valid = int(inputs["feature_attention_mask"].sum())
    inputs["input_features"] = inputs["input_features"][..., :valid].contiguous()
    inputs["feature_attention_mask"] = inputs["feature_attention_mask"][..., :valid]
    return inputs


def prepare(engine: Engine, sample: scenes.Sample) -> dict:
    """Inputs of one question exactly as at inference (Engine.prepare), for the held-out check."""
    prep = engine.prepare(sample.clip(scenes.MINI_MEDIA), sample.question)
    tok = engine.model.processor.tokenizer
    return {
        "inputs": _trim_audio(prep.inputs),
        "answer": torch.tensor(tok.convert_tokens_to_ids(sample.answer)),
        "kind": sample.kind,
    }


def pick_questions(sample: scenes.Sample, k: int) -> list[dict]:
    """The sample's own question first, then up to k-1 other answerable ones about the same scene (seeded)."""
    rng = np.random.default_rng(sample.seed)
    others = [q for q in scenes.answerable(sample.slots) if q["question"] != sample.question]
    picked, kinds = [], {sample.kind}
    for i in rng.permutation(len(others)).tolist():  # prefer kinds not asked yet
        if len(picked) < k - 1 and others[i]["kind"] not in kinds:
            picked.append(others[i])
            kinds.add(others[i]["kind"])
    first = {"question": sample.question, "answer": sample.answer}
    return [first] + picked


def prepare_dialogue(engine: Engine, sample: scenes.Sample, k: int) -> dict:
    """One clip, up to k questions as consecutive chat turns; the first turn is exactly the inference prompt.

    Answer targets: at every assistant turn, the option letter and then <|im_end|>.
    """
    clip = sample.clip(scenes.MINI_MEDIA)
    qs = pick_questions(sample, k)
    msgs = [{"role": "system", "content": [{"type": "text", "text": engine.model.system_prompt}]}]
    for j, q in enumerate(qs):
        user = [{"type": "video"}] if j == 0 else []
        msgs.append({"role": "user", "content": user + [{"type": "text", "text": q["question"]}]})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": q["answer"]}]})
    processor = engine.model.processor
    text = processor.apply_chat_template(msgs, add_generation_prompt=False, tokenize=False)
    assert text.startswith(engine.prompt(sample.question)), "first turn must equal the inference prompt"
    inputs = OmniAdapter.processor_inputs(
        processor, text, clip.frames, clip.fps, clip.audio, clip.sample_rate
    )
    inputs = _trim_audio(inputs)
    tok = processor.tokenizer
    letters = torch.tensor([tok.convert_tokens_to_ids(c) for c in scenes.LETTERS])
    ids = inputs["input_ids"][0]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    # An answer is a letter directly followed by <|im_end|> (option letters in questions are followed by ")").
    at = (torch.isin(ids[:-1], letters) & (ids[1:] == im_end)).nonzero().squeeze(-1)  # (k,)
    assert at.numel() == len(qs), (at.numel(), len(qs))
    targets = torch.full_like(ids, IGNORE)  # targets[p] = the token the logits at p must predict
    targets[at - 1] = ids[at]
    targets[at] = im_end
    labels = aux_labels(engine, sample, clip, inputs)
    return {"inputs": inputs, "targets": targets, "labels": labels, "questions": len(qs)}


def aux_labels(engine: Engine, sample: scenes.Sample, clip, inputs: dict) -> dict:
    """Per non-text token targets (long tensors over the full sequence, IGNORE where not applicable)."""
    lay = build_layout(
        inputs["input_ids"],
        engine.adapter.token_ids,
        inputs["video_grid_thw"],
        float(inputs["video_second_per_grid"].reshape(-1)[0]),
    )
    S = inputs["input_ids"].shape[1]
    colours, directions = list(scenes.COLOURS), list(scenes.DIRECTIONS)
    names = ("v_colour", "v_direction", "a_tone", "a_colour", "a_direction")
    lab = {k: torch.full((S,), IGNORE, dtype=torch.long) for k in names}
    shapes = scenes._shape_dicts(sample.slots)
    sx = clip.frames.shape[2] / sample.frames.shape[2]
    sy = clip.frames.shape[1] / sample.frames.shape[1]
    pitch = {None: NONE, "low": 1, "high": 2}
    for i in (lay.modality == VIDEO).nonzero().squeeze(-1).tolist():
        t, r, c = int(lay.t[i]), int(lay.row[i]), int(lay.col[i])
        times = clip.frame_times[2 * t : 2 * t + 2]
        slot_i = min(int(times[0] // scenes.SLOT_S), len(sample.slots) - 1)
        slot = sample.slots[slot_i]
        covered = max(_overlap(shape_box(shapes[slot_i], tt), r, c, sx, sy) for tt in times)
        inside = covered >= MIN_OVERLAP
        lab["v_colour"][i] = 1 + colours.index(slot.colour) if inside else NONE
        lab["v_direction"][i] = 1 + directions.index(slot.direction) if inside else NONE
    for i in (lay.modality == AUDIO).nonzero().squeeze(-1).tolist():
        mid = 0.5 * (float(lay.start_s[i]) + float(lay.end_s[i]))
        slot_i = min(int(mid // scenes.SLOT_S), len(sample.slots) - 1)
        slot = sample.slots[slot_i]
        frac = mid / scenes.SLOT_S - slot_i
        sounding = slot.tone is not None and scenes.TONE_SPAN[0] <= frac < scenes.TONE_SPAN[1]
        lab["a_tone"][i] = pitch[slot.tone] if sounding else NONE
        lab["a_colour"][i] = colours.index(slot.colour)
        lab["a_direction"][i] = directions.index(slot.direction)
    return lab


def _overlap(box, row: int, col: int, sx: float, sy: float) -> float:
    """Fraction of the 28x28 block (row, col) of the resized frame covered by a source-pixel box."""
    if box is None:
        return 0.0
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    bx0, by0 = col * BLOCK, row * BLOCK
    w = max(0.0, min(x1, bx0 + BLOCK) - max(x0, bx0))
    h = max(0.0, min(y1, by0 + BLOCK) - max(y0, by0))
    return w * h / (BLOCK * BLOCK)


# ---------------------------------------------------------------------------------------------------------------
# Model, heads, loss


AUX_CLASSES = {
    "v_colour": 1 + len(scenes.COLOURS),
    "v_direction": 1 + len(scenes.DIRECTIONS),
    "a_tone": 3,
    "a_colour": len(scenes.COLOURS),
    "a_direction": len(scenes.DIRECTIONS),
}
ENCODER_TARGETS = ("v_colour", "v_direction", "a_tone")  # read from the LLM input embeddings
# Read after --fusion-layer. No "v_tone": with use_audio_in_video a grid's video tokens come before its audio
# tokens, so under the causal mask a video token cannot see whether its own moment has a tone (loss stayed ln 3).
FUSION_TARGETS = ("a_colour", "a_direction")


def build(seed: int):
    torch.manual_seed(seed)
    tokenizer = mini.build_tokenizer()
    processor = mini.build_processor(tokenizer)
    config = mini.build_config(tokenizer)
    config._attn_implementation = "sdpa"
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    model = Qwen2_5OmniThinkerForConditionalGeneration(config).float()
    hidden = config.text_config.hidden_size
    heads = torch.nn.ModuleDict({k: torch.nn.Linear(hidden, n) for k, n in AUX_CLASSES.items()})
    engine = Engine(LoadedModel("mini", model, processor, MINI_SYSTEM_PROMPT, True))
    return engine, model, heads


def losses(model, heads, item: dict, fusion_layer: int, deep_every: int, letter_ids: list[int]) -> dict:
    """Answer cross-entropies and the auxiliary per-token cross-entropies.

    "answer": letters and <|im_end|> at the last layer; "letter": the letter positions only (the number to
    watch: ln 4 = chance); "deep": the letter targets read from every `deep_every`-th decoder layer through
    the final norm and the LM head (short gradient paths into the 28-layer stack).
    """
    out = model(**item["inputs"], use_audio_in_video=True, output_hidden_states=True)
    t = item["targets"]
    mask = t != IGNORE
    result = {"answer": F.cross_entropy(out.logits[0, mask].float(), t[mask])}  # letters and <|im_end|>
    is_letter = mask & torch.isin(t, torch.tensor(letter_ids))
    result["letter"] = F.cross_entropy(out.logits[0, is_letter].float(), t[is_letter]).detach()
    hs = out.hidden_states
    if deep_every:
        n = len(hs) - 1
        deep = [
            F.cross_entropy(
                model.lm_head(model.model.language_model.norm(hs[k][0, is_letter])).float(), t[is_letter]
            )
            for k in range(deep_every, n, deep_every)
        ]
        result["deep"] = sum(deep) / len(deep)
    for name in ENCODER_TARGETS + FUSION_TARGETS:
        h = hs[0] if name in ENCODER_TARGETS else hs[fusion_layer]
        y = item["labels"][name]
        mask = y != IGNORE
        result[name] = F.cross_entropy(heads[name](h[0, mask]).float(), y[mask])
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
        "accuracy": correct / len(items),
        "letter_rate": is_letter / len(items),
        "by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
    }


def lr_at(step: int, args) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints and export


def save_ckpt(path: Path, model, heads, opt, step: int, log: list, elapsed_s: float) -> None:
    tmp = path.with_suffix(".tmp")
    state = {"model": model.state_dict(), "heads": heads.state_dict(), "opt": opt.state_dict()}
    torch.save({**state, "step": step, "log": log, "elapsed_s": elapsed_s, "rng": torch.get_rng_state()}, tmp)
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
    np.random.seed(args.seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "last.pt"
    engine, model, heads = build(args.seed)
    params = list(model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.98))
    step, log, done_s = 0, [], 0.0  # done_s: training seconds of earlier (resumed) segments
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        heads.load_state_dict(state["heads"])
        opt.load_state_dict(state["opt"])
        step, log, done_s = state["step"], state["log"], state["elapsed_s"]
        torch.set_rng_state(state["rng"])
        print(f"resumed at step {step}", flush=True)
    tok = engine.model.processor.tokenizer
    letter_ids = [tok.convert_tokens_to_ids(c) for c in scenes.LETTERS]

    t_prep = time.perf_counter()
    heldout = []
    for i in range(args.heldout):
        s = scenes.make_sample(sample_seed(args.seed, HELDOUT_STREAM, i))
        heldout.append(prepare(engine, s))
    print(f"held-out set: {len(heldout)} questions in {time.perf_counter() - t_prep:.1f} s", flush=True)

    model.train()
    t0 = time.perf_counter() - done_s  # --minutes counts the whole run across resumes
    run_avg: dict[str, float] = {}
    while step < args.steps and (time.perf_counter() - t0) < args.minutes * 60:
        sample = train_sample(args, step)
        item = prepare_dialogue(engine, sample, args.questions)
        parts = losses(model, heads, item, args.fusion_layer, args.deep_every, letter_ids)
        aux_names = ENCODER_TARGETS + FUSION_TARGETS
        aux = sum(parts[k] for k in aux_names) / len(aux_names)
        loss = parts["answer"] + parts.get("deep", 0.0) + args.aux_weight * aux
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        for k, v in parts.items():
            run_avg[k] = 0.98 * run_avg.get(k, v.item()) + 0.02 * v.item()
        if step % 50 == 0:
            el = time.perf_counter() - t0
            msg = " ".join(f"{k}={v:.3f}" for k, v in run_avg.items())
            print(f"step {step} {el / 60:.1f} min lr={lr_at(step, args):.2e} {msg}", flush=True)
        if step % args.eval_every == 0:
            ev = evaluate(model, heldout, letter_ids)
            log.append({"step": step, "minutes": round((time.perf_counter() - t0) / 60, 2), **ev})
            print(f"eval step {step}: {ev}", flush=True)
        if step % args.ckpt_every == 0:
            save_ckpt(ckpt, model, heads, opt, step, log, time.perf_counter() - t0)

    save_ckpt(ckpt, model, heads, opt, step, log, time.perf_counter() - t0)
    train_min = (time.perf_counter() - t0) / 60
    ev = evaluate(model, heldout, letter_ids)
    log.append({"step": step, "minutes": round(train_min, 2), **ev})
    print(f"final eval step {step}: {ev}", flush=True)
    cfg = model.config
    record = {
        "what": "miniature Qwen2.5-Omni thinker trained on seats_core.scenes (scripts/train_mini.py)",
        "seed": args.seed,
        "steps": step,
        "questions_per_clip": args.questions,
        "clips_seen": step,
        "batch_size": 1,
        "optimizer": {
            "name": "AdamW",
            "lr": args.lr,
            "betas": [0.9, 0.98],
            "weight_decay": args.weight_decay,
        },
        "schedule": {"warmup": args.warmup, "cosine_to": 0.1, "planned_steps": args.steps},
        "grad_clip": 1.0,
        "aux": {
            "weight": args.aux_weight,
            "encoder_targets": list(ENCODER_TARGETS),
            "fusion_targets": list(FUSION_TARGETS),
            "fusion_layer": args.fusion_layer,
        },
        "data": {
            "generator": "seats_core.scenes.make_sample",
            "train_seeds": f"sample_seed({args.seed}, {TRAIN_STREAM}, 0..{step - 1})",
            "heldout_seeds": f"sample_seed({args.seed}, {HELDOUT_STREAM}, 0..{args.heldout - 1})",
            "mix": scenes.MIX,
            "durations_s": list(scenes.DURATIONS_S),
            "frame_size": list(scenes.FRAME_SIZE),
        },
        "media": {"min_pixels": scenes.MINI_MEDIA.min_pixels, "max_pixels": scenes.MINI_MEDIA.max_pixels},
        "widths": {
            "hidden": cfg.text_config.hidden_size,
            "layers": cfg.text_config.num_hidden_layers,
            "heads": cfg.text_config.num_attention_heads,
            "kv_heads": cfg.text_config.num_key_value_heads,
            "vision_hidden": cfg.vision_config.hidden_size,
            "audio_d_model": cfg.audio_config.d_model,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_minutes": round(train_min, 2),
        "threads": args.threads,
        "deep_every": args.deep_every,
        "curriculum": {"steps": args.curriculum, "kinds": list(CURRICULUM_KINDS)},
        "heldout_first_token_accuracy": ev,
        "log": log,
    }
    (work / mini.METADATA_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if ev["accuracy"] < args.min_accuracy:
        print(f"held-out accuracy {ev['accuracy']:.3f} < {args.min_accuracy}: not exported", flush=True)
        return 1
    export(Path(args.out), engine, model, record)
    print(f"saved to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
