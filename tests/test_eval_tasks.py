"""`seats eval-tasks`: lmms-eval task files for the five benchmarks from local folders (no lmms-eval needed here;
test_lmms_real.py runs the generated tasks through lmms-eval)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from seats_core.cli import cli
from seats_core.data import synth
from seats_core.data.benchmark_folders import BAD_ROWS, write_benchmark
from seats_core.evaluation import lmms_tasks
from seats_core.evaluation.benchmarks import BENCHMARKS

FOLDERS = {  # benchmark -> sub-folder name as released (case and - / _ differ on purpose)
    "worldsense": "WorldSense",
    "daily-omni": "Daily-Omni",
    "omnivideobench": "OmniVideoBench",
    "videomme": "Video_MME",
    "lvomnibench": "LVOmniBench",
}


class TaskLoader(yaml.SafeLoader):
    """Reads `!function utils.x` as the string 'utils.x' (lmms-eval resolves it; here we only look)."""


TaskLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("bench")
    clips = [
        synth.make_demo_clip(root / f"c{k}.mp4", seconds=2, size=(32, 32), fps=4, seed=k)["path"]
        for k in range(2)
    ]
    keys = {b: write_benchmark(b, root / "all" / f, clips) for b, f in FOLDERS.items()}
    return root / "all", keys


def test_writes_one_offline_task_per_benchmark_found(data, tmp_path, capsys):
    root, keys = data
    out = tmp_path / "tasks"
    assert cli(["eval-tasks", "--data", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (out / "utils.py").read_text() == lmms_tasks.UTILS
    for name, key in keys.items():
        task = lmms_tasks.task_name(name)
        assert task.startswith("seats_") and "-" not in task
        config = yaml.load((out / f"{task}.yaml").read_text(), Loader=TaskLoader)
        docs_file = Path(config["dataset_kwargs"]["data_files"]["test"])
        assert config["task"] == task and config["dataset_path"] == "json"
        assert docs_file.is_absolute() and docs_file == (out / f"{task}.jsonl").resolve()
        assert config["doc_to_text"] == "!function utils.doc_to_text"
        docs = [json.loads(x) for x in docs_file.read_text().splitlines()]
        folder = root / FOLDERS[name]
        got = {
            (Path(d["video"]).relative_to(folder.resolve()).as_posix(), d["question"]): d["answer"]
            for d in docs
        }
        assert got == key["expected"]  # every usable row with its answer, none of the bad ones
        assert all(Path(d["video"]).is_absolute() for d in docs)
        assert f"{task}: {len(docs)} docs" in printed and f"{BAD_ROWS} row(s) skipped" in printed
    assert f"--tasks {','.join(lmms_tasks.task_name(b) for b in BENCHMARKS)}" in printed


def test_one_benchmark_from_its_own_folder(data, tmp_path):
    root, keys = data
    out = tmp_path / "tasks"
    assert (
        cli(
            [
                "eval-tasks",
                "--data",
                str(root / "LVOmniBench"),
                "--benchmark",
                "LVOmniBench",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "seats_lvomnibench.jsonl",
        "seats_lvomnibench.yaml",
        "utils.py",
    ]


def test_missing_folder_and_unknown_name_are_one_line_errors(data, tmp_path, capsys):
    root, _ = data
    assert cli(["eval-tasks", "--data", str(tmp_path), "--out", str(tmp_path / "t")]) == 2
    assert cli(["eval-tasks", "--data", str(root), "--benchmark", "mmlu", "--out", str(tmp_path / "t")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") for e in errors)
    assert "no benchmark sub-folder" in errors[0] and "unknown benchmark 'mmlu'" in errors[1]


def test_task_functions_prompt_and_score_like_seats_eval(tmp_path):
    video = synth.make_demo_clip(tmp_path / "v.mp4", seconds=2, size=(32, 32), fps=4, seed=0)["path"]
    doc = {
        "video": str(video),
        "question": "Which colour?",
        "options": ["red", "green", "blue"],
        "answer": "B",
    }
    assert lmms_tasks.doc_to_text(doc) == "Which colour?\nA. red\nB. green\nC. blue\n" + (
        "Answer with the option's letter from the given choices directly."
    )
    assert lmms_tasks.doc_to_visual(doc) == [str(video)]
    assert (
        lmms_tasks.doc_to_visual({**doc, "video": str(tmp_path / "gone.mp4")}) == []
    )  # the plugin answers ""
    assert lmms_tasks.process_results(doc, ["B"]) == {"accuracy": 1.0, "unanswered": 0.0}
    assert lmms_tasks.process_results(doc, ["The answer is (C)."]) == {"accuracy": 0.0, "unanswered": 0.0}
    assert lmms_tasks.process_results(doc, [""]) == {"accuracy": 0.0, "unanswered": 1.0}  # not read as "A"
