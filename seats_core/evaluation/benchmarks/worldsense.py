"""WorldSense (Hong et al. 2025): 1,662 videos, 3,172 four-option questions over video + audio.

Accepted layouts (under --data):
- the official `worldsense_qa.json` (HF honglyhly/WorldSense): {video_id: {video_id, duration, domain,
  sub_category, audio_class, ..., "task0": {question, candidates ["A. ...", ...], answer "A", task_domain,
  task_type}, "task1": {...}}} -- one record per video, its questions under task0, task1, ...;
- the lmms-lab/worldsense parquet (`*.parquet`, also JSON/JSONL exports of it): one row per question with index,
  video / video_path, question, candidates ["A. ...", ...], answer "A", task_domain, task_type, duration.
Videos: the row's video_path relative to --data, else videos/<video_id>.mp4 (the release's zip unpacked into
videos/) or <video_id>.mp4.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .common import Reader, get

TASK_KEY = re.compile(r"^task\d+$")


def flatten(record: dict) -> Iterator[dict]:
    tasks = sorted(
        (k for k in record if TASK_KEY.match(str(k)) and isinstance(record[k], dict)), key=_task_no
    )
    if not tasks:
        yield record
        return
    shared = {k: v for k, v in record.items() if k not in tasks}
    video = get(shared, ("video_id", "video", "_key"), "")
    for k in tasks:
        yield {**shared, "question_id": f"{video}_{k}", **record[k]}


def _task_no(key: str) -> int:
    return int(key[len("task") :])


def video_names(row: dict) -> list[str]:
    vid = get(row, ("video", "video_id", "_key"))
    names = [get(row, ("video_path",))]
    if vid is not None:
        names += [f"videos/{vid}", f"video/{vid}", f"{vid}"]
    return names


READER = Reader(
    name="worldsense",
    annotations=("worldsense_qa.json", "*.parquet", "**/*.parquet", "*.jsonl", "*.json"),
    video_names=video_names,
    flatten=flatten,
    extra_keys=("task_domain", "task_type", "duration", "domain", "audio_class"),
)
