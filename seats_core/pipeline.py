"""One clip, one question, one method: decode -> processor -> generate with hooks -> a JSON-ready result.

The result dict is the contract shared by the CLI (`--json`), the explorer and the evaluation harness.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import dataclass, replace

import torch

from .attach import Pruner
from .config import SeatsConfig
from .flops import CONVENTION, GENERATE_CONVENTION, PAPER_CONVENTION, LLMDims, prefill_flops_both
from .layout import MODALITY_NAMES, TEXT
from .measure import StageTimer, peak_memory_bytes, sync
from .media import Clip, MediaConfig, load_clip
from .models.family import get_adapter
from .models.loader import LoadedModel, frame_pixels, load_model

MAX_QUESTION_CHARS = 2000


class InputError(ValueError):
    """Bad request (empty question, ...): one clear line for the user."""


@dataclass
class Prepared:
    """A decoded clip and the processor's tensors for one question (reusable across methods)."""

    clip: Clip
    question: str
    inputs: dict
    decode_ms: float
    processor_ms: float


def _json_num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


class Engine:
    """A loaded model plus everything needed to run clips through it with or without pruning."""

    def __init__(
        self,
        model: str | LoadedModel = "mini",
        *,
        device: str | None = None,
        attn: str = "sdpa",
        fast_encoder: bool = True,
    ):
        self.model = (
            model
            if isinstance(model, LoadedModel)
            else load_model(model, device=device, attn_implementation=attn)
        )
        self.adapter = get_adapter(self.model.thinker)
        # the family's fast vision encoder (same outputs), when it has one
        self.fast_encoder = fast_encoder and self.adapter.has_fast_encoder
        self.dims = self.adapter.llm_dims()

    @property
    def num_layers(self) -> int:
        return self.adapter.num_layers

    def media(self, base: MediaConfig | None = None) -> MediaConfig:
        """`base` (default: MediaConfig()) with this model's frame budget and token block.

        The miniatures have their own budgets (112 x 112, 128 x 128); a real checkpoint keeps base's token budget
        (the paper's 128-144 per frame pair) in its family's token block (28 px Qwen2.5, 32 px Qwen3).
        """
        base = base or MediaConfig()
        fields = frame_pixels(self.model.name)
        block = self.adapter.media_layout.token_block_px
        if not fields and base.factor != block:
            scale = (block / base.factor) ** 2
            fields = dict(
                factor=block,
                min_pixels=round(base.min_pixels * scale),
                max_pixels=round(base.max_pixels * scale),
            )
        return replace(base, **fields)

    def prompt(self, question: str) -> str:
        msgs = [
            {"role": "system", "content": [{"type": "text", "text": self.model.system_prompt}]},
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
        ]
        return self.model.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def prepare(self, clip: str | Clip, question: str, media: MediaConfig | None = None) -> Prepared:
        question = (question or "").strip()
        if not question:
            raise InputError("the question is empty: ask something about the clip")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(
                f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
            )
        t0 = time.perf_counter()
        if not isinstance(clip, Clip):
            clip = load_clip(clip, media or self.media())
        t1 = time.perf_counter()
        inputs = self.adapter.processor_inputs(
            self.model.processor, self.prompt(question), clip.frames, clip.fps, clip.audio, clip.sample_rate
        )
        t2 = time.perf_counter()
        inputs = {k: v.to(self.model.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        for k in self.adapter.float_input_names:  # pixels and log-mel features in the model's dtype
            if k in inputs:
                inputs[k] = inputs[k].to(self.model.dtype)
        return Prepared(clip, question, inputs, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    @torch.inference_mode()
    def run(
        self,
        prep: Prepared,
        config: SeatsConfig,
        *,
        max_new_tokens: int = 16,
        repeats: int = 1,
        progress=None,
    ) -> dict:
        """Generate an answer under `config` and return the run's JSON-ready result.

        repeats > 1: one extra warm-up run is discarded, then every stage's time is the median over `repeats`
        runs, with the min and max beside it in `timing_spread_ms`.
        """
        if repeats < 1:
            raise ValueError("repeats must be at least 1")
        thinker, device = self.model.thinker, self.model.device
        gen_kwargs = dict(
            **prep.inputs,
            **self.adapter.generate_kwargs(prep.clip.has_audio),
            max_new_tokens=max_new_tokens,
            do_sample=False,
        )
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        spg = self.adapter.inputs_seconds_per_grid(prep.inputs)
        runs = []
        for i in range(repeats + (1 if repeats > 1 else 0)):
            if progress is not None:
                progress(i, repeats)
            pruner = Pruner(thinker, config, seconds_per_grid=spg)
            encoder = self.adapter.fast_encoder() if self.fast_encoder else contextlib.nullcontext()
            with encoder, pruner, StageTimer(self.adapter) as timer:
                timer.start()
                out = thinker.generate(**gen_kwargs)
                sync(device)
                total_ms = (time.perf_counter() - timer._start) * 1e3
            runs.append((out, pruner, dict(timer.ms), total_ms))
        if repeats > 1:
            runs = runs[1:]  # warm-up discarded
        out, pruner, _, _ = runs[-1]
        trace = pruner.trace
        prompt_len = self.adapter.call_input_ids(prep.inputs).shape[-1]
        new = out[0, prompt_len:]
        answer = self.model.processor.batch_decode(new[None], skip_special_tokens=True)[0].strip()
        n_new = int(new.numel())
        layers = trace.layer_counts()
        tokens_full = [prompt_len] * self.num_layers
        per_run = [
            {
                "vision_encoder": ms.get("vision_encoder", 0.0),
                "audio_encoder": ms.get("audio_encoder", 0.0),
                "selection": p.trace.selection_ms,
                "llm_prefill": ms.get("llm_prefill", 0.0),
                "first_token": ms["first_token"],
                "decode": max(total - ms["first_token"], 0.0),
                "generate_total": total,
            }
            for _, p, ms, total in runs
        ]
        timing = {k: round(statistics.median(r[k] for r in per_run), 3) for k in per_run[0]}
        spread = {
            k: [round(min(r[k] for r in per_run), 3), round(max(r[k] for r in per_run), 3)]
            for k in per_run[0]
        }
        decode_ms = timing["decode"]
        timing.update(
            media_decode=round(prep.decode_ms, 3),
            processor=round(prep.processor_ms, 3),
            decode_tokens_per_s=round((n_new - 1) / (decode_ms / 1e3), 3)
            if n_new > 1 and decode_ms > 0
            else None,
            repeats=repeats,
        )
        return {
            "answer": answer,
            "model": self.model.name,
            "family": self.adapter.family,
            "disclaimer": self.model.disclaimer,
            "method": config.method,
            "retention": list(pruner.config.retention),
            "config": pruner.config.to_dict(),
            "plan": [d.__dict__ for d in pruner.plan],
            "num_layers": self.num_layers,
            "question": prep.question,
            "clip": clip_summary(prep.clip),
            "prompt_tokens": int(prompt_len),
            "new_tokens": n_new,
            "tokens": token_records(trace),
            "layers": layers,
            "events": trace.events,
            "relevance": {
                str(k): [_json_num(x) for x in v[trace.layout.nontext].tolist()]
                for k, v in trace.relevance.items()
            },
            "retention_measured": {k: _json_num(v) for k, v in trace.retention().items()},
            "flops": flops_record(self.dims, trace.tokens_per_layer(), tokens_full),
            "kv_cache_bytes": trace.kv_bytes,
            "timing_ms": timing,
            "timing_spread_ms": spread,
            "peak_memory_bytes": peak_memory_bytes(device),
            "device": describe_device(device),
            "fast_encoder": self.fast_encoder,
        }


def flops_record(dims: LLMDims, tokens_per_layer: list[int], tokens_full: list[int]) -> dict:
    """Analytic LLM-prefill FLOPs of a run and of the unpruned model, in both LM-head conventions, labelled.

    prefill / prefill_full: as generate() runs it; prefill_paper / prefill_full_paper: as the paper counts it.
    """
    run, full = prefill_flops_both(dims, tokens_per_layer), prefill_flops_both(dims, tokens_full)
    return {
        "prefill": run["generate"],
        "prefill_full": full["generate"],
        "prefill_paper": run["paper"],
        "prefill_full_paper": full["paper"],
        "convention": CONVENTION,
        "conventions": {"prefill": GENERATE_CONVENTION, "prefill_paper": PAPER_CONVENTION},
    }


def token_records(trace) -> list[dict]:
    """One record per non-text token, in prompt order, in original coordinates."""
    lay = trace.layout
    idx = lay.nontext.nonzero().squeeze(-1).tolist()
    out = []
    for i in idx:
        m = int(lay.modality[i])
        video = MODALITY_NAMES[m] == "video"
        out.append(
            {
                "index": i,
                "modality": MODALITY_NAMES[m],
                "window": int(lay.window[i]),
                "t": int(lay.t[i]) if video else None,
                "row": int(lay.row[i]) if video else None,
                "col": int(lay.col[i]) if video else None,
                "audio_index": None if video else int(lay.audio_index[i]),
                "start_s": round(float(lay.start_s[i]), 4),
                "end_s": round(float(lay.end_s[i]), 4),
                "survives_to": int(trace.survives_to[i]),
                "importance": _json_num(float(trace.importance[i])),
            }
        )
    assert all(int(lay.modality[i]) != TEXT for i in idx)
    return out


def clip_summary(clip: Clip) -> dict:
    T, H, W = clip.frames.shape[:3]
    return {
        "path": str(clip.path),
        "duration_s": round(clip.duration, 4),
        "frames": int(T),
        "frame_size": [int(W), int(H)],
        "fps": round(clip.fps, 4),
        "has_audio": clip.has_audio,
        "source_size": list(clip.source_size),
        "source_fps": round(clip.source_fps, 4),
    }


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
