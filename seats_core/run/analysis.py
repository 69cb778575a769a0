"""The layer-wise dependency analysis (SEATS_SPEC §8, issue 3 part 2): where does the answer need its media?

    python -m seats_core analyze CLIP --question TEXT [--model mini] [--json OUT]

For one clip and question, from a single unpruned prefill:

- attention: for every decoder layer, the head-mean attention of the question tokens (the text after the
  media block: the user's question and the assistant prompt) to every key, recomputed from the layer's input
  (input norm -> q/k projections -> M-RoPE -> GQA repeat -> causal softmax) for those query rows only, so no
  full attention map is ever built. Reported as the mass on text / video / audio keys and per 2-second window.
- knockout: for k = 0..L, drop all video (or all audio, or both) tokens from layer k's input on and run layers
  k..L-1 on the survivors alone (kept tokens keep their positions): the first answer token's distribution is
  compared with the full run's (KL(full || knocked)) and the full run's greedy token's log-probability is
  read off. k = L is the full run itself. One prefill is captured; each k continues from its stored input.
- fusion: in a run of its own, every query row's attention mass on text / video / audio keys at every layer
  (seats_core.run.fusion), with the last prompt token's and the first answer token's rows over the clip's tokens.
- verdict: from the "both" knockout curve, either "this answer never depended on the clip" (the curve never
  rises above KL_FLOOR) or the layer from which removing every clip token stops mattering (`fusion_verdict`).
  Every page, tour, report and CLI line that speaks of fusion prints this one verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..models.family import FamilyAdapter as OmniAdapter
from ..models.hooks import Hooks
from ..prune.layout import AUDIO, TEXT, VIDEO, TokenLayout, build_layout
from .fusion import measure_fusion

MODES = {"video": (VIDEO,), "audio": (AUDIO,), "both": (VIDEO, AUDIO)}  # knockout mode -> modalities removed
SHARE_ORDER = (TEXT, VIDEO, AUDIO)  # order of the three numbers in attention.share
# The verdict's floor, in nats of KL(full || knocked) on the first answer token. For a confident answer (p ~ 1, as
# the miniature's option letters are), the KL is about -ln p_knocked(answer): 0.05 nats = the knocked-out run
# still gives that answer >= 95% (e^-0.05) of its probability. That is far above the analysis' numerical noise
# (~1e-6 in fp32, ~1e-3 in bf16) and far below the peaks of clips whose answer needs them (0.66-7.7 nats on the
# shipped examples that need sound and picture); the test pattern's 0.0013 and count_tones' 0.0002 lie under it.
KL_FLOOR = 0.05


@dataclass
class Capture:
    """Decoder-layer inputs of one unpruned prefill (batch 1).

    hidden[l]: (1, S, D) input of decoder layer l; final: (1, S, D) output of the last layer (before the final
    norm); cos, sin: (1, S, d) M-RoPE tables of the prompt (shared by all layers).
    """

    hidden: list[torch.Tensor]
    final: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    extras: dict | None = (
        None  # per-layer injections (Qwen3-Omni DeepStack): {"embeds": [...], "mask": (1, S)}
    )

    def inject(self, ad: OmniAdapter, keep: torch.Tensor):
        """`run_layers`' inject(i, hidden) for a continuation on positions `keep`, or None without injections.

        After layer i < len(embeds), the video tokens among `keep` get their DeepStack rows, as in the full run.
        """
        if self.extras is None:
            return None
        mask = self.extras["mask"].reshape(-1).to(keep.device)  # (S,) bool, video positions
        rank = mask.long().cumsum(0) - 1  # (S,) k-th video token
        rows = mask[keep].nonzero().squeeze(-1)  # (n,) video rows among the kept
        feature_rows = rank[keep[rows]]  # (n,)
        embeds = self.extras["embeds"]

        def inject(i: int, hidden: torch.Tensor) -> torch.Tensor:
            return ad.add_deepstack(hidden, rows, embeds[i][feature_rows]) if i < len(embeds) else hidden

        return inject


def capture_prefill(ad: OmniAdapter, inputs: dict, **call_kwargs) -> Capture:
    """Run one unpruned prefill of the thinker and keep every decoder layer's input (forward hooks)."""
    hidden: dict[int, torch.Tensor] = {}
    rope: list = []
    final: list[torch.Tensor] = []

    def pre(i):
        def hook(module, args, kwargs):
            hidden[i] = ad.split_layer_call(args, kwargs)
            if not rope:
                rope.append(ad.layer_rope(kwargs))

        return hook

    extras: list = []

    def peek(module, args, kwargs):  # read (not take) the decoder's per-layer injections; the run is stock
        extras.append(ad.take_decoder_extras(kwargs)[1])

    with Hooks() as hooks, ad.last_position_logits():
        for i, layer in enumerate(ad.layers):
            hooks.pre(layer, pre(i))
        hooks.pre(ad.text_model, peek)
        hooks.post(ad.layers[-1], lambda m, a, out: final.append(out), with_kwargs=False)
        ad.thinker(**inputs, **call_kwargs, use_cache=False)
    if len(hidden) != ad.num_layers or not final:
        raise RuntimeError("the prefill did not pass through every decoder layer")
    cos, sin = rope[0]
    return Capture(
        [hidden[i] for i in range(ad.num_layers)], final[-1], cos, sin, extras[0] if extras else None
    )


def question_rows(layout: TokenLayout, input_ids: torch.Tensor, delimiter_ids) -> torch.Tensor:
    """Positions (R,) of the text after the media block: the question and the assistant prompt.

    The media block's closing markers (audio/vision eos) are not part of the question.
    """
    ids = input_ids.reshape(-1).cpu()
    nontext = layout.nontext.nonzero().squeeze(-1)
    start = int(nontext.max()) + 1 if nontext.numel() else 0
    pos = torch.arange(start, ids.numel())
    keep = ~torch.isin(ids[pos], torch.tensor(list(delimiter_ids), dtype=ids.dtype))
    rows = pos[keep]
    if rows.numel() == 0:
        raise ValueError("the prompt has no text after the media block to analyse")
    return rows


def attention_rows(ad: OmniAdapter, cap: Capture, layer: int, rows: torch.Tensor) -> torch.Tensor:
    """Head-mean causal attention (R, S) of query positions `rows` at decoder layer `layer` (float32)."""
    hidden = cap.hidden[layer]
    rows = rows.to(hidden.device)
    q, k, scale = ad.query_key_rows(layer, hidden, cos=cap.cos, sin=cap.sin, rows=rows)  # (H,R,d), (H,S,d)
    logits = (q.float() @ k.float().transpose(1, 2)) * scale  # (H, R, S)
    keys = torch.arange(k.shape[1], device=hidden.device)
    logits = logits.masked_fill(keys[None, :] > rows[:, None], float("-inf"))  # causal: key <= query
    return logits.softmax(-1).mean(0)  # (R, S)


def attention_shares(probs: torch.Tensor, layout: TokenLayout) -> dict:
    """Mass of the question rows' attention (R, S) on each modality and on each window of video / audio.

    Every row sums to 1 over its keys; the shares are row means, so share sums to 1 as well.
    Returns {"share": [text, video, audio], "video_windows": [W floats], "audio_windows": [W floats]}.
    """
    per_key = probs.double().mean(0).cpu()  # (S,) mean over question rows
    mod, win = layout.modality, layout.window
    share = [float(per_key[mod == m].sum()) for m in SHARE_ORDER]
    out = {"share": share}
    for name, m in (("video_windows", VIDEO), ("audio_windows", AUDIO)):
        sel = mod == m
        w = torch.zeros(layout.num_windows, dtype=torch.float64)
        w.index_add_(0, win[sel], per_key[sel])
        out[name] = w.tolist()
    return out


def continue_from(ad: OmniAdapter, cap: Capture, layer: int, keep: torch.Tensor) -> torch.Tensor:
    """Log-probabilities (V,) of the first answer token when only positions `keep` (sorted) enter layer `layer`.

    layer == num_layers returns the full run's distribution (nothing left to run).
    """
    if layer >= ad.num_layers:
        hidden = cap.final
    else:
        idx = keep.to(cap.cos.device)
        hidden = ad.run_layers(
            cap.hidden[layer][:, idx],
            cap.cos[:, idx],
            cap.sin[:, idx],
            start=layer,
            inject=cap.inject(ad, idx),
        )  # (1, K, D)
    return torch.log_softmax(ad.last_logits(hidden).float(), dim=-1)  # (V,)


def kl_divergence(logp_ref: torch.Tensor, logp: torch.Tensor) -> float:
    """KL(ref || other) of two log-probability vectors (V,), in nats."""
    return float((logp_ref.exp() * (logp_ref - logp)).sum().clamp_min(0.0))


def knockout(ad: OmniAdapter, cap: Capture, layout: TokenLayout, progress=None) -> tuple[dict, int]:
    """KL and answer log-prob for each mode in MODES and each k = 0..L. Returns (curves, answer token id)."""
    L = ad.num_layers
    full = continue_from(ad, cap, L, torch.arange(layout.length))
    answer = int(full.argmax())
    curves = {}
    total, done = len(MODES) * L, 0
    for mode, removed in MODES.items():
        keep = (~torch.isin(layout.modality, torch.tensor(removed))).nonzero().squeeze(-1)  # (K,)
        if int(keep[-1]) != layout.length - 1:
            raise ValueError("the last prompt position must be a text token")
        kl, lp = [], []
        for k in range(L + 1):
            logp = full if k == L else continue_from(ad, cap, k, keep)
            kl.append(0.0 if k == L else kl_divergence(full, logp))
            lp.append(float(logp[answer]))
            if k < L:
                done += 1
                if progress is not None:
                    progress(0.5 + 0.5 * done / total, f"knockout {mode}: layer {k}")
        curves[mode] = {"kl": kl, "answer_logprob": lp, "kept_tokens": int(keep.numel())}
    return curves, answer


@dataclass(frozen=True)
class Verdict:
    """Where fusion completes for one clip, from its "both" knockout curve (what `analyze --json` calls verdict).

    complete_from: the knockout's k (0-based: every clip token removed from layer k's input on; the explorer's
    1-based decoder layer k + 1) from which the curve stays at or under `floor`, or None when it never rises above
    it ("this answer never depended on the clip"); max_kl: the curve's maximum, in nats; text: the one sentence
    every page prints.
    """

    complete_from: int | None
    max_kl: float
    floor: float
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def fusion_verdict(kl: Sequence[float], floor: float = KL_FLOOR) -> Verdict:
    """The verdict of a knockout curve kl[k], k = 0..L (KL in nats; kl[L] = 0 is the full run itself).

    If no k moves the answer by more than `floor`, no layer is claimed. Otherwise complete_from is the first k with
    kl[j] <= floor for every j >= k: removing every clip token from decoder layer k + 1 (1-based) on stops
    mattering, while removing them one layer earlier still moves the answer.
    """
    kl = [float(x) for x in kl]
    if not kl or any(x != x for x in kl):
        raise ValueError("the knockout curve is empty or holds NaN")
    if floor <= 0:
        raise ValueError(f"the floor must be positive, got {floor}")
    peak = max(kl)
    if peak <= floor:
        text = (
            f"This answer never depended on the clip: removing every video and audio token, from any layer on, "
            f"moves it by at most {peak:.2g} nats (KL), under the {floor:g}-nat floor. No fusion layer is claimed."
        )
        return Verdict(None, peak, floor, text)
    k = next(k for k in range(len(kl)) if all(x <= floor for x in kl[k:]))  # >= 1: kl[k - 1] > floor
    L = len(kl) - 1
    if k >= L:
        text = (
            f"This answer needs the clip up to the last decoder layer: removing every video and audio token before "
            f"layer {L} still moves it by {kl[L - 1]:.2g} nats (KL; floor {floor:g}, at most {peak:.2g})."
        )
    else:
        text = (
            f"Fusion is complete from decoder layer {k + 1} on: removing every video and audio token from there "
            f"moves the answer by at most {max(kl[k:]):.2g} nats (KL), under the {floor:g}-nat floor; removing "
            f"them from layer {k} on still moves it by {kl[k - 1]:.2g} (at most {peak:.2g})."
        )
    return Verdict(k, peak, floor, text)


def verdict(analysis: dict | None, floor: float = KL_FLOOR) -> Verdict | None:
    """The verdict of an analysis result (`analyze`'s dict, also one saved before verdicts existed), recomputed
    from its "both" knockout curve: the one call behind every sentence about where fusion completes. None when
    there is no curve to judge (no analysis, or one without a knockout)."""
    kl = ((analysis or {}).get("knockout") or {}).get("both", {}).get("kl")
    return fusion_verdict(kl, floor) if kl else None


@torch.inference_mode()
def analyze(engine, prep, *, progress=None) -> dict:
    """Attention shares and knockout curves for one prepared clip + question (JSON-ready dict).

    engine: a `seats_core.run.pipeline.Engine`; prep: its `prepare(...)` result. progress: optional callable
    progress(fraction in [0, 1], message), called after each layer.
    """
    ad: OmniAdapter = engine.adapter
    inputs = prep.inputs
    ids = ad.call_input_ids(inputs)
    if ids.shape[0] != 1:
        raise ValueError("the analysis runs one clip at a time (batch 1)")
    t0 = time.perf_counter()
    grid = ad.call_video_grid(inputs)
    spg = ad.inputs_seconds_per_grid(inputs) if grid is not None else 1.0
    layout = build_layout(ids[0], ad.token_ids, grid, spg, **ad.layout_kwargs(spg))
    cap = capture_prefill(ad, inputs, **ad.generate_kwargs(prep.clip.has_audio))
    t1 = time.perf_counter()
    rows = question_rows(layout, ids, ad.media_delimiter_ids)
    attention = {"share": [], "video_windows": [], "audio_windows": []}
    for layer in range(ad.num_layers):
        shares = attention_shares(attention_rows(ad, cap, layer, rows), layout)
        for key, value in shares.items():
            attention[key].append(value)
        if progress is not None:
            progress(0.5 * (layer + 1) / ad.num_layers, f"attention: layer {layer}")
    t2 = time.perf_counter()
    fusion = measure_fusion(engine.model.thinker, inputs, has_audio=prep.clip.has_audio)  # a run of its own
    t_fusion = time.perf_counter()
    curves, answer = knockout(ad, cap, layout, progress)
    t3 = time.perf_counter()
    tokenizer = getattr(engine.model.processor, "tokenizer", None)
    from .pipeline import clip_summary, describe_device

    return {
        "num_layers": ad.num_layers,
        "family": ad.family,
        "model": engine.model.name,
        "question": prep.question,
        "clip": clip_summary(prep.clip),
        "prompt_tokens": layout.length,
        "token_counts": layout.counts(),
        "num_windows": layout.num_windows,
        "seconds_per_window": layout.seconds_per_window,
        "question_positions": rows.tolist(),
        "answer_token_id": answer,
        "answer_token": tokenizer.decode([answer]) if tokenizer is not None else None,
        "attention": attention,
        "knockout": curves,
        "fusion": fusion.to_dict(),
        "verdict": fusion_verdict(curves["both"]["kl"]).to_dict(),
        "method": "attention: head-mean causal softmax of the question rows, recomputed from each layer's input; "
        "knockout: tokens removed from layer k's input on, layers k..L-1 rerun on the rest, KL(full || knocked) "
        "of the first answer token in nats (SEATS_SPEC §8)",
        "timing_ms": {
            "prefill": round((t1 - t0) * 1e3, 3),
            "attention": round((t2 - t1) * 1e3, 3),
            "fusion": round((t_fusion - t2) * 1e3, 3),
            "knockout": round((t3 - t_fusion) * 1e3, 3),
        },
        "device": describe_device(cap.cos.device),
    }


def summary(result: dict) -> str:
    """A few readable lines: attention shares per layer and where each knockout curve stops hurting."""
    L = result["num_layers"]
    lines = [
        f"{result['model']}: {L} decoder layers, {result['prompt_tokens']} prompt tokens "
        f"{result['token_counts']}, {result['num_windows']} windows; first answer token "
        f"{result['answer_token']!r} (id {result['answer_token_id']})",
        f"{'layer':>5} {'text':>7} {'video':>7} {'audio':>7}   " + "  ".join(f"KL[{m}]" for m in MODES),
    ]
    for k in range(L):  # k = L would be the full run itself: no layer to attend, nothing knocked out (KL 0)
        share = result["attention"]["share"][k]
        kls = "  ".join(f"{result['knockout'][m]['kl'][k]:>9.3g}" for m in MODES)
        lines.append(f"{k:>5} {share[0]:>7.3f} {share[1]:>7.3f} {share[2]:>7.3f}   {kls}")
    lines.append("share: question tokens' head-mean attention mass; KL: from layer k on without the modality")
    v = verdict(result)
    if v is not None:
        lines.append(v.text)
    return "\n".join(lines)


def stderr_progress(steps: int = 10):
    """A progress(fraction, message) for `analyze` that prints a line on stderr each 1/steps of the way."""
    shown = [-1]

    def progress(fraction: float, message: str) -> None:
        if int(fraction * steps) > shown[0]:
            shown[0] = int(fraction * steps)
            print(f"analyze: {fraction:4.0%} {message}", file=sys.stderr, flush=True)

    return progress


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .pipeline import add_engine_arguments

    p.add_argument("clip", help="video file with sound (mp4, webm, mov, ...)")
    p.add_argument("--question", required=True)
    add_engine_arguments(p)
    p.add_argument("--json", dest="json_out", default=None, help="write the analysis here")


def main(args: argparse.Namespace) -> int:
    from .media import MediaError
    from .pipeline import Engine

    if not Path(args.clip).exists():
        raise MediaError(f"{args.clip}: not found")
    print(f"analyze: loading {args.model}, decoding {args.clip}", file=sys.stderr, flush=True)
    engine = Engine(args.model, device=args.device, attn=args.attn)
    prep = engine.prepare(args.clip, args.question)
    result = analyze(engine, prep, progress=stderr_progress())
    print(summary(result))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
        print(f"analysis written to {args.json_out}")
    return 0
