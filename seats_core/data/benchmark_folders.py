"""Tiny benchmark folders in each release's layout, for tests and for trying the harness without downloads.

`write_benchmark(name, root, clips)` copies the given clips to where the benchmark keeps its videos and writes
its annotation file: two questions per clip plus three rows the reader must skip and report (an answer naming
no option, a row with a single option, a question whose video is missing). It returns what a correct reader
finds: {"expected": {(video path relative to root, question): answer letter}, "problems": 3}.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..evaluation.benchmarks.common import LETTERS

COLOURS = ("red", "green", "blue", "yellow")
BAD_ROWS = 3  # bad answer, single option, missing video


def _questions(k: int) -> list[tuple[str, list[str], str]]:
    """Two well-formed questions about clip k: (question, option texts, answer letter)."""
    return [
        (f"Which colour is shape {k}?", list(COLOURS), LETTERS[k % len(COLOURS)]),
        (f"How many tones play in clip {k}?", ["one", "two", "three"], LETTERS[(k + 1) % 3]),
    ]


def _lettered(options: list[str]) -> list[str]:
    return [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]


def _place(clip: Path, root: Path, rel: str) -> str:
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, dest)
    return rel


def write_benchmark(name: str, root: str | Path, clips: list[str | Path]) -> dict:
    """Write benchmark `name` (canonical, see BENCHMARKS) under `root` using `clips` as its videos."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    writer = {
        "worldsense": _worldsense,
        "daily-omni": _daily_omni,
        "omnivideobench": _omnivideobench,
        "videomme": _videomme,
        "lvomnibench": _lvomnibench,
    }[name]
    expected = writer(root, [Path(c) for c in clips])
    return {"expected": expected, "problems": BAD_ROWS}


def _worldsense(root: Path, clips: list[Path]) -> dict:
    data, expected = {}, {}
    for k, clip in enumerate(clips):
        vid = f"ws{k:03d}"
        rel = _place(clip, root, f"videos/{vid}.mp4")
        entry = {"video_id": vid, "duration": "<1min", "domain": "Daily Life", "audio_class": ["speech"]}
        for t, (q, opts, ans) in enumerate(_questions(k)):
            entry[f"task{t}"] = {
                "question": q,
                "candidates": _lettered(opts),
                "answer": ans,
                "task_type": "x",
            }
            expected[(rel, q)] = ans
        data[vid] = entry
    first = data["ws000"]
    first["task2"] = {"question": "Bad answer?", "candidates": _lettered(list(COLOURS)), "answer": "E"}
    first["task3"] = {"question": "One option?", "candidates": ["A. only"], "answer": "A"}
    data["ws999"] = {
        "video_id": "ws999",
        "task0": {"question": "Lost?", "candidates": _lettered(["a", "b"]), "answer": "A"},
    }
    (root / "worldsense_qa.json").write_text(json.dumps(data, indent=1))
    return expected


def _daily_omni(root: Path, clips: list[Path]) -> dict:
    rows, expected = [], {}
    for k, clip in enumerate(clips):
        vid = f"daily_{k}"
        rel = _place(clip, root, f"Videos/{vid}/{vid}_video.mp4")
        for q, opts, ans in _questions(k):
            rows.append(
                {"video_id": vid, "Question": q, "Choice": _lettered(opts), "Answer": ans, "Type": "x"}
            )
            expected[(rel, q)] = ans
    rows += [
        {
            "video_id": "daily_0",
            "Question": "Bad answer?",
            "Choice": _lettered(list(COLOURS)),
            "Answer": "purple",
        },
        {"video_id": "daily_0", "Question": "One option?", "Choice": ["A. only"], "Answer": "A"},
        {"video_id": "daily_missing", "Question": "Lost?", "Choice": _lettered(["a", "b"]), "Answer": "B"},
    ]
    (root / "qa.json").write_text(json.dumps(rows, indent=1))
    return expected


def _omnivideobench(root: Path, clips: list[Path]) -> dict:
    videos, expected = [], {}
    for k, clip in enumerate(clips):
        name = f"ovb_{k}.mp4"
        rel = _place(clip, root, f"videos/{name}")
        qs = []
        for q, opts, ans in _questions(k):
            text = opts[LETTERS.index(ans)]
            qs.append({"question": q, "options": _lettered(opts), "correct_option": ans, "answer": text})
            expected[(rel, q)] = ans
        videos.append({"video": name, "duration": 5, "questions": qs})
    videos[0]["questions"] += [
        {"question": "Bad answer?", "options": _lettered(list(COLOURS)), "answer": "not an option"},
        {"question": "One option?", "options": ["A. only"], "correct_option": "A"},
    ]
    videos.append(
        {
            "video": "ovb_missing.mp4",
            "questions": [{"question": "Lost?", "options": ["x", "y"], "correct_option": "A"}],
        }
    )
    (root / "data.json").write_text(json.dumps(videos, indent=1))
    return expected


def _videomme(root: Path, clips: list[Path]) -> dict:
    rows, expected = [], {}
    for k, clip in enumerate(clips):
        yt = f"yt{k}Xq"
        rel = _place(clip, root, f"data/{yt}.mp4")
        for n, (q, opts, ans) in enumerate(_questions(k), start=1):
            rows.append(
                {
                    "video_id": f"{k + 1:03d}",
                    "duration": "short",
                    "domain": "Knowledge",
                    "videoID": yt,
                    "question_id": f"{k + 1:03d}-{n}",
                    "task_type": "Counting Problem",
                    "question": q,
                    "options": _lettered(opts),
                    "answer": ans,
                }
            )
            expected[(rel, q)] = ans
    base = {"video_id": "001", "videoID": "yt0Xq", "options": _lettered(list(COLOURS))}
    rows += [
        {**base, "question_id": "001-8", "question": "Bad answer?", "answer": "F"},
        {**base, "question_id": "001-9", "question": "One option?", "options": ["A. only"], "answer": "A"},
        {**base, "question_id": "999-1", "videoID": "gone", "question": "Lost?", "answer": "A"},
    ]
    (root / "videomme").mkdir(exist_ok=True)
    (root / "videomme" / "test.json").write_text(json.dumps(rows, indent=1))
    return expected


def _lvomnibench(root: Path, clips: list[Path]) -> dict:
    rows, expected = [], {}
    for k, clip in enumerate(clips):
        name = f"long_{k}.mp4"
        rel = _place(clip, root, f"videos/{name}")
        for n, (q, opts, ans) in enumerate(_questions(k)):
            choices = {LETTERS[i]: o for i, o in enumerate(opts)}
            rows.append(
                {
                    "id": f"lv{k}-{n}",
                    "video": name,
                    "question": q,
                    "choices": choices,
                    "answer": opts[LETTERS.index(ans)],
                }
            )
            expected[(rel, q)] = ans
    rows += [
        {
            "id": "lv-bad",
            "video": "long_0.mp4",
            "question": "Bad answer?",
            "choices": {"A": "x", "B": "y"},
            "answer": "z",
        },
        {
            "id": "lv-one",
            "video": "long_0.mp4",
            "question": "One option?",
            "choices": {"A": "only"},
            "answer": "A",
        },
        {
            "id": "lv-lost",
            "video": "long_missing.mp4",
            "question": "Lost?",
            "choices": {"A": "x", "B": "y"},
            "answer": "A",
        },
    ]
    (root / "lvomnibench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return expected
