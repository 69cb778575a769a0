"""Readers for the audio-visual multiple-choice benchmarks of the paper (SEATS_SPEC.md §7), from local files.

`load_benchmark(name, data_path) -> (samples, problems)`: samples are `Sample`s ready for the harness, problems
the rows that were skipped (malformed, missing video, duplicate id) -- report them, never count them.
docs/EVAL.md says where to download each benchmark and which folder layout each reader expects.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import daily_omni, lvomnibench, omnivideobench, videomme, worldsense
from .common import LETTERS, Problem, Reader, Sample

# Canonical name -> reader, in the order of the paper's tables.
BENCHMARKS: dict[str, Reader] = {
    r.name: r
    for r in (
        worldsense.READER,
        daily_omni.READER,
        omnivideobench.READER,
        videomme.READER,
        lvomnibench.READER,
    )
}

__all__ = ["BENCHMARKS", "LETTERS", "Problem", "Sample", "canonical_name", "load_benchmark"]


def _squash(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.lower())


def canonical_name(name: str) -> str:
    """'Daily-Omni', 'daily_omni', 'dailyomni' -> 'daily-omni'; unknown names raise ValueError."""
    by_squash = {_squash(k): k for k in BENCHMARKS}
    key = _squash(name)
    if key not in by_squash:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return by_squash[key]


def load_benchmark(name: str, data_path: str | Path) -> tuple[list[Sample], list[Problem]]:
    """Read a benchmark's annotations under `data_path` (a folder, or one annotation file)."""
    return BENCHMARKS[canonical_name(name)].load(data_path)
