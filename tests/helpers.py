"""Shared test helpers: a cached miniature, processor inputs from arrays, and the masked-attention reference."""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch

from seats_core.models.adapter import KW_MASK, OmniAdapter
from seats_core.models.hooks import Hooks
from seats_core.models.qwen2_5_omni.mini import build_model


@functools.lru_cache(maxsize=4)
def mini(attn: str = "sdpa"):
    return build_model(attn_implementation=attn)


@functools.lru_cache(maxsize=2)
def mini_qwen3(attn: str = "sdpa"):
    """The Qwen3-Omni miniature (random weights), cached per attention implementation."""
    from seats_core.models.qwen3_omni.mini import build_model as build_qwen3

    return build_qwen3(attn_implementation=attn)


def random_inputs(processor, seconds: int = 6, side: int = 112, audio: bool = True, seed: int = 0):
    """Processor tensors for a random clip (2 fps, side x side frames) with a question."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (2 * seconds, side, side, 3), dtype=np.uint8)
    wave = (rng.standard_normal(16000 * seconds) * 0.1).astype(np.float32) if audio else None
    msgs = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [{"type": "video"}, {"type": "text", "text": "What colour is the square?"}],
        },
    ]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return dict(OmniAdapter.processor_inputs(processor, text, frames, 2.0, wave, 16000))


@contextlib.contextmanager
def masked_reference(thinker, prefill_keep: list[torch.Tensor], decode_keep: list[torch.Tensor]):
    """Run the unpruned model, but let layer l's queries see only keys alive at layer l.

    prefill_keep[l] / decode_keep[l]: (S,) bool over the prompt positions, the keys layer l may attend to during the
    prefill / while decoding (tokens generated later are always visible). Causality is kept.
    """
    ad = OmniAdapter(thinker)
    S = prefill_keep[0].numel()

    def hook_for(layer):
        def hook(module, args, kwargs):
            hidden = ad.split_layer_call(args, kwargs)
            q = hidden.shape[1]
            cache = kwargs.get("past_key_values")
            past = ad.cache_length(cache, layer)
            keys = past + q
            keep = prefill_keep[layer] if past == 0 else decode_keep[layer]
            allowed = torch.ones(q, keys, dtype=torch.bool)
            allowed[:, :S] = keep[None, :]
            qpos = torch.arange(past, past + q)[:, None]
            allowed &= torch.arange(keys)[None, :] <= qpos  # causal
            mask = torch.zeros(q, keys, dtype=hidden.dtype)
            mask[~allowed] = torch.finfo(hidden.dtype).min
            return args, {**kwargs, KW_MASK: mask[None, None].to(hidden.device)}

        return hook

    with Hooks() as hooks:
        for i, layer in enumerate(ad.layers):
            hooks.pre(layer, hook_for(i))
        yield


def hook_count(module: torch.nn.Module) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in module.modules())


def launch_app(module_name: str):
    """app.py loaded under another module name (the `app` package shares its name), launched on a free port.

    Returns the running gradio Blocks; the caller closes it.
    """
    import importlib.util
    import socket

    from app import examples

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = importlib.util.spec_from_file_location(module_name, examples.ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    demo = module.demo
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    return demo


def dependencies(url: str) -> list[dict]:
    """The running app's events as its /config lists them (private events included)."""
    import httpx

    return httpx.get(url.rstrip("/") + "/config", timeout=30).json()["dependencies"]


def fn_indices(url: str) -> dict[str, int]:
    """Event function name -> fn_index, from the running app's /config (private events included)."""
    return {d["api_name"]: d["id"] for d in dependencies(url)}


def http_event(url: str, fn_index: int, data: list, session_hash: str, timeout: float = 300) -> dict:
    """Call one event as a plain HTTP client would (no browser, no gradio_client): POST queue/join, read the
    SSE stream to `process_completed`. Returns that message plus `raw`, every byte the server sent back."""
    import json

    import httpx

    body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session_hash, "event_data": None})
    raw = []
    with httpx.Client(base_url=url.rstrip("/") + "/gradio_api/", timeout=timeout) as h:
        r = h.post("queue/join", content=body, headers={"content-type": "application/json"})
        raw.append(r.text)
        if r.status_code != 200:
            return {"success": False, "status": r.status_code, "raw": "".join(raw)}
        with h.stream("GET", "queue/data", params={"session_hash": session_hash}) as stream:
            for line in stream.iter_lines():
                raw.append(line)
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        return {**msg, "raw": "\n".join(raw)}
    return {"success": False, "raw": "\n".join(raw)}


def http_upload(url: str, path: str) -> dict:
    """Upload a file the way the page does; returns the FileData dict an event input takes."""
    from pathlib import Path

    import httpx

    with open(path, "rb") as f:
        r = httpx.post(
            url.rstrip("/") + "/gradio_api/upload", files={"files": (Path(path).name, f)}, timeout=60
        )
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}
