"""One way to put hooks on a model: `Hooks`, a set of forward (pre-)hooks that is always removed as a whole.

    with Hooks() as h:
        h.pre(layer, fn)          # fn(module, args, kwargs) -> None | (args, kwargs)
        h.post(layer, fn)         # fn(module, args, kwargs, output) -> None | output
        model(...)
    # every hook is gone here, also after an exception

Everything in seats_core that hooks a module (the Pruner, the stage timer, the analysis captures, the fast vision
encoder, the explorer's progress) registers through this class, so removal lives in one `finally`.
Torch only; module paths come from the family adapter, never from here. `sync` (the one device sync, for the
timers around hooked work) lives here too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch


def sync(device: torch.device | str | None) -> None:
    """Wait for the device's queued work (a no-op off CUDA): the one device sync, before every clock read."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Hooks:
    """Forward hooks registered on modules, removed together by `remove()` or on leaving a `with` block."""

    def __init__(self):
        self._handles: list = []

    def pre(self, module: torch.nn.Module, fn: Callable, *, with_kwargs: bool = True) -> Hooks:
        """A forward pre-hook: fn(module, args, kwargs) may return (args, kwargs) to replace them."""
        self._handles.append(module.register_forward_pre_hook(fn, with_kwargs=with_kwargs))
        return self

    def post(
        self, module: torch.nn.Module, fn: Callable, *, with_kwargs: bool = True, always_call: bool = False
    ) -> Hooks:
        """A forward hook: fn(module, args, kwargs, output) may return a replacement output (always_call: also
        when the forward raises)."""
        self._handles.append(
            module.register_forward_hook(fn, with_kwargs=with_kwargs, always_call=always_call)
        )
        return self

    @contextlib.contextmanager
    def installing(self):
        """Register inside this block: if any registration fails, the whole set is removed (all or nothing)."""
        try:
            yield self
        except BaseException:
            self.remove()
            raise

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def remove(self) -> None:
        """Remove every hook registered so far (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
