"""LVOmniBench (long-video audio-visual QA, 2025): multiple-choice questions on long videos with sound.

The release format is not pinned down here, so this reader accepts the common shapes (document what you have
with `--limit 5` first): any .json/.jsonl/.parquet under --data (lvomnibench*.json or annotations*.json
preferred) with either one row per question {question_id|id, video|video_id|video_path, question,
options|choices|candidates (list, "A. ..." strings or a dict), answer|correct_option (letter or option text),
task_type?, duration?} or one record per video with its questions under "questions"/"qa"/"qas".
Videos: videos/<video>, <video> (with or without a video extension).
"""

from __future__ import annotations

from .common import ANSWER_KEYS, Reader, get, nested_questions


def video_names(row: dict) -> list[str]:
    vid = get(row, ("video_path", "video", "video_id", "video_name", "vid"))
    return [] if vid is None else [f"videos/{vid}", f"video/{vid}", f"{vid}"]


READER = Reader(
    name="lvomnibench",
    annotations=("lvomnibench*.json", "annotations*.json", "*.json", "*.jsonl", "*.parquet"),
    video_names=video_names,
    flatten=nested_questions("questions", "qa", "qas"),
    extra_keys=("task_type", "question_type", "duration", "category"),
    answer_keys=("correct_option", *ANSWER_KEYS),
)
