"""Full vs SEATS vs the baselines at real Qwen-Omni shapes, side by side in one process (issue 3 part 3).

    python -m seats_core bench [--shapes mini,3b,7b,mini-qwen3,30b-a3b] [--seconds 10] [--layers N] [--json OUT]

Random weights: timing and FLOPs do not depend on weight values, so each shape's thinker is built from
`shapes.thinker_config` with a seeded random init -- no checkpoint needed.

Fake input with the real token layout: for a clip of `--seconds` at `--side` x `--side` pixels, 2 fps, with its
audio track, the prompt is built directly (no tokenizer): `FILLER_BEFORE` ordinary text ids standing for the
system prompt and chat markup, then the media block exactly as the family's stock processor lays it out with
`use_audio_in_video` (`<vision_bos><audio_bos> [V chunk][A chunk] ... <audio_eos><vision_eos>`: Qwen2.5 in
2-second chunks, Qwen3 per frame pair, by M-RoPE temporal position, see `models.tooling.media_block`; a test checks
it against the processor), then `FILLER_AFTER`
text ids for the question and the assistant prompt. Pixels and log-mel features are random; `video_grid_thw`,
the audio feature length and `video_second_per_grid` are those the processor would produce.

Each variant is one prefill as generate() runs it (the vision encoder first, then one thinker forward given
its output; no decoding; the LM head is applied to the last position only, as `logits_to_keep=1` would) under
a `Pruner`, timed with `StageTimer` (device-synchronised): vision and
audio encoders, LLM prefill (Stage-I selection and Stage-II/III scoring happen inside it, so they are
included), and the whole call = time to first token. After `--warmup` discarded rounds, the variants are run
round-robin `--repeats` times so load drift hits all alike; medians and min-max are reported, speedups as
ratios of medians against the unpruned row measured in the same run. All rows but "full (stock enc)" run with
the batched-window vision encoder (`fast_vision`).

On CPU the real shapes are too slow (and too large for a shared machine): unless given explicitly, decoder
layers, encoder depths, widths (heads and MLPs; head dims kept), clip length, frame side and vocabulary are
reduced (CPU_REDUCED: a 3b/7b run takes well under a minute and ~1 GB here) and the header says so;
`--full-shapes` runs the real ones on a CPU after printing the expected time and memory. A progress line per
variant goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..models import tooling
from ..models.base import MEL_FRAMES_PER_SECOND, media_token_ids  # noqa: F401 -- media_token_ids: for callers
from ..models.family import TRANSFORMERS_VERSION, FamilyAdapter, family_of, get_adapter, tooling_of
from ..models.qwen2_5_omni.shapes import thinker_config
from ..prune.attach import Drop, Pruner
from ..prune.config import SeatsConfig
from ..prune.methods import bench_methods
from ..run.flops import CONVENTION, LLMDims, prefill_flops, prefill_flops_both
from ..run.measure import StageTimer, peak_memory_bytes, sync

FPS = 2.0  # frame sampling of qwen-omni-utils
MIN_FRAMES = 4  # qwen-omni-utils' lower bound on sampled frames
FILLER_BEFORE = 40  # Qwen's system prompt + "<|im_start|>system/user" markup before the media block
FILLER_AFTER = 24  # a short question + "<|im_end|>\n<|im_start|>assistant\n"
IDEAL_KEEP = 0.1  # the ideal ceiling keeps 10% of each modality from layer 0, chosen without scoring
RETENTIONS = ("R10", "R25")
BASELINES = tuple(m for m in bench_methods() if m != "seats")  # the methods registry's bench rows
SHAPE_NAMES = ("mini", "3b", "7b", "mini-qwen3", "30b-a3b")
MINI_SHAPES = ("mini", "mini-qwen3")  # run at their own size everywhere
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU defaults for the real shapes (mini keeps its own): decoder layers, encoder depth, clip, vocabulary.
# 14 layers = half the 7B: SEATS' depth-scaled drop points need >= 13 (shallower ones collide or miss R).
# 30B-A3B on CPU also keeps 8 of its 128 experts (all 8 active: the routing width of the real model); widths / 8
# keep every head dim (Qwen2.5 shapes; the family adapter says what it narrowed).
CPU_REDUCED = dict(layers=14, encoder_layers=2, seconds=4.0, side=224, vocab=32768, experts=8, width=8)
GPU_DEFAULTS = dict(seconds=10.0, side=448)


# ---- model and input -----------------------------------------------------------------------------------
def shape_config(shape: str, *, layers=None, encoder_layers=None, vocab=None, experts=None, width=None):
    """Thinker config of `shape`, optionally cut to `layers` decoder layers / `encoder_layers` encoder layers, a
    smaller vocabulary (special-token ids moved to its top), fewer MoE experts and `width` times narrower (head
    dims kept), by the family's adapter.
    Returns (config, list of what was reduced)."""
    cfg = thinker_config(shape)
    notes = tooling_of(cfg).reduce_config(
        cfg, layers=layers, encoder_layers=encoder_layers, vocab=vocab, experts=experts, width=width
    )
    return cfg, notes


def build_thinker(cfg, device: torch.device, dtype: torch.dtype, attn: str = "sdpa", seed: int = 0):
    """A thinker of the config's family with seeded random weights, built directly on `device` in `dtype`."""
    cfg._attn_implementation = attn
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            thinker = family_of(cfg).thinker_class()(cfg)
    finally:
        torch.set_default_dtype(old)
    return thinker.to(device=device, dtype=dtype).eval()


def media_block(
    ids: dict, grid_thw: tuple[int, int, int], ad: FamilyAdapter, audio_tokens: int, spg: float
) -> list:
    """Token ids of one video with its audio track, interleaved as the family's processor does (use_audio_in_video).

    ids: {"vision_bos", "vision_eos", "audio_bos", "audio_eos", "video", "audio"} (checked against the adapter's);
    grid_thw of the video; ad: the family adapter; audio_tokens: audio encoder output length; spg: seconds per
    temporal grid. See `models.tooling.media_block`.
    """
    if ids != ad.media_token_ids():
        raise ValueError("media token ids differ from the model's")
    return tooling.media_block(ad, grid_thw, audio_tokens, spg)


def fake_inputs(thinker, seconds: float, side: int, seed: int = 0) -> dict:
    """Processor-shaped inputs for a clip of `seconds` at side x side, 2 fps, with audio (see module doc)."""
    ad = get_adapter(thinker)
    frames = max(MIN_FRAMES, round(seconds * FPS))
    return tooling.synthetic_inputs(
        ad, frames, FPS, side, (FILLER_BEFORE, FILLER_AFTER), seed=seed, seconds=seconds
    )


# ---- variants and measurement ---------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    kind: str  # "full", "ideal" or the method name
    config: SeatsConfig
    plan: list | None = None  # None: the method's own plan
    fast_encoder: bool = True
    times: dict = field(default_factory=dict)  # stage -> list of ms over repeats
    record: dict = field(default_factory=dict)  # token counts, KV bytes, ... of the last run


def variants(thinker) -> tuple[list[Variant], list[dict]]:
    """Rows of the table; methods the Pruner refuses at this depth (retention out of reach) come back skipped."""
    full = SeatsConfig.make("full", "R10")
    fast = get_adapter(thinker).has_fast_encoder  # rows run with the family's fast encoder when it has one
    rows = [Variant("full (stock enc)", "full", full, fast_encoder=False)] if fast else []
    rows += [
        Variant("full", "full", full, fast_encoder=fast),
        Variant(
            "ideal 10% @L0",
            "ideal",
            full,
            plan=[Drop(0, "uniform", IDEAL_KEEP, IDEAL_KEEP)],
            fast_encoder=fast,
        ),
    ]
    skipped = []
    for r in RETENTIONS:
        for method in ("seats", *BASELINES):
            cfg = SeatsConfig.make(method, r)
            try:
                Pruner(thinker, cfg)  # builds and validates the plan; attaches nothing
            except ValueError as e:
                skipped.append({"name": f"{method} {r}", "reason": str(e)})
                continue
            rows.append(Variant(f"{method} {r}", method, cfg, fast_encoder=fast))
    return rows, skipped


def measure(thinker, ad: FamilyAdapter, inputs: dict, v: Variant) -> None:
    """One timed prefill of variant `v`; appends to v.times and fills v.record."""
    device = inputs["input_ids"].device
    pruner = Pruner(thinker, v.config, plan=v.plan, seconds_per_grid=ad.inputs_seconds_per_grid(inputs))
    encoder = ad.fast_encoder() if v.fast_encoder and ad.has_fast_encoder else contextlib.nullcontext()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), encoder, pruner, StageTimer(ad) as timer, ad.last_position_logits():
        sync(device)
        t0 = time.perf_counter()
        timer.start()  # like generate(): vision encoder first, then the prefill call
        out = ad.prefill(inputs, has_audio=True, use_cache=True)
        sync(device)
        total = (time.perf_counter() - t0) * 1e3
    trace = pruner.trace
    stages = {
        "vision_encoder": timer.ms["vision_encoder"],
        "audio_encoder": timer.ms["audio_encoder"],
        "llm_prefill": timer.ms["llm_prefill"],
        "selection": trace.selection_ms,
        "importance": trace.importance_ms,  # Stage-I statistics, inside the encoders' time
        "ttft": total,
    }
    for k, ms in stages.items():
        v.times.setdefault(k, []).append(ms)
    counts = trace.layer_counts()
    v.record = dict(
        prompt_tokens=trace.layout.length,
        tokens_per_layer=trace.tokens_per_layer(),
        nontext_full=trace.layout.counts(),
        layer0=counts[0],
        kv_bytes=trace.kv_bytes,
        peak_memory_bytes=peak_memory_bytes(device),
        plan=[d.__dict__ for d in pruner.plan],
    )
    del out


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def summarize(rows: list[Variant], dims: LLMDims) -> list[dict]:
    """JSON rows with FLOPs and speedups against the unpruned rows of the same run."""
    full = next(v for v in rows if v.name == "full")
    stock = next((v for v in rows if v.name == "full (stock enc)"), full)  # families without a fast encoder
    full_flops = prefill_flops_both(dims, full.record["tokens_per_layer"])
    out = []
    for v in rows:
        t, rec = v.times, v.record
        both = prefill_flops_both(dims, rec["tokens_per_layer"])
        stats = {k: {"median": _med(x), "min": min(x), "max": max(x), "all": x} for k, x in t.items()}
        enc = [a + b for a, b in zip(t["vision_encoder"], t["audio_encoder"])]
        out.append(
            dict(
                name=v.name,
                kind=v.kind,
                retention=list(v.config.retention) if v.kind not in ("full", "ideal") else None,
                fast_encoder=v.fast_encoder,
                **rec,
                tokens_mean=sum(rec["tokens_per_layer"]) / len(rec["tokens_per_layer"]),
                flops=both["generate"],  # as generate() runs it: LM head on the last position
                flops_ratio=full_flops["generate"] / both["generate"],
                flops_paper=both["paper"],  # as the paper counts it: LM head on every position alive
                flops_ratio_paper=full_flops["paper"] / both["paper"],
                ms=stats,
                encoders_ms=_med(enc),
                llm_speedup=_med(full.times["llm_prefill"]) / _med(t["llm_prefill"]),
                ttft_speedup=_med(full.times["ttft"]) / _med(t["ttft"]),
                ttft_speedup_vs_stock=_med(stock.times["ttft"]) / _med(t["ttft"]),
                selection_pct=100 * _med(t["selection"]) / _med(t["llm_prefill"]),
                kv_ratio=rec["kv_bytes"] / full.record["kv_bytes"],
            )
        )
    return out


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cpu_mac_rate(dtype: torch.dtype, side: int = 1024, runs: int = 3) -> float:
    """Multiply-adds per second of one square GEMM on this CPU (what the estimate scales by)."""
    a, b = torch.randn(side, side).to(dtype), torch.randn(side, side).to(dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(runs):
        a @ b
    return runs * side**3 / (time.perf_counter() - t0)


def _available_memory() -> int | None:
    """Bytes of physical memory available now (Linux), or None where the OS does not say."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_estimate(cfg, seconds: float, side: int, dtype: torch.dtype, rows: int, rounds: int) -> dict:
    """Rough cost of benching `cfg` on this CPU, before building it (weights counted on the meta device).

    FLOPs per full prefill: 2 x parameters x positions for each encoder, the analytic LLM prefill (spec §6,
    1 multiply-add = 1 FLOP); pruned rows count their encoders and ~1/3 of the LLM. Time at this CPU's measured
    GEMM rate (an optimistic rate: small matrices run slower). Memory: weights plus a third for activations,
    plus what this process holds already.
    """
    meta = build_thinker(cfg, torch.device("meta"), dtype)
    ad = get_adapter(meta)
    vc = cfg.vision_config
    frames = max(MIN_FRAMES, round(seconds * FPS))
    patches = (
        (frames + frames % vc.temporal_patch_size) // vc.temporal_patch_size * (side // vc.patch_size) ** 2
    )
    mel = round(seconds * MEL_FRAMES_PER_SECOND)
    n_vis = sum(p.numel() for p in ad.visual.parameters())
    n_aud = sum(p.numel() for p in ad.audio_tower.parameters())
    n_all = sum(p.numel() for p in meta.parameters())
    video = patches // vc.spatial_merge_size**2
    prompt = FILLER_BEFORE + FILLER_AFTER + 4 + video + ad.audio_output_length(mel)
    llm = prefill_flops(LLMDims.from_config(ad.text_config), [prompt] * ad.num_layers)
    enc = n_vis * patches + n_aud * mel // 2  # multiply-adds (conv front end halves the frames)
    macs = rounds * (2 * (enc + llm) + (rows - 2) * (enc + llm / 3))
    rate = _cpu_mac_rate(dtype)
    weights = n_all * torch.finfo(dtype).bits // 8
    process = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # this process so far (Linux: KiB)
    return dict(
        params=n_all, prompt_tokens=prompt, seconds=macs / rate, rate=rate, memory=weights * 4 // 3 + process
    )


def bench_shape(shape: str, args, device: torch.device, dtype: torch.dtype) -> dict:
    reduce = device.type == "cpu" and shape not in MINI_SHAPES and not args.full_shapes

    def pick(name: str):
        given = getattr(args, name)
        return given if given is not None else (CPU_REDUCED if reduce else GPU_DEFAULTS).get(name)

    cfg, notes = shape_config(
        shape,
        layers=pick("layers"),
        encoder_layers=pick("encoder_layers"),
        vocab=pick("vocab"),
        experts=pick("experts"),
        width=pick("width"),
    )
    seconds, side = pick("seconds"), pick("side")
    n_rows = len(RETENTIONS) * (1 + len(BASELINES)) + 3  # upper bound: skipped methods are not run
    rounds = args.warmup + args.repeats
    if reduce:
        _progress(f"bench {shape}: REDUCED for CPU ({'; '.join(notes)}); --full-shapes for the real one")
    elif device.type == "cpu" and shape not in MINI_SHAPES:
        est = cpu_estimate(cfg, seconds, side, dtype, n_rows, rounds)
        _progress(
            f"bench {shape}: FULL shape on CPU: {est['params'] / 1e9:.2f} B parameters, {est['prompt_tokens']} "
            f"prompt tokens; expected peak memory ~{est['memory'] / 2**30:.1f} GiB and time ~"
            f"{est['seconds'] / 60:.0f} min ({n_rows} variants x {rounds} rounds at this CPU's "
            f"{est['rate'] / 1e9:.0f} G multiply-adds/s)"
        )
        free = _available_memory()
        if free is not None and est["memory"] > free:
            raise ValueError(
                f"--full-shapes: {shape} needs ~{est['memory'] / 2**30:.0f} GiB, this machine has "
                f"{free / 2**30:.0f} GiB available; drop --full-shapes for the reduced shape"
            )
    t0 = time.perf_counter()
    thinker = build_thinker(cfg, device, dtype, seed=args.seed)
    build_s = time.perf_counter() - t0
    ad = get_adapter(thinker)
    inputs = fake_inputs(thinker, seconds, side, seed=args.seed)
    rows, skipped = variants(thinker)
    _progress(f"bench {shape}: built in {build_s:.1f} s; {len(rows)} variants x {rounds} rounds")
    for rnd in range(rounds):
        for i, v in enumerate(rows):
            measure(thinker, ad, inputs, v)
            _progress(
                f"bench {shape}: round {rnd + 1}/{rounds}{' (warm-up)' if rnd < args.warmup else ''} "
                f"[{i + 1}/{len(rows)}] {v.name}: TTFT {v.times['ttft'][-1]:.0f} ms"
            )
            if rnd < args.warmup:
                v.times.clear()
        if args.verbose:
            print(f"  {shape}: round {rnd + 1}/{rounds} done", flush=True)
    dims = LLMDims.from_config(ad.text_config)
    result = dict(
        shape=shape,
        family=ad.family,
        reduced=notes,
        num_layers=ad.num_layers,
        seconds=seconds,
        side=side,
        grid_thw=inputs["video_grid_thw"][0].tolist(),
        prompt_tokens=int(inputs["input_ids"].shape[1]),
        dims=dims.__dict__,
        build_s=round(build_s, 2),
        rows=summarize(rows, dims),
        skipped=skipped,
    )
    del thinker
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# ---- report ----------------------------------------------------------------------------------------------
TABLE_WIDTH = 110  # columns of the default table, its header and legend (--wide prints every column)
SPREAD_LIMIT = 1.5  # a timing whose max / min over the repeats exceeds this is marked "!" and named below
TIMED = (("llm_prefill", "LLM"), ("ttft", "TTFT"))  # the timings the spread rule watches

# column -> (width spec, cell from a summarized row); WIDE_ONLY columns appear with --wide only
COLUMNS = {
    "variant": ("<18", lambda r: r["name"]),
    "tok L0": (">7", lambda r: str(sum(r["layer0"].values()))),
    "tok avg": (">7", lambda r: f"{r['tokens_mean']:.0f}"),
    "TFLOPs": (">8", lambda r: f"{r['flops'] / 1e12:.3g}"),
    "FLOPs x": (">7", lambda r: f"{r['flops_ratio']:.2f}"),
    "paper x": (">7", lambda r: f"{r['flops_ratio_paper']:.2f}"),
    "LLM ms": (">9", lambda r: f"{r['ms']['llm_prefill']['median']:.1f}{_mark(r, 'llm_prefill')}"),
    "[min-max]": (">17", lambda r: "[{min:.1f}-{max:.1f}]".format(**r["ms"]["llm_prefill"])),
    "LLM x": (">6", lambda r: f"{r['llm_speedup']:.2f}"),
    "enc ms": (">8", lambda r: f"{r['encoders_ms']:.1f}"),
    "stat ms": (">7", lambda r: f"{r['ms']['importance']['median']:.1f}"),
    "TTFT ms": (">9", lambda r: f"{r['ms']['ttft']['median']:.1f}{_mark(r, 'ttft')}"),
    "TTFT x": (">6", lambda r: f"{r['ttft_speedup']:.2f}"),
    "vs stk": (">6", lambda r: f"{r['ttft_speedup_vs_stock']:.2f}"),
    "sel %": (">5", lambda r: f"{r['selection_pct']:.1f}"),
    "KV MB": (">8", lambda r: f"{r['kv_bytes'] / 2**20:.2f}"),
    "KV %": (">5", lambda r: f"{100 * r['kv_ratio']:.1f}"),
}
WIDE_ONLY = ("tok L0", "paper x", "[min-max]", "vs stk", "KV MB")


def spread(stat: dict) -> float:
    """max / min of a timing over the repeats (1 for a single repeat)."""
    return stat["max"] / stat["min"] if stat["min"] > 0 else float("inf")


def _mark(r: dict, key: str) -> str:
    return "!" if spread(r["ms"][key]) > SPREAD_LIMIT else ""


def spread_warning(rows: list[dict], repeats: int) -> str | None:
    """One line naming the rows whose LLM prefill or TTFT spread exceeds SPREAD_LIMIT, or None."""
    bad = []
    for r in rows:
        wide = [
            f"{label} {r['ms'][k]['min']:.0f}-{r['ms'][k]['max']:.0f}" for k, label in TIMED if _mark(r, k)
        ]
        if wide:
            bad.append(f"{r['name']} ({', '.join(wide)} ms)")
    if not bad:
        return None
    return textwrap.fill(
        f"! spread too wide to trust (max/min > {SPREAD_LIMIT} over {repeats} repeats): {', '.join(bad)}. "
        "Likely a busy machine: rerun on a quiet one, with more --repeats, or with OMP_NUM_THREADS=1.",
        TABLE_WIDTH,
        subsequent_indent="  ",
    )


def format_shape(
    res: dict, device_name: str, dtype: str, repeats: int, warmup: int, wide: bool = False
) -> str:
    reduced = f"REDUCED for this device: {', '.join(res['reduced'])}; " if res["reduced"] else "real shape; "
    head = (
        f"== {res['shape']} on {device_name}, {dtype}: {reduced}{res['num_layers']} decoder layers; clip "
        f"{res['seconds']:g} s at {res['side']}x{res['side']}, 2 fps, with audio: grid {res['grid_thw']}, "
        f"{res['prompt_tokens']} prompt tokens; warm-up {warmup}, repeats {repeats} (medians)"
    )
    cols = [(name, spec, cell) for name, (spec, cell) in COLUMNS.items() if wide or name not in WIDE_ONLY]
    lines = [head if wide else textwrap.fill(head, TABLE_WIDTH, subsequent_indent="   ")]
    lines.append(" ".join(f"{name:{spec}}" for name, spec, _ in cols))
    for r in res["rows"]:
        lines.append(" ".join(f"{cell(r):{spec}}" for _, spec, cell in cols))
    for s in res["skipped"]:
        line = f"{s['name']:<18}skipped: {s['reason']}"
        lines.append(line if wide else textwrap.fill(line, TABLE_WIDTH, subsequent_indent=" " * 18))
    warning = spread_warning(res["rows"], repeats)
    if warning:
        lines.append(warning)
    return "\n".join(lines)


LEGEND = (
    "tok L0: tokens entering decoder layer 0; tok avg: layer-averaged tokens; TFLOPs: analytic LLM prefill "
    f"({CONVENTION}) as generate() runs it (LM head on the last position); paper x: the FLOPs ratio as the paper "
    "counts it (LM head on every position alive after the last layer); FLOPs x / LLM x / TTFT x: full / row "
    "(medians; LLM includes selection); enc ms: vision + audio encoders (fast_vision except the stock row; "
    "Stage-I importance statistics of seats / visionzip rows are computed in the last encoder layers and land "
    "here); stat ms: those statistics alone; TTFT: the whole prefill call; vs stk: TTFT of full with the stock "
    "encoder / row; sel %: selection time as % of the row's LLM prefill; KV: cache after prefill; "
    f"!: max/min over the repeats > {SPREAD_LIMIT}. --wide adds {', '.join(WIDE_ONLY)}."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shapes",
        default="mini,3b,7b",
        help=f"comma-separated: {', '.join(SHAPE_NAMES)} (default mini,3b,7b)",
    )
    p.add_argument("--seconds", type=float, default=None, help="clip length (default 10; CPU real shapes 4)")
    p.add_argument("--side", type=int, default=None, help="frame side in pixels (default 448; CPU 224)")
    p.add_argument(
        "--layers", type=int, default=None, help="decoder layers (default: all; CPU real shapes 14)"
    )
    p.add_argument("--encoder-layers", type=int, default=None, help="vision blocks / audio layers kept")
    p.add_argument("--vocab", type=int, default=None, help="text vocabulary (default: real; CPU 32768)")
    p.add_argument(
        "--experts", type=int, default=None, help="MoE experts kept (default: real; CPU 30b-a3b 8)"
    )
    p.add_argument("--width", type=int, default=None, help="divide widths by this (default: 1; CPU 8)")
    p.add_argument(
        "--full-shapes",
        action="store_true",
        help="on CPU, run 3b/7b at their real shapes (slow, tens of GB; the expected cost is printed first)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default bf16 on cuda, fp32 on cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="print progress per round")
    p.add_argument("--wide", action="store_true", help="every column (about 170 wide; default fits 110)")
    p.add_argument("--json", dest="json_out", default=None, help="write all rows here")


def run_bench(args: argparse.Namespace) -> dict:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype_name = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    if args.repeats < 1 or args.warmup < 0:
        raise ValueError("--repeats must be >= 1 and --warmup >= 0")
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPE_NAMES]
    if unknown or not shapes:
        raise ValueError(
            f"--shapes: unknown {unknown or args.shapes!r}; choose from {', '.join(SHAPE_NAMES)}"
        )
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    results, wide = {}, getattr(args, "wide", False)
    for shape in shapes:
        res = bench_shape(shape, args, device, DTYPES[dtype_name])
        results[shape] = res
        print(format_shape(res, name, dtype_name, args.repeats, args.warmup, wide), flush=True)
    print(LEGEND if wide else textwrap.fill(LEGEND, TABLE_WIDTH, subsequent_indent="  "))
    return dict(
        device=name,
        dtype=dtype_name,
        torch=torch.__version__,
        transformers=TRANSFORMERS_VERSION,
        repeats=args.repeats,
        warmup=args.warmup,
        flops_convention=CONVENTION,
        shapes=results,
    )


def main(args: argparse.Namespace) -> int:
    out = run_bench(args)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))
        print(f"results written to {args.json_out}")
    return 0


if (
    __name__ == "__main__"
):  # `python -m seats_core.speed.bench ...`: the same command without the media stack (PyAV)
    parser = argparse.ArgumentParser(
        prog="python -m seats_core.speed.bench", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
