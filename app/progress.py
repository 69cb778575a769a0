"""Progress of one generate call, reported from forward pre-hooks on the model's public parts.

The hooks only observe (they return nothing), are attached to one model instance inside a `with` block and are
removed on exit, so the pruning hooks and timings of the run are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

from seats_core.models.hooks import Hooks

# Share of one run's progress span given to each phase (encoders, prefill, then decode steps).
ENCODE_SHARE = 0.3
PREFILL_SHARE = 0.2


class RunProgress:
    """Calls report(fraction, description) as a generate call encodes, prefills and decodes.

    span: (start, end) fractions of the overall progress bar this run occupies; label prefixes descriptions.
    """

    def __init__(
        self,
        adapter,
        report: Callable[[float, str], None],
        max_new_tokens: int,
        span: tuple[float, float] = (0.0, 1.0),
        label: str = "",
    ):
        self.adapter, self.report, self.max_new_tokens = adapter, report, max(1, max_new_tokens)
        self.lo, self.hi = span
        self.label = f"{label}: " if label else ""
        self.hooks = Hooks()
        self.steps = 0

    def _at(self, share: float, text: str) -> None:
        self.report(self.lo + (self.hi - self.lo) * min(share, 1.0), self.label + text)

    def _video(self, module, args):
        self._at(0.0, "encoding video")

    def _audio(self, module, args):
        self._at(ENCODE_SHARE / 2, "encoding audio")

    def _layer0(self, module, args):
        self.steps += 1
        if self.steps == 1:
            self._at(ENCODE_SHARE, "LLM prefill")
        else:
            done = (self.steps - 1) / self.max_new_tokens
            share = ENCODE_SHARE + PREFILL_SHARE + (1 - ENCODE_SHARE - PREFILL_SHARE) * done
            self._at(share, f"generating token {self.steps}/{self.max_new_tokens}")

    def __enter__(self) -> RunProgress:
        ad = self.adapter
        for module, fn in (
            (ad.visual, self._video),
            (ad.audio_tower, self._audio),
            (ad.layers[0], self._layer0),
        ):
            if module is not None:
                self.hooks.pre(module, fn, with_kwargs=False)
        return self

    def __exit__(self, *exc) -> None:
        self.hooks.remove()
