"""CLI details: the program's name as invoked, a misspelled option named as such, `bench`'s table width and spread
warning, `analyze`'s progress on stderr and its table without a NaN row."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seats_core.cli import cli
from seats_core.data import scenes
from seats_core.speed import bench

ROOT = Path(__file__).resolve().parents[1]


def _help(argv0: Path) -> str:
    code = "import sys; from seats_core.cli import cli; sys.exit(cli())"
    argv0.write_text(code)  # run as a script named like the console script (what pip's `seats` wrapper is)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(argv0), "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_prog_is_the_name_it_was_run_by(tmp_path):
    assert _help(tmp_path / "seats").startswith("usage: seats [-h]")
    proc = subprocess.run(
        [sys.executable, "-m", "seats_core", "run", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.stdout.startswith("usage: python -m seats_core run ")


def test_misspelled_option_gets_a_suggestion_not_a_missing_required_one(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["seats"])
    with pytest.raises(SystemExit) as stop:
        cli(["run", "clip.mp4", "--questoin", "What colour?"])
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "error: unrecognized option --questoin; did you mean --question? (see seats run --help)"
    with pytest.raises(SystemExit):
        cli(["bench", "--shape", "mini", "--repeat=2", "--wdie"])  # prefixes are fine, the typo is not
    assert "--wdie; did you mean --wide?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["eval-task", "--data", "x"])
    assert capsys.readouterr().err.startswith(
        "error: unrecognized command eval-task; did you mean eval-tasks?"
    )
    assert cli(["run", "no-such.mp4", "--quest", "q"]) == 2  # an unambiguous prefix is still accepted
    assert capsys.readouterr().err.strip() == "error: no-such.mp4: not found"


def _row(name: str, llm: tuple[float, float], ttft: tuple[float, float]) -> dict:
    def stat(lo, hi):
        return {"median": (lo + hi) / 2, "min": lo, "max": hi, "all": [lo, hi]}

    return dict(name=name, layer0={"video": 900, "audio": 300}, tokens_mean=512.0, flops=1.23e12, flops_ratio=4.5,
                flops_ratio_paper=5.1, ms={"llm_prefill": stat(*llm), "ttft": stat(*ttft), "importance": stat(1, 1)},
                llm_speedup=3.2, encoders_ms=123.4, ttft_speedup=2.1, ttft_speedup_vs_stock=2.4, selection_pct=3.3,
                kv_bytes=12 * 2**20, kv_ratio=0.25)  # fmt: skip


def test_bench_table_fits_110_columns_and_flags_wide_spreads():
    rows = [
        _row("full (stock enc)", (1000.0, 1100.0), (1500.0, 1600.0)),
        _row("visionzip-om R25", (357.0, 1904.0), (600.0, 890.0)),  # LLM max/min 5.3, TTFT 1.48: LLM only
    ]
    reason = "FastV pruning after layer 2 of 28 cannot average below 2/28 = 0.071 (asked 0.060): " * 2
    res = dict(shape="7b", reduced=["14 of 28 decoder layers", "vision 2 of 32 blocks"], num_layers=14,
               seconds=4.0, side=224, grid_thw=[4, 16, 16], prompt_tokens=1234, rows=rows,
               skipped=[{"name": "fastv-om R10", "reason": reason}])  # fmt: skip
    narrow = bench.format_shape(res, "CPU x86_64, 2 threads", "fp32", repeats=3, warmup=1)
    wide = bench.format_shape(res, "CPU x86_64, 2 threads", "fp32", repeats=3, warmup=1, wide=True)
    assert max(len(line) for line in narrow.splitlines()) <= bench.TABLE_WIDTH
    assert max(len(line) for line in wide.splitlines()) > 150  # every column
    for table in (narrow, wide):
        lines = table.splitlines()
        flagged = next(line for line in lines if line.startswith("visionzip-om R25"))
        assert "1130.5!" in flagged and "745.0!" not in flagged  # LLM median marked, TTFT not
        assert "!" not in next(line for line in lines if line.startswith("full (stock enc)"))
        warning = table[table.index("! spread too wide") :]
        assert "max/min > 1.5 over 3 repeats" in warning and "visionzip-om R25 (LLM 357-1904 ms)" in warning
        assert "full (stock enc)" not in warning
    assert "[357.0-1904.0]" in wide and "[357.0-1904.0]" not in narrow
    assert (
        bench.spread({"min": 10.0, "max": 15.0}) == 1.5 and bench.spread({"min": 0.0, "max": 1.0}) == math.inf
    )
    assert (
        bench.spread_warning([_row("full", (10, 15), (10, 15))], 3) is None
    )  # 1.5 itself is not over the rule


def test_analyze_shows_progress_and_no_nan_row(tmp_path, capsys):
    sample = scenes.make_sample(7, seconds=4)
    clip = scenes.write_sample(sample, tmp_path / "scene.mp4")
    assert cli(["analyze", str(clip), "--question", sample.question, "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    progress = [line for line in err.splitlines() if line.startswith("analyze:")]
    assert progress[0].startswith("analyze: loading mini") and progress[-1].startswith("analyze: 100%")
    assert len(progress) >= 10
    table = [line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in table] == list(range(28))  # layers 0..27: one row per decoder layer
    assert "nan" not in out.lower()
