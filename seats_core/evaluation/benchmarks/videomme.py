"""Video-MME (Fu et al. 2024) with audio: 900 videos, 2,700 four-option questions; SEATS evaluates it with the
videos' own audio track (no subtitles).

Accepted layout (the lmms-lab/Video-MME HF release): --data holds videomme/test-00000-of-00001.parquet (or any
*.parquet / .json / .jsonl export of it) with one row per question: video_id ("001"), duration (short/medium/
long), domain, sub_category, videoID (the YouTube id = the file name), question_id ("001-1"), task_type,
question, options ["A. ...", "B. ...", "C. ...", "D. ..."], answer "A"; and the videos from the
videos_chunked_*.zip archives unpacked into data/<videoID>.mp4 (videos/<videoID>.mp4 and <videoID>.mp4 work too).
Reading parquet needs pyarrow.
"""

from __future__ import annotations

from .common import Reader, get


def video_names(row: dict) -> list[str]:
    names = []
    for vid in (get(row, ("videoid",)), get(row, ("video_id", "video", "video_path"))):
        if vid is not None:
            names += [f"data/{vid}", f"videos/{vid}", f"{vid}"]
    return names


READER = Reader(
    name="videomme",
    annotations=("videomme/*.parquet", "*.parquet", "videomme/*.json", "*.jsonl", "*.json"),
    video_names=video_names,
    extra_keys=("duration", "domain", "sub_category", "task_type"),
    id_keys=("question_id", "qid", "id"),
)
