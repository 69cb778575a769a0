"""OmniVideoBench (NJU-LINK, 2025): 628 videos, 1,000 audio-visual reasoning questions (four options).

Accepted layouts (under --data): the HF release's JSON (`data.json`, or any single .json/.jsonl), either
- one record per video: {video, duration, video_type, questions: [{question, options ["A. ...", ...],
  correct_option "A", answer (the option text), question_type, ...}]} (also "qa"/"qas" for the list), or
- one row per question with the same fields plus the video name.
The answer letter is read from correct_option first, then answer (a letter or an option's text).
Videos: videos/<video>, <video> (with or without .mp4).
"""

from __future__ import annotations

from .common import ANSWER_KEYS, Reader, get, nested_questions


def video_names(row: dict) -> list[str]:
    vid = get(row, ("video", "video_path", "video_name", "video_id"))
    return [] if vid is None else [f"videos/{vid}", f"video/{vid}", f"{vid}"]


READER = Reader(
    name="omnivideobench",
    annotations=("data.json", "omnivideobench*.json", "*.json", "*.jsonl", "*.parquet"),
    video_names=video_names,
    flatten=nested_questions("questions", "qa", "qas"),
    extra_keys=("question_type", "duration", "video_type"),
    answer_keys=("correct_option", "correct_answer", *ANSWER_KEYS),
)
