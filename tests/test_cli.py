"""Black-box checks of `python -m seats_core run` on real clip files (made with PyAV by the fixtures)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seats_core.cli import cli
from seats_core.method import PRESETS

METHOD_RETENTION = [
    ("full", "R10"),
    ("seats", "R10"),
    ("seats", "R35"),
    ("random", "R15"),
    ("divprune-om", "R10"),
    ("visionzip-om", "R25"),
    ("fastv-om", "R35"),
    ("fastv", "0.3,1.0"),
]


def _rows(r: dict) -> list[dict]:
    """The record's token columns as one dict per token."""
    cols = r["tokens"]
    return [dict(zip(cols, values)) for values in zip(*cols.values())]


def _run(tmp_path, clip, method, retention, capsys):
    out = tmp_path / f"{method}.json"
    code = cli(
        [
            "run",
            clip,
            "--question",
            "What colour is the square?",
            "--method",
            method,
            "--retention",
            retention,
            "--max-new-tokens",
            "3",
            "--json",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = json.loads(out.read_text())
    record["tokens"] = _rows(record)
    return record


def _check_consistent(r: dict, requested: tuple[float, float]):
    L = r["num_layers"]
    assert len(r["layers"]) == L
    for layer, counts in enumerate(r["layers"]):
        for m in ("video", "audio"):
            alive = sum(1 for t in r["tokens"] if t["modality"] == m and t["survives_to"] > layer)
            assert counts[m] == alive
    assert all(c["text"] == r["layers"][0]["text"] for c in r["layers"])  # text is never dropped
    n = {m: sum(t["modality"] == m for t in r["tokens"]) for m in ("video", "audio")}
    windows = 1 + max(t["window"] for t in r["tokens"])
    stages = max(1, len([e for e in r["events"] if e["stage"] != "warning"]))
    for i, m in enumerate(("video", "audio")):
        if n[m] == 0:
            continue
        tol = stages * (0.5 * windows + 1) / n[m] + 1e-9  # per-window rounding at every drop
        assert abs(r["retention_measured"][m] - requested[i]) <= tol, (
            m,
            r["retention_measured"][m],
            requested[i],
        )
        mean = sum(min(t["survives_to"], L) for t in r["tokens"] if t["modality"] == m) / (n[m] * L)
        assert r["retention_measured"][m] == pytest.approx(mean, abs=1e-6)
    assert r["flops"]["prefill"] <= r["flops"]["prefill_full"]
    assert "FLOP" in r["flops"]["convention"]
    for key in ("media_decode", "processor", "vision_encoder", "llm_prefill", "first_token", "decode"):
        assert r["timing_ms"][key] >= 0
    for t in r["tokens"]:
        assert t["start_s"] < t["end_s"]
        assert (t["row"] is None) == (t["modality"] == "audio")


@pytest.mark.parametrize("method,retention", METHOD_RETENTION)
def test_run_json_is_consistent_with_audio(tmp_path, clip_av, capsys, method, retention):
    r = _run(tmp_path, clip_av, method, retention, capsys)
    assert r["method"] == method and r["model"] == "mini"
    requested = (1.0, 1.0) if method == "full" else tuple(r["retention"])
    if method == "full":
        assert tuple(r["retention"]) == (1.0, 1.0)  # the unpruned model keeps everything, whatever was asked
    elif retention in PRESETS:
        assert tuple(r["retention"]) == PRESETS[retention]
    _check_consistent(r, requested)
    assert r["clip"]["has_audio"] and any(t["modality"] == "audio" for t in r["tokens"])
    if method == "seats":
        late = r["config"]["late_layer"]
        for counts in r["layers"][late - 1 :]:
            assert counts["video"] == 0 and counts["audio"] == 0
        assert any(t["survives_to"] == 0 for t in r["tokens"])  # Stage I drops before the LLM


@pytest.mark.parametrize("method,retention", [("seats", "R10"), ("visionzip-om", "R15"), ("full", "R10")])
def test_run_video_only_clip(tmp_path, clip_silent, capsys, method, retention):
    r = _run(tmp_path, clip_silent, method, retention, capsys)
    assert not r["clip"]["has_audio"]
    assert all(t["modality"] == "video" for t in r["tokens"])
    _check_consistent(r, (1.0, 1.0) if method == "full" else tuple(r["retention"]))


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "empty", "text", "audio_only", "missing"])
def test_bad_media_is_one_clear_line(bad_files, capsys, kind):
    code = cli(["run", bad_files[kind], "--question", "What?"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--model", "no/such-model-xyz"], "no/such-model-xyz"),
        (["--model", "./not/a/folder"], "unknown model"),
        (["--retention", "R99"], "R99"),
        (["--method", "fastv-om", "--retention", "R10"], "FastV"),
        (["--question", "   "], "question is empty"),
    ],
)
def test_bad_requests_are_refused_clearly(clip_short_av, capsys, argv, needle):
    args = ["run", clip_short_av, "--question", "What?", *argv]
    code = cli(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert needle in err and len(err.splitlines()) == 1


def test_cli_subprocess_exit_code_and_stderr(bad_files):
    proc = subprocess.run(
        [sys.executable, "-m", "seats_core", "run", bad_files["corrupt"], "--question", "What?"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.strip().splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr


def test_run_record_has_geometry_and_no_path(tmp_path, clip_short_av, capsys):
    out = tmp_path / "r.json"
    assert (
        cli(["run", clip_short_av, "--question", "What?", "--max-new-tokens", "1", "--json", str(out)]) == 0
    )
    capsys.readouterr()
    text = out.read_text()
    assert '"path"' not in text  # gradio_client would take a dict with `path` for a file
    r = json.loads(text)
    assert r["version"] == 1 and r["clip"]["name"] == "clip_short_av.mp4"
    g = r["geometry"]
    # The miniature: 14-px patches merged 2x2, 2 frames per temporal grid, 2 s windows (Qwen2.5-Omni's chunk).
    assert g["block_px"] == 28 and g["temporal_patch"] == 2 and g["seconds_per_window"] == 2.0
    w, h = r["clip"]["frame_size"]
    assert g["grid"] == [r["clip"]["frames"] // 2, h // 28, w // 28]
    video = [i for i, m in enumerate(r["tokens"]["modality"]) if m == "video"]
    assert len(video) == g["grid"][0] * g["grid"][1] * g["grid"][2]
    assert max(r["tokens"]["row"][i] for i in video) == g["grid"][1] - 1
    assert g["seconds_per_grid"] == pytest.approx(2 / r["clip"]["fps"], rel=1e-3)
    from seats_core.run.record import RunRecord

    again = RunRecord.from_json(text)
    assert again.to_dict() == r and again.flops == r["flops"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--method", "nope"], "invalid choice: 'nope'"),
        (["--retention", "-0.5,0.5"], "got (-0.5, 0.5)"),
        (["--max-new-tokens", "many"], "invalid int value"),
    ],
)
def test_argument_errors_are_one_line_with_status_2(clip_short_av, capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        code = cli(["run", clip_short_av, "--question", "What?", *argv])
        raise SystemExit(code)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2, err
    assert needle in err and len(err.splitlines()) == 1 and err.startswith("error:")


def test_still_image_is_refused_as_such(tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(png)
    assert cli(["run", str(png), "--question", "What?"]) == 2
    err = capsys.readouterr().err.strip()
    assert "still image" in err and len(err.splitlines()) == 1
