"""Stage timings inside one generate(): encoders, LLM prefill, first token, decode -- synchronised on CUDA."""

from __future__ import annotations

import time
from collections import defaultdict

import torch

from ..models.family import FamilyAdapter
from ..models.hooks import Hooks, sync


class StageTimer:
    """Hooks that time the vision encoder, the audio encoder and the LLM prefill, plus time-to-first-token.

    Call `start()` right before generate(): `first_token` is measured from there to the end of the prefill call
    (generate() may run the vision encoder before that call). Decode is the remainder of generate().
    """

    def __init__(self, adapter: FamilyAdapter):
        self.ad = adapter
        self.device = next(adapter.thinker.parameters()).device
        self.ms: dict[str, float] = defaultdict(float)
        self._t0: dict[str, float] = {}
        self._hooks = Hooks()
        self._in_prefill = False
        self._start = 0.0

    def _pair(self, module, name: str, is_prefill):
        def pre(mod, args, kwargs):
            if is_prefill(args, kwargs):
                sync(self.device)
                self._t0[name] = time.perf_counter()

        def post(mod, args, kwargs, out):
            if name in self._t0:
                sync(self.device)
                self.ms[name] += (time.perf_counter() - self._t0.pop(name)) * 1e3

        self._hooks.pre(module, pre).post(module, post)

    def __enter__(self) -> StageTimer:
        always = lambda a, k: True  # noqa: E731

        def prefill_call(a, k):
            return self.ad.is_prefill_call(k)

        def prefill_llm(a, k):
            return self.ad.is_prefill_llm_call(k)

        self._pair(self.ad.visual, "vision_encoder", always)
        self._pair(self.ad.audio_tower, "audio_encoder", always)
        self._pair(self.ad.text_model, "llm_prefill", prefill_llm)

        def call_starts(mod, args, kwargs):
            self._in_prefill = prefill_call(args, kwargs)

        def first_token(mod, args, kwargs, out):
            if self._in_prefill and "first_token" not in self.ms:
                sync(self.device)
                self.ms["first_token"] = (time.perf_counter() - self._start) * 1e3

        self._hooks.pre(self.ad.thinker, call_starts).post(self.ad.thinker, first_token)
        return self

    def start(self) -> None:
        sync(self.device)
        self._start = time.perf_counter()
        self.ms.pop("first_token", None)

    def __exit__(self, *exc) -> None:
        self._hooks.remove()


def peak_memory_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return None
