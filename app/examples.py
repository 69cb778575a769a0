"""Example clips shipped in assets/examples/ and their precomputed runs (written by scripts/make_examples.py).

assets/examples/index.json:
  {"settings": {model, method, retention, baseline, max_new_tokens},
   "examples": [{name, title, clip, question, sha256, results, analysis (file or null)}]}
<name>.results.json: {"runs": {"full": record, "method": record, "baseline": record}} (RunRecord dicts).

An example is recognised by the SHA-256 of the clip's bytes (Gradio copies uploads and example files into its
cache under other names) and its question, so loading one never needs a model call.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from seats_core.run.record import RunRecord

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "assets" / "examples"
INDEX = "index.json"
HASH_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=1)
def _index(directory: str) -> dict:
    path = Path(directory) / INDEX
    if not path.exists():
        return {"settings": {}, "examples": []}
    return json.loads(path.read_text())


def index(directory: Path = EXAMPLES_DIR) -> dict:
    """The parsed index ({"settings": {...}, "examples": [...]}); empty when no examples were generated."""
    return _index(str(directory))


def gallery(directory: Path = EXAMPLES_DIR) -> list[list[str]]:
    """[[clip path, question], ...] for gr.Examples, only for clips that exist."""
    rows = []
    for ex in index(directory)["examples"]:
        clip = Path(directory) / ex["clip"]
        if clip.exists():
            rows.append([str(clip), ex["question"]])
    return rows


def labels(directory: Path = EXAMPLES_DIR) -> list[str]:
    return [
        ex.get("title", ex["name"])
        for ex in index(directory)["examples"]
        if (Path(directory) / ex["clip"]).exists()
    ]


def find(clip_path: str | None, question: str | None, directory: Path = EXAMPLES_DIR) -> dict | None:
    """The index entry whose clip has the same bytes as `clip_path` and the same question, else None."""
    entries = index(directory)["examples"]
    if not clip_path or not entries or not Path(clip_path).is_file():
        return None
    digest = file_sha256(clip_path)
    q = (question or "").strip()
    for ex in entries:
        if ex["sha256"] == digest and ex["question"].strip() == q:
            return ex
    return None


def load_runs(entry: dict, directory: Path = EXAMPLES_DIR) -> dict[str, dict]:
    """RUN_KEYS -> RunRecord dict (or {"error": ...}) of a precomputed example, checked by RunRecord."""
    data = json.loads((Path(directory) / entry["results"]).read_text())
    return {
        k: run if "error" in run else RunRecord.from_dict(run).to_dict() for k, run in data["runs"].items()
    }


def load_analysis(entry: dict, directory: Path = EXAMPLES_DIR) -> dict | None:
    name = entry.get("analysis")
    if not name or not (Path(directory) / name).exists():
        return None
    return json.loads((Path(directory) / name).read_text())


def clip_path(entry: dict, directory: Path = EXAMPLES_DIR) -> str:
    return str(Path(directory) / entry["clip"])
