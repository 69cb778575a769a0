"""One clip, one question, one method: decode -> processor -> generate with hooks -> a RunRecord.

The RunRecord (seats_core.run.record) is the contract shared by the CLI (`--json`), the explorer and the evaluation
harness; `Engine.run` returns it complete, so no caller adds to it afterwards.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..models.family import get_adapter
from ..models.loader import LoadedModel, load_model
from ..prune.attach import Pruner
from ..prune.config import SeatsConfig
from ..prune.layout import MODALITY_NAMES, TEXT, VIDEO
from .flops import CONVENTION, GENERATE_CONVENTION, PAPER_CONVENTION, LLMDims, prefill_flops_both
from .measure import StageTimer, peak_memory_bytes, sync
from .media import Clip, MediaConfig, load_clip
from .record import RunRecord, geometry_of

MAX_QUESTION_CHARS = 2000


class InputError(ValueError):
    """Bad request (empty question, ...): one clear line for the user."""


@dataclass
class Prepared:
    """A decoded clip and the processor's tensors for one question (reusable across methods).

    media: the MediaConfig the clip was decoded with (the model's frame budget; recorded with every run).
    """

    clip: Clip
    question: str
    inputs: dict
    media: MediaConfig
    processor_ms: float


def _json_num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def add_engine_arguments(p) -> None:
    """The command-line flags that choose an Engine: --model, --device, --attn (`Engine(args.model, ...)`)."""
    p.add_argument(
        "--model",
        default="mini",
        help="'mini' (built-in Qwen2.5-Omni, offline), 'mini-qwen3' (built-in Qwen3-Omni, random weights), "
        "a hub id or a local folder",
    )
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="attention implementation")


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
        self.dims = LLMDims.from_config(self.adapter.text_config)
        self._warm = False  # a timed run (repeats > 1) has run: later ones need one warm-up only

    @property
    def num_layers(self) -> int:
        return self.adapter.num_layers

    def media(self, base: MediaConfig | None = None) -> MediaConfig:
        """`base` (default: MediaConfig()) with this model's frame budget and token block, as its family adapter
        answers it (`media_budget`): the one place every caller (CLI, explorer, eval, lmms-eval, the example
        maker) gets the frame size a clip must be decoded at for this model."""
        return replace(base or MediaConfig(), **self.adapter.media_budget(self.model.frame_tokens))

    def check_clip(self, clip: Clip) -> None:
        """Refuse a clip decoded for another family's token block (its frames would not tile into tokens)."""
        block, got = self.adapter.media_layout.token_block_px, clip.media
        if got is None or got.factor != block:
            have = "unknown settings" if got is None else f"{got.factor} px blocks"
            raise InputError(
                f"{Path(str(clip.path)).name} was decoded with {have}; {self.model.name} needs {block} px blocks: "
                "decode it with Engine.media()"
            )

    def prompt(self, question: str) -> str:
        msgs = [
            {"role": "system", "content": [{"type": "text", "text": self.model.system_prompt}]},
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
        ]
        return self.model.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def prepare(self, clip: str | Clip, question: str, media: MediaConfig | None = None) -> Prepared:
        """Decode `clip` (a path) with `media` (made by `Engine.media`; default `Engine.media()`), or take a Clip
        decoded so, and run the processor on it with the chat prompt for `question`."""
        question = (question or "").strip()
        if not question:
            raise InputError("the question is empty: ask something about the clip")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(
                f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
            )
        if not isinstance(clip, Clip):
            clip = load_clip(clip, media if media is not None else self.media())
        self.check_clip(clip)
        t1 = time.perf_counter()
        inputs = self.adapter.processor_inputs(
            self.model.processor, self.prompt(question), clip.frames, clip.fps, clip.audio, clip.sample_rate
        )
        t2 = time.perf_counter()
        inputs = {k: v.to(self.model.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        for k in self.adapter.float_input_names:  # pixels and log-mel features in the model's dtype
            if k in inputs:
                inputs[k] = inputs[k].to(self.model.dtype)
        return Prepared(clip, question, inputs, clip.media, (t2 - t1) * 1e3)

    @torch.inference_mode()
    def run(
        self,
        prep: Prepared,
        config: SeatsConfig,
        *,
        max_new_tokens: int = 16,
        repeats: int = 1,
        progress=None,
        fusion: bool = False,
    ) -> RunRecord:
        """Generate an answer under `config` and return the run's record.

        repeats > 1: warm-up runs are discarded (one; two on this Engine's first timed run, which also pays for
        allocation and kernel selection after the model load), then every stage's time is the median over
        `repeats` runs, with the min and max beside it in `timing_spread_ms`.

        fusion: also measure cross-modal fusion on this run's surviving tokens (`run.fusion`: the modality matrix
        per layer, the last prompt token's and the answer token's attention), in a separate untimed run.
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
        warmups = 0 if repeats == 1 else (1 if self._warm else 2)
        self._warm = self._warm or repeats > 1
        for i in range(repeats + warmups):
            if progress is not None:
                progress(i, repeats + warmups)
            pruner = Pruner(thinker, config, seconds_per_grid=spg)
            encoder = self.adapter.fast_encoder() if self.fast_encoder else contextlib.nullcontext()
            with encoder, pruner, StageTimer(self.adapter) as timer:
                timer.start()
                out = thinker.generate(**gen_kwargs)
                sync(device)
                total_ms = (time.perf_counter() - timer._start) * 1e3
            runs.append((out, pruner, dict(timer.ms), total_ms))
        runs = runs[warmups:]  # warm-ups discarded
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
            media_decode=round(prep.clip.decode_ms, 3),
            processor=round(prep.processor_ms, 3),
            decode_tokens_per_s=round((n_new - 1) / (decode_ms / 1e3), 3)
            if n_new > 1 and decode_ms > 0
            else None,
            repeats=repeats,
        )
        fused = None
        if fusion:  # its own run, after the timed ones: the capture never touches a measured time
            from .fusion import measure_fusion

            fused = measure_fusion(
                thinker,
                prep.inputs,
                has_audio=prep.clip.has_audio,
                config=None if config.method == "full" else config,
            ).to_dict()
        return RunRecord(
            fusion=fused,
            answer=answer,
            model=self.model.name,
            family=self.adapter.family,
            disclaimer=self.model.disclaimer,
            method=config.method,
            retention=list(pruner.config.retention),
            config=pruner.config.to_dict(),
            plan=[d.__dict__ for d in pruner.plan],
            num_layers=self.num_layers,
            question=prep.question,
            clip=clip_summary(prep.clip),
            media=prep.media.to_dict(),
            geometry=geometry_of(self, prep),
            prompt_tokens=int(prompt_len),
            new_tokens=n_new,
            tokens=token_columns(trace),
            layers=layers,
            events=trace.events,
            relevance={
                str(k): [_json_num(x) for x in v[trace.layout.nontext].tolist()]
                for k, v in trace.relevance.items()
            },
            retention_measured={k: _json_num(v) for k, v in trace.retention().items()},
            flops=flops_record(self.dims, trace.tokens_per_layer(), tokens_full),
            kv_cache_bytes=trace.kv_bytes,
            timing_ms=timing,
            timing_spread_ms=spread,
            peak_memory_bytes=peak_memory_bytes(device),
            device=describe_device(device),
            fast_encoder=self.fast_encoder,
            warnings=list(prep.clip.warnings),
        )


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


def token_columns(trace) -> dict[str, list]:
    """One value per non-text token in each record column (record.TOKEN_COLUMNS), prompt order, original
    coordinates."""
    lay = trace.layout
    idx = lay.nontext.nonzero().squeeze(-1)  # (N,)
    video = lay.modality[idx] == VIDEO
    assert not bool((lay.modality[idx] == TEXT).any())

    def where(values, mask):  # the column's value for the tokens of `mask`, None for the others
        return [int(v) if m else None for v, m in zip(values[idx].tolist(), mask.tolist())]

    return {
        "index": idx.tolist(),
        "modality": [MODALITY_NAMES[int(m)] for m in lay.modality[idx].tolist()],
        "window": lay.window[idx].tolist(),
        "t": where(lay.t, video),
        "row": where(lay.row, video),
        "col": where(lay.col, video),
        "audio_index": where(lay.audio_index, ~video),
        "start_s": [round(float(x), 4) for x in lay.start_s[idx].tolist()],
        "end_s": [round(float(x), 4) for x in lay.end_s[idx].tolist()],
        "survives_to": trace.survives_to[idx].tolist(),
        "importance": [_json_num(float(x)) for x in trace.importance[idx].tolist()],
    }


def clip_summary(clip: Clip) -> dict:
    """The record's clip entry: named by its file name only (the record holds no key named `path`)."""
    T, H, W = clip.frames.shape[:3]
    return {
        "name": Path(str(clip.path)).name,
        "duration_s": round(clip.duration, 4),
        "frames": int(T),
        "frame_size": [int(W), int(H)],
        "fps": round(clip.fps, 4),
        "has_audio": clip.has_audio,
        "source_size": list(clip.source_size),
        "source_fps": round(clip.source_fps, 4),
        "rotation": clip.rotation,
        "undecodable_frames": clip.undecodable_frames,
    }


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
