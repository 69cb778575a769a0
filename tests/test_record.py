"""seats_core.run.record: a hand-written Engine.run-shaped result becomes a record and back, byte for byte."""

from __future__ import annotations

import json

import pytest

from seats_core.run.record import RECORD_VERSION, Geometry, RecordError, RunRecord

GEOMETRY = Geometry(grid=(2, 3, 4), block_px=28, temporal_patch=2, seconds_per_grid=1.0,
                    seconds_per_window=2.0, frame_size=(112, 84))  # fmt: skip


def _result() -> dict:
    tok = dict(window=0, t=None, row=None, col=None, audio_index=None, start_s=0.0, end_s=0.04)
    tokens = [
        {**tok, "index": 5, "modality": "video", "t": 0, "row": 1, "col": 2, "survives_to": 3, "importance": 0.5},
        {**tok, "index": 6, "modality": "audio", "audio_index": 0, "survives_to": 0, "importance": None},
    ]  # fmt: skip
    return {
        "answer": "B", "model": "mini", "method": "seats", "retention": [0.1, 0.2], "config": {"seed": 0},
        "plan": [{"layer": 0, "kind": "stage1"}], "num_layers": 4, "question": "Which?",
        "clip": {"path": "/tmp/uploads/abc/phone clip.mp4", "duration_s": 2.0, "frames": 4},
        "prompt_tokens": 30, "new_tokens": 1, "tokens": tokens, "layers": [{"text": 3, "video": 1, "audio": 0}],
        "events": [], "relevance": {"2": [0.25, None]}, "retention_measured": {"video": 0.75},
        "flops": {"prefill": 1.0, "prefill_full": 2.0, "prefill_paper": 0.9, "prefill_full_paper": 1.8,
                  "convention": "2*MAC"},
        "kv_cache_bytes": 10, "timing_ms": {"llm_prefill": 1.0}, "timing_spread_ms": {}, "peak_memory_bytes": None,
        "device": "CPU", "fast_encoder": True, "media_config": {"fps": 2.0}, "a_new_field": [1, 2],
    }  # fmt: skip


def test_result_to_record_columns_and_clip_name():
    record = RunRecord.from_result(_result(), GEOMETRY, {"fps": 2.0}, ["a warning"])
    assert record.tokens["index"] == [5, 6] and record.tokens["modality"] == ["video", "audio"]
    assert record.tokens["row"] == [1, None] and record.tokens["survives_to"] == [3, 0]
    assert record.clip == {"name": "phone clip.mp4", "duration_s": 2.0, "frames": 4}
    assert record.flops == _result()["flops"]  # every key carried through, the paper convention included
    assert record.extra == {"a_new_field": [1, 2]} and record.warnings == ["a warning"]
    text = record.to_json()
    assert '"path"' not in text and json.loads(text)["version"] == RECORD_VERSION
    assert json.loads(text)["geometry"] == {"grid": [2, 3, 4], "block_px": 28, "temporal_patch": 2,
        "seconds_per_grid": 1.0, "seconds_per_window": 2.0, "frame_size": [112, 84],
        "audio_tokens_per_second": 25.0}  # fmt: skip


def test_round_trip_and_without_tokens(tmp_path):
    record = RunRecord.from_result(_result(), GEOMETRY, {"fps": 2.0})
    again = RunRecord.load(record.save(tmp_path / "r.json"))
    assert again == record and again.geometry.grid == (2, 3, 4)
    slim = RunRecord.from_dict(record.to_dict(tokens=False))
    assert slim.tokens is None and slim.answer == "B"


def test_bad_records_are_refused_in_one_line():
    d = RunRecord.from_result(_result(), GEOMETRY, {}).to_dict()
    with pytest.raises(RecordError, match="version 0 is not 1"):
        RunRecord.from_dict({**d, "version": 0})
    with pytest.raises(RecordError, match="lacks geometry"):
        RunRecord.from_dict({k: v for k, v in d.items() if k != "geometry"})
    with pytest.raises(RecordError, match="invalid JSON"):
        RunRecord.from_json("{not json")
