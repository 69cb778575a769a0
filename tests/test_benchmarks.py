"""Benchmark readers: tiny synthetic folders in each release's layout, read back against what was written.

The expected samples come from the writer's own list of (video, question, gold letter), built independently of
the readers; malformed rows and missing videos must come back as reported problems, never as samples.
"""

from __future__ import annotations

import json

import pytest

from seats_core.data import synth
from seats_core.data.benchmark_folders import BAD_ROWS, write_benchmark
from seats_core.evaluation.benchmarks import BENCHMARKS, canonical_name, load_benchmark
from seats_core.evaluation.benchmarks.common import RowError, parse_answer, parse_options, split_option

CLIP_SIZE = (64, 48)
CLIP_FPS = 4


@pytest.fixture(scope="module")
def tiny_clips(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("bench_clips")
    return [
        synth.make_demo_clip(d / f"c{k}.mp4", seconds=s, size=CLIP_SIZE, fps=CLIP_FPS, seed=k)["path"]
        for k, s in enumerate((4, 5))
    ]


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_reader_finds_every_good_row_and_reports_the_bad(name, tiny_clips, tmp_path):
    info = write_benchmark(name, tmp_path / name, tiny_clips)
    samples, problems = load_benchmark(name, tmp_path / name)
    got = {(s.video.relative_to(tmp_path / name).as_posix(), s.question): s.answer for s in samples}
    assert got == info["expected"]
    assert all(s.benchmark == name for s in samples)
    assert len({s.id for s in samples}) == len(samples)
    assert all(len(s.options) >= 2 and s.answer in "ABCD"[: len(s.options)] for s in samples)
    # option texts come back without their letters
    assert all(not o.startswith(("A.", "B.", "(A)")) for s in samples for o in s.options)
    reasons = sorted(p.reason for p in problems)
    assert len(problems) == BAD_ROWS == info["problems"]
    assert any("names none of" in r for r in reasons)
    assert any("at least 2 options" in r for r in reasons)
    assert any("video not found" in r for r in reasons)
    assert all(p.benchmark == name and p.where for p in problems)


def test_ids_are_stable_across_reads(tiny_clips, tmp_path):
    """Resume keys depend on sample ids: reading twice (Daily-Omni has no ids of its own) gives the same ids."""
    write_benchmark("daily-omni", tmp_path, tiny_clips)
    first = [s.id for s in load_benchmark("daily-omni", tmp_path)[0]]
    second = [s.id for s in load_benchmark("daily-omni", tmp_path)[0]]
    assert first == second and len(set(first)) == len(first)


def test_worldsense_flat_rows_as_in_the_lmms_lab_export(tiny_clips, tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "v1.mp4").write_bytes(open(tiny_clips[0], "rb").read())
    rows = [
        {
            "index": 0,
            "video": "v1",
            "video_path": "clips/v1.mp4",
            "question": "Q0?",
            "candidates": ["A. x", "B. y"],
            "answer": "B",
        },
        {
            "index": 1,
            "video": "v1",
            "video_path": "clips/v1.mp4",
            "question": "Q1?",
            "candidates": ["A. x", "B. y", "C. z"],
            "answer": "C",
        },
        {
            "index": 1,
            "video": "v1",
            "video_path": "clips/v1.mp4",
            "question": "dup?",
            "candidates": ["A. x", "B. y"],
            "answer": "A",
        },
    ]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples, problems = load_benchmark("WorldSense", tmp_path)
    assert [(s.id, s.answer, s.options) for s in samples] == [
        ("0", "B", ("x", "y")),
        ("1", "C", ("x", "y", "z")),
    ]
    assert len(problems) == 1 and "duplicate id" in problems[0].reason


def test_unreadable_rows_and_files_are_problems(tiny_clips, tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(open(tiny_clips[0], "rb").read())
    good = {"id": "g", "video": "a.mp4", "question": "Q?", "options": ["p", "q"], "answer": "A"}
    rows = [good, "just a string", {"id": "n", "video": "a.mp4", "options": ["p", "q"], "answer": "A"}]
    (tmp_path / "lvomnibench.json").write_text(json.dumps(rows))
    (tmp_path / "broken.jsonl").write_text('{"id": "x", "question": ')
    samples, problems = load_benchmark("lvomnibench", tmp_path)
    # lvomnibench*.json is the preferred annotation: broken.jsonl is not read at all
    assert [s.id for s in samples] == ["g"]
    assert sorted(p.reason for p in problems) == ["no question", "not a record (str)"]
    samples, problems = load_benchmark("lvomnibench", tmp_path / "broken.jsonl")
    assert samples == [] and len(problems) == 1 and "unreadable annotation file" in problems[0].reason


def test_parquet_without_pyarrow_is_reported_not_fatal(tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyarrow is installed: parquet files are readable")
    (tmp_path / "videomme").mkdir()
    (tmp_path / "videomme" / "test-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
    samples, problems = load_benchmark("videomme", tmp_path)
    assert samples == [] and "pyarrow" in problems[0].reason


def test_videomme_parquet_when_pyarrow_is_installed(tiny_clips, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "abc.mp4").write_bytes(open(tiny_clips[0], "rb").read())
    (tmp_path / "videomme").mkdir()
    frame = pd.DataFrame(
        [
            {
                "videoID": "abc",
                "question_id": "001-1",
                "question": "Q?",
                "options": ["A. u", "B. v", "C. w", "D. x"],
                "answer": "D",
            }
        ]
    )
    frame.to_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet")
    samples, problems = load_benchmark("video-mme", tmp_path)
    assert [(s.id, s.answer, s.options) for s in samples] == [
        ("001-1", "D", ("u", "v", "w", "x"))
    ] and not problems


def test_missing_folder_and_unknown_benchmark(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_benchmark("worldsense", tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("mmlu", tmp_path)


@pytest.mark.parametrize(
    "given, canonical",
    [
        ("WorldSense", "worldsense"),
        ("Daily-Omni", "daily-omni"),
        ("daily_omni", "daily-omni"),
        ("Video-MME", "videomme"),
        ("OmniVideoBench", "omnivideobench"),
        ("LV-OmniBench", "lvomnibench"),
    ],
)
def test_canonical_names(given, canonical):
    assert canonical_name(given) == canonical


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A. a cat", ("A", "a cat")),
        ("(B) two dogs", ("B", "two dogs")),
        ("C) x", ("C", "x")),
        ("D: y", ("D", "y")),
        ("[A] z", ("A", "z")),
        ("a cat", (None, "a cat")),
        ("A", (None, "A")),
        ("Apples", (None, "Apples")),
    ],
)
def test_split_option(text, expected):
    assert split_option(text) == expected


@pytest.mark.parametrize(
    "row, options",
    [
        ({"options": ["A. x", "B. y"]}, ("x", "y")),
        ({"Choices": {"B": "y", "A": "x"}}, ("x", "y")),
        ({"candidates": '["(A) x", "(B) y", "(C) z"]'}, ("x", "y", "z")),
        ({"options": "A. x\nB. y\n"}, ("x", "y")),
        ({"A": "x", "B": "y", "C": "z", "D": ""}, ("x", "y", "z")),  # one column per letter (TSV releases)
        ({"options": "['A. x' 'B. y z']"}, ("x", "y z")),  # numpy's comma-less repr in parquet exports
        ({"Choice": "['A. x', 'B. y']"}, ("x", "y")),  # a Python literal
        ({"options": "A. red car B. blue bus C. dog"}, ("red car", "blue bus", "dog")),  # run together
        ({"options": ["A.Northwest", "B.Southwest"]}, ("Northwest", "Southwest")),  # no space after the dot
    ],
)
def test_parse_options_variants(row, options):
    assert parse_options(row) == options


@pytest.mark.parametrize(
    "row, message",
    [
        ({"options": ["A. x"]}, "at least 2"),
        ({"options": "['A. only']"}, "at least 2"),
        ({"options": ["A. x", "C. y"]}, "lettered 'C'"),
        ({}, "no options"),
        ({"options": 3}, "neither a list"),
    ],
)
def test_parse_options_rejects(row, message):
    with pytest.raises(RowError, match=message):
        parse_options(row)


@pytest.mark.parametrize(
    "raw, letter",
    [
        ("B", "B"),
        ("(C)", "C"),
        ("b", "B"),
        ("D. the end", "D"),
        ("the end", "D"),
        ("The End.", None),
        (2, "C"),
        (" A ", "A"),
    ],
)
def test_parse_answer(raw, letter):
    options = ("a start", "middle", "other", "the end")
    if letter is None:
        with pytest.raises(RowError):
            parse_answer(raw, options)
    else:
        assert parse_answer(raw, options) == letter


@pytest.mark.parametrize("raw", ["E", 4, None, "purple"])
def test_parse_answer_rejects(raw):
    with pytest.raises(RowError):
        parse_answer(raw, ("w", "x", "y", "z"))
