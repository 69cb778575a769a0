"""Daily-Omni (Zhou et al. 2025): 684 everyday videos (30 s / 60 s) with 1,197 four-option audio-visual questions.

Accepted layout (the GitHub/HF release): --data holds `qa.json`, a list of {video_id, Question, Choice ["A. ...",
...], Answer "A", Type, video_duration, video_category, ...} (field names compared case-insensitively), and the
videos as Videos/<video_id>/<video_id>_video.mp4 (the release also ships <video_id>_audio.wav: not needed, the
audio track is read from the mp4). Flat layouts videos/<video_id>.mp4 or <video_id>.mp4 work too.
Rows have no question id: the id is <video_id>#<hash of the question>.
"""

from __future__ import annotations

from .common import Reader, get


def video_names(row: dict) -> list[str]:
    vid = get(row, ("video_id", "video", "video_name"))
    if vid is None:
        return [get(row, ("video_path",))]
    return [
        get(row, ("video_path",)),
        f"Videos/{vid}/{vid}_video.mp4",
        f"videos/{vid}/{vid}_video.mp4",
        f"{vid}/{vid}_video.mp4",
        f"Videos/{vid}",
        f"videos/{vid}",
        f"{vid}",
    ]


READER = Reader(
    name="daily-omni",
    annotations=("qa.json", "*.json", "*.jsonl"),
    video_names=video_names,
    extra_keys=("Type", "video_duration", "video_category", "qa_type"),
    id_keys=("question_id", "qid", "id"),
)
