"""What every benchmark reader shares: the `Sample` record, reported `Problem`s, and tolerant row parsing.

A reader turns one benchmark's annotation files into multiple-choice samples with the options as plain text
(letters stripped) and the answer as a letter. Rows it cannot use (no question, fewer than two options, an answer
that names no option, a video that is not on disk, a repeated id) become `Problem`s the harness reports; they are
never counted as wrong answers and never silently dropped.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

LETTERS = "ABCDEFGHIJ"  # option letters in order; benchmarks here use 3-6 options
MIN_OPTIONS = 2
HASH_CHARS = 10  # hex digits of a question hash used as an id when a release has none
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi")
ANNOTATION_EXTENSIONS = (".json", ".jsonl", ".parquet", ".csv", ".tsv")

# Field-name variants seen across public releases (compared case-insensitively).
ID_KEYS = ("question_id", "qid", "id", "index", "uid")
QUESTION_KEYS = ("question", "query", "q")
OPTION_KEYS = ("options", "choices", "candidates", "choice", "option")
ANSWER_KEYS = ("answer", "correct_option", "correct_answer", "gt_answer", "ground_truth", "gt", "label")
VIDEO_KEYS = ("video_path", "video", "video_id", "videoid", "video_name", "video_file", "vid")

_MISSING_COMMA = re.compile(r"(['\"])\s+(['\"])")  # "'a' 'b'" -> "'a', 'b'"
_RUN_TOGETHER = re.compile(r"(?:^|(?<=\s))\(?([A-J])[.)]\s")  # option markers inside one line of text
# "A. text", "(A) text", "A) text", "A: text", "[A] text", "A、text" (letter, then a separator).
_LETTERED = re.compile(r"^\s*[\(\[]?([A-J])\s*(?:[\)\]]\s*[.:：、]?|[.:：、])\s*(.*)$", re.S)


@dataclass(frozen=True)
class Sample:
    """One multiple-choice question about one video.

    options: the option texts without their letters, in order (option i has letter LETTERS[i]).
    answer: the correct option's letter.
    """

    id: str
    video: Path
    question: str
    options: tuple[str, ...]
    answer: str
    benchmark: str
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Problem:
    """A row that was skipped, and why (where = 'file:row' or a sample id)."""

    benchmark: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.benchmark} {self.where}: {self.reason}"


class RowError(ValueError):
    """A row cannot become a sample; the message says why (becomes a Problem)."""


# ---------------------------------------------------------------------------------------------------------------
# Reading annotation files


def read_records(path: Path) -> list:
    """Records of a .json (list, or dict of records keyed by id), .jsonl, .csv/.tsv or .parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            for key in ("data", "annotations", "questions", "samples"):
                if isinstance(data.get(key), list):
                    return data[key]
            return [{"_key": k, **v} if isinstance(v, dict) else v for k, v in data.items()]
        return data if isinstance(data, list) else [data]
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix == ".parquet":
        return _read_parquet(path)
    raise ValueError(f"{path}: unsupported annotation format (use one of {', '.join(ANNOTATION_EXTENSIONS)})")


def _read_parquet(path: Path) -> list[dict]:
    try:
        import pandas as pd

        frame = pd.read_parquet(path)
    except ImportError as e:
        raise ValueError(
            f"{path}: reading .parquet needs pandas with pyarrow (pip install pyarrow), or convert it to JSON"
        ) from e
    rows = frame.to_dict(orient="records")
    return [{k: v.tolist() if hasattr(v, "tolist") else v for k, v in row.items()} for row in rows]


def find_annotations(data: Path, names: Iterable[str]) -> list[Path]:
    """Annotation files for a benchmark: `data` itself if it is a file, else the first of `names` (globs)
    found under `data`, else every annotation-like file directly in `data`."""
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: no such file or folder")
    for pattern in names:
        found = sorted(p for p in data.glob(pattern) if p.is_file())
        if found:
            return found
    found = sorted(p for p in data.iterdir() if p.suffix.lower() in ANNOTATION_EXTENSIONS and p.is_file())
    if not found:
        raise FileNotFoundError(
            f"{data}: no annotation file found (looked for {', '.join(names)} and any "
            f"{'/'.join(ANNOTATION_EXTENSIONS)} file)"
        )
    return found


# ---------------------------------------------------------------------------------------------------------------
# Tolerant field access


def get(row: dict, keys: Iterable[str], default=None):
    """The first present, non-empty value among `keys` (case-insensitive, spaces/dashes as underscores)."""
    norm = {re.sub(r"[\s\-]+", "_", str(k).strip().lower()): v for k, v in row.items()}
    for key in keys:
        v = norm.get(key)
        if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
            continue
        return v
    return default


def split_option(text: str) -> tuple[str | None, str]:
    """'B. a cat' -> ('B', 'a cat'); 'a cat' -> (None, 'a cat')."""
    m = _LETTERED.match(str(text))
    if m and m.group(2).strip():
        return m.group(1), m.group(2).strip()
    return None, str(text).strip()


def _options_from_text(text: str) -> list | dict:
    """Options stored as text: JSON, a Python literal (also numpy's comma-less repr "['A. x' 'B. y']", as in
    some parquet exports), lettered options run together ("A. x B. y"), or one option per line."""
    s = text.strip()
    if s[:1] in "[{(":
        # implicit concatenation makes the comma-less repr parse as ONE string: retry with commas put back
        for candidate in (s, _MISSING_COMMA.sub(r"\1, \2", s)):
            for parse in (json.loads, ast.literal_eval):
                try:
                    value = parse(candidate)
                except (ValueError, SyntaxError):
                    continue
                if isinstance(value, dict) or (
                    isinstance(value, (list, tuple)) and len(value) >= MIN_OPTIONS
                ):
                    return value if isinstance(value, dict) else list(value)
    lines = [line for line in s.splitlines() if line.strip()]
    if len(lines) == 1:
        marks = list(_RUN_TOGETHER.finditer(s))
        if len(marks) >= MIN_OPTIONS and [m.group(1) for m in marks] == list(LETTERS[: len(marks)]):
            ends = [m.start() for m in marks[1:]] + [len(s)]
            return [s[m.start() : e].strip() for m, e in zip(marks, ends)]
    return lines


def parse_options(row: dict) -> tuple[str, ...]:
    """Option texts in letter order from a list, a dict {'A': ...}, a JSON-encoded list, a newline-separated
    string, or one column per letter ('A', 'B', ... as in TSV releases)."""
    raw = get(row, OPTION_KEYS)
    if raw is None:
        lettered = [get(row, (c.lower(),)) for c in LETTERS]
        if lettered[0] is None:
            raise RowError("no options")
        raw = lettered[: next((i for i, v in enumerate(lettered) if v is None), len(LETTERS))]
    if isinstance(raw, str):
        raw = _options_from_text(raw)
    if isinstance(raw, dict):
        keys = sorted(raw, key=lambda k: str(k).strip("()").upper())
        raw = [raw[k] for k in keys]
    if not isinstance(raw, (list, tuple)):
        raise RowError(f"options are neither a list nor a mapping ({type(raw).__name__})")
    texts = []
    for i, item in enumerate(raw):
        letter, text = split_option(str(item))
        if letter is not None and letter != LETTERS[i]:
            raise RowError(f"option {i + 1} is lettered {letter!r}, expected {LETTERS[i]!r}")
        texts.append(text)
    if len(texts) < MIN_OPTIONS:
        raise RowError(f"needs at least {MIN_OPTIONS} options, found {len(texts)}")
    if len(texts) > len(LETTERS):
        raise RowError(f"more than {len(LETTERS)} options")
    if any(not t for t in texts):
        raise RowError("an option is empty")
    return tuple(texts)


def parse_answer(raw, options: tuple[str, ...]) -> str:
    """The answer letter from 'B', '(B)', 'B. a cat', 'a cat' (an option's text) or a 0-based int index."""
    letters = LETTERS[: len(options)]
    if raw is None:
        raise RowError("no answer")
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 0 <= raw < len(options):
            return letters[raw]
        raise RowError(f"answer index {raw} is out of range for {len(options)} options")
    s = str(raw).strip()
    bare = s.strip("()[] .").upper()
    if len(bare) == 1 and bare in letters:
        return bare
    letter, text = split_option(s)
    if letter is not None and letter in letters:
        return letter
    matches = [letters[i] for i, o in enumerate(options) if o.strip().lower() == text.lower()]
    if len(matches) == 1:
        return matches[0]
    raise RowError(f"answer {s[:40]!r} names none of the {len(options)} options")


def resolve_video(root: Path, names: Iterable[str]) -> Path | None:
    """The first existing file among `names` (relative to `root`, with or without a video extension)."""
    for name in names:
        if not name:
            continue
        p = Path(name) if Path(name).is_absolute() else root / name
        if p.is_file():
            return p
        if not p.suffix or p.suffix.lower() not in VIDEO_EXTENSIONS:
            for ext in VIDEO_EXTENSIONS:
                q = p.with_name(p.name + ext)
                if q.is_file():
                    return q
    return None


# ---------------------------------------------------------------------------------------------------------------
# Rows -> samples


@dataclass
class Reader:
    """How one benchmark's rows map onto samples.

    annotations: glob patterns (under --data) of the annotation files, most specific first.
    video_names: row -> candidate video paths relative to --data (the first that exists is used).
    flatten: record -> question rows (for releases that nest several questions under one video).
    extra_keys: row fields kept in Sample.extra (task type, duration, ...), for per-category analysis.
    """

    name: str
    annotations: tuple[str, ...]
    video_names: Callable[[dict], list[str]]
    flatten: Callable[[dict], Iterator[dict]] = lambda record: iter([record])
    extra_keys: tuple[str, ...] = ()
    id_keys: tuple[str, ...] = ID_KEYS
    answer_keys: tuple[str, ...] = ANSWER_KEYS

    def load(self, data: str | Path) -> tuple[list[Sample], list[Problem]]:
        data = Path(data).expanduser()
        root = data.parent if data.is_file() else data
        samples, problems, seen = [], [], set()
        for path in find_annotations(data, self.annotations):
            try:
                records = read_records(path)
            except (ValueError, OSError) as e:
                problems.append(Problem(self.name, path.name, f"unreadable annotation file: {e}"))
                continue
            row_no = 0
            for record in records:
                rows = self.flatten(record) if isinstance(record, dict) else iter([record])
                for row in rows:
                    row_no += 1
                    where = f"{path.name}:{row_no}"
                    try:
                        sample = self.sample(row, root)
                    except RowError as e:
                        problems.append(Problem(self.name, where, str(e)))
                        continue
                    if sample.id in seen:
                        problems.append(
                            Problem(self.name, where, f"duplicate id {sample.id!r} (kept the first)")
                        )
                        continue
                    seen.add(sample.id)
                    samples.append(sample)
        return samples, problems

    def sample(self, row, root: Path) -> Sample:
        if not isinstance(row, dict):
            raise RowError(f"not a record ({type(row).__name__})")
        question = get(row, QUESTION_KEYS)
        if not isinstance(question, str) or not question.strip():
            raise RowError("no question")
        options = parse_options(row)
        answer = parse_answer(get(row, self.answer_keys), options)
        names = [str(n) for n in self.video_names(row) if n not in (None, "")]
        if not names:
            raise RowError("no video field")
        video = resolve_video(root, names)
        if video is None:
            raise RowError(f"video not found (looked for {names[0]!r} under {root})")
        sid = get(row, self.id_keys)
        sid = str(sid) if sid is not None else stable_id(names[0], row)
        extra = {k: row[k] for k in self.extra_keys if k in row}
        return Sample(sid, video, question.strip(), options, answer, self.name, extra)


def nested_questions(*list_keys: str) -> Callable[[dict], Iterator[dict]]:
    """A `flatten` for releases that list several questions under one video record: each question row gets
    the video's fields (its own fields win) and, when it has no id, '<video>#<n>' built by the reader."""

    def flatten(record: dict) -> Iterator[dict]:
        key = next((k for k in list_keys if isinstance(record.get(k), list)), None)
        if key is None:
            yield record
            return
        shared = {k: v for k, v in record.items() if k != key}
        for n, q in enumerate(record[key], start=1):
            yield {**shared, "_qnum": n, **q} if isinstance(q, dict) else q

    return flatten


def stable_id(video: str, row: dict) -> str:
    """An id for releases without one: the video stem plus the question's number or a hash of its text."""
    stem = Path(str(get(row, VIDEO_KEYS, video))).stem
    if "_qnum" in row:
        return f"{stem}#{row['_qnum']}"
    text = f"{get(row, QUESTION_KEYS)}|{get(row, OPTION_KEYS)}"
    return f"{stem}#{hashlib.sha1(text.encode()).hexdigest()[:HASH_CHARS]}"
