"""LVOmniBench (Tao et al. 2026): four-option audio-visual questions on long videos (10-90 minutes).

Accepted layouts (under --data; check what you downloaded with `--limit 5` first): any .json/.jsonl/.parquet
(lvomnibench*.json or annotations*.json preferred) with one row per question -- as in the copy the SEATS
authors evaluate with lmms-eval: question_id, video_id, question, options (a list, or its text repr such as
"['A. ...' 'B. ...']"), answer "A", duration, video_category, sub_category, question_type, audio_type,
difficulty -- or one record per video with its questions under "questions"/"qa"/"qas". Other spellings accepted:
id, video / video_path, choices / candidates, correct_option, an answer given as the option's text.
Videos: videos/<video_id>.mp4 (or <video_id> with any video extension directly under --data).
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
    extra_keys=("question_type", "audio_type", "difficulty", "duration", "video_category", "sub_category"),
    answer_keys=("correct_option", *ANSWER_KEYS),
)
