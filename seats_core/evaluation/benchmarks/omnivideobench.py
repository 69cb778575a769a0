"""OmniVideoBench (NJU-LINK, 2025): 628 videos, 1,000 audio-visual reasoning questions (four options).

Accepted layouts (under --data): the HF release's data.jsonl / data.json / data.parquet (or any one
annotation file), either
- one record per video, as in the GitHub data example: {video: "video_1", duration: "03:28", video_type,
  questions: [{question, options ["A.text", ...], correct_option "A", answer (the option text), question_type,
  audio_type, reasoning_steps}]} (also "qa"/"qas" for the list), or
- one row per question with the same fields plus the video (e.g. "videos/video_1.mp4").
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
    annotations=(
        "data.jsonl",
        "data.json",
        "data.parquet",
        "omnivideobench*.json",
        "*.jsonl",
        "*.json",
        "*.parquet",
    ),
    video_names=video_names,
    flatten=nested_questions("questions", "qa", "qas"),
    extra_keys=("question_type", "audio_type", "duration", "video_type"),
    answer_keys=("correct_option", "correct_answer", *ANSWER_KEYS),
)
