"""Time the stock vs the batched-window (`fast_vision`) Qwen2.5-Omni vision encoder in one process.

    python -m seats_core.speed.encoder --shape 7b --seconds 10 --side 448 --device cuda --dtype bf16

Builds the vision encoder alone with random weights at the chosen shape, feeds random pixels for a clip of
`--seconds` at 2 fps and `--side` x `--side`, warms up each variant, then alternates them for `--repeats`
timed runs each (synchronising the device) and reports median and min/max, the speedup as a ratio of medians,
and the largest relative difference between the two outputs. On CPU the 7B shape runs with fewer blocks (`--depth`, default 8: one
full-attention block per 8 as in the 7B) and the output says so.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

from ..models.qwen2_5_omni.adapter import Qwen25OmniAdapter
from ..models.qwen2_5_omni.fast_vision import fast_vision
from ..models.qwen2_5_omni.shapes import thinker_config
from ..models.qwen2_5_omni.tooling import Qwen25Tooling

FPS = 2.0  # frame sampling rate of qwen-omni-utils
MIN_FRAMES = 4  # qwen-omni-utils' lower bound on sampled frames
CPU_DEFAULT_DEPTH = 8  # blocks kept for the 7B shape on CPU
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def vision_config(shape: str, depth: int | None):
    """The vision sub-config at `shape`, optionally cut to `depth` blocks (full attention every 8th block)."""
    cfg = copy.deepcopy(thinker_config(shape).vision_config)
    if depth is not None and depth != cfg.depth:
        Qwen25Tooling.reduce_vision(cfg, depth)
    return cfg


def clip_grid(cfg, seconds: float, side: int) -> torch.Tensor:
    """grid_thw `(1, 3)` for a clip sampled at 2 fps (even frame count, at least 4) of side x side pixels."""
    unit = cfg.patch_size * cfg.spatial_merge_size
    if side % unit:
        raise ValueError(f"--side must be a multiple of {unit}, got {side}")
    frames = max(MIN_FRAMES, round(seconds * FPS))
    frames += frames % cfg.temporal_patch_size
    return torch.tensor([[frames // cfg.temporal_patch_size, side // cfg.patch_size, side // cfg.patch_size]])


def _time_interleaved(fns: dict, device: torch.device, warmup: int, repeats: int) -> tuple[dict, dict]:
    """Run each variant `warmup` times, then alternate them `repeats` times so load drift hits both alike.

    Returns per-variant lists of wall times in ms (device synchronised) and each variant's last output.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    outs, times = {}, {name: [] for name in fns}
    for name, fn in fns.items():
        for _ in range(warmup):
            outs[name] = fn()
    sync()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outs[name] = fn()
            sync()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times, outs


def _max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return ((a - b).abs().max() / a.abs().max().clamp_min(torch.finfo(torch.float32).tiny)).item()


def run(args) -> dict:
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    depth = args.depth
    if depth is None and args.shape != "mini" and device.type == "cpu":
        depth = CPU_DEFAULT_DEPTH
    cfg = vision_config(args.shape, depth)
    cfg._attn_implementation = args.attn
    torch.manual_seed(args.seed)
    with torch.device(device):
        encoder = Qwen25OmniAdapter.vision_encoder_class()(cfg).to(dtype).eval()
    grid = clip_grid(cfg, args.seconds, args.side).to(device)
    patch_dim = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size**2
    pixels = torch.randn(int(grid.prod()), patch_dim, device=device, dtype=dtype)  # (patches, C*T*P*P)

    def stock():
        with torch.no_grad():
            return encoder(pixels, grid_thw=grid).pooler_output

    def fast():
        with torch.no_grad(), fast_vision(encoder):
            return encoder(pixels, grid_thw=grid).pooler_output

    times, outs = _time_interleaved({"stock": stock, "fast": fast}, device, args.warmup, args.repeats)
    stock_ms, fast_ms = times["stock"], times["fast"]
    return dict(
        cfg=cfg,
        depth_cut=depth is not None,
        grid=grid.tolist()[0],
        tokens=int(outs["stock"].shape[0]),
        stock=stock_ms,
        fast=fast_ms,
        speedup=statistics.median(stock_ms) / statistics.median(fast_ms),
        max_rel_diff=_max_rel_diff(outs["stock"], outs["fast"]),
    )


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["mini", "3b", "7b"], default="mini")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--side", type=int, default=448)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    parser.add_argument("--depth", type=int, default=None, help="keep only this many vision blocks")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    res = run(args)
    cfg = res["cfg"]
    note = f" (cut to {cfg.depth} blocks, full attention at {list(cfg.fullatt_block_indexes)})"
    print(f"machine: {_machine(torch.device(args.device))}; torch {torch.__version__}")
    print(
        f"vision encoder {args.shape}{note if res['depth_cut'] else ''}, hidden {cfg.hidden_size}, "
        f"{args.dtype}, attn {args.attn}; clip {args.seconds:g} s at {FPS:g} fps, {args.side}x{args.side}: "
        f"grid_thw {res['grid']}, {res['tokens']} output tokens; warm-up {args.warmup}, repeats {args.repeats}"
    )
    print(f"{'variant':<8}{'median ms':>12}{'min ms':>12}{'max ms':>12}")
    for name in ("stock", "fast"):
        ms = res[name]
        print(f"{name:<8}{statistics.median(ms):>12.1f}{min(ms):>12.1f}{max(ms):>12.1f}")
    min_ratio = min(res["stock"]) / min(res["fast"])
    print(
        f"speedup: {res['speedup']:.2f}x (median stock / median fast), {min_ratio:.2f}x (min / min); "
        f"max rel diff {res['max_rel_diff']:.2e}"
    )
    return res


if __name__ == "__main__":
    main()
