"""Real `python -m lmms_eval` runs with the plugin on the miniature, in one process and data-parallel in two.

One set of offline tasks (a task folder as `seats eval-tasks` writes it):
- `seats_scenes`: three generated scenes (seats_core.data.scenes; three docs, so two ranks get 2 + 1 and lmms-eval
  pads the second with a copy);
- `seats_daily_omni`, `seats_omnivideobench`, `seats_lvomnibench`: written by `seats eval-tasks` from the synthetic
  benchmark folders (seats_core.data.benchmark_folders);
- upstream lmms-eval's `worldsense` and `videomme` task definitions (their prompts and scorers, included from the
  installed package) over the same synthetic data, as local JSON docs instead of the hub's.

Both runs (`--verbosity DEBUG`, without which lmms-eval exits 0 on a failed evaluation) go at the same time:
`python -m lmms_eval`, and `accelerate launch --multi_gpu --num_processes 2` on the CPU (gloo). Checks: exit 0,
the same reply per doc in both, each `seats_` reply equal to a direct Engine run on the same prompt, accuracies
equal to the synthetic folders' answer keys scored by `extract_letter`, and cost logs (one file per rank in the
2-process run) that name their rank and hold every doc exactly once. ~40 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seats_core.cli import cli
from seats_core.data import scenes, synth
from seats_core.data.benchmark_folders import write_benchmark
from seats_core.evaluation import lmms_tasks
from seats_core.evaluation.benchmarks import LETTERS, Sample, load_benchmark
from seats_core.evaluation.benchmarks.mcq import extract_letter, format_prompt
from seats_core.evaluation.harness import EVAL_MAX_SECONDS
from seats_core.evaluation.lmms_eval_plugin import cut_at_stops
from seats_core.prune.config import SeatsConfig
from seats_core.run.media import MediaConfig
from tests.test_lmms_plugin import write_entry_points

lmms_eval = pytest.importorskip(
    "lmms_eval", reason="the evaluation extras are not installed (requirements-eval.txt)"
)
pytest.importorskip("accelerate")
pytest.importorskip("cv2", reason="upstream task code imports cv2 (opencv-python-headless)")

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("daily-omni", "omnivideobench", "lvomnibench")  # the three upstream lmms-eval lacks
SCENE_SEEDS = (0, 1, 2)
MAX_NEW_TOKENS = 2
STOP = lmms_tasks.STOP
RUN_TIMEOUT_S = 400
UPSTREAM = Path(lmms_eval.__file__).parent / "tasks"
VIDEOMME_SUB_CATEGORY = (
    "Humanity & History"  # one of upstream videomme's categories (the synthetic rows have none)
)


def _upstream_tasks(data: Path, tasks: Path) -> dict[str, int]:
    """Upstream worldsense / videomme over the synthetic folders' usable rows, in the hub exports' schema."""
    ws, _ = load_benchmark("worldsense", data / "WorldSense")
    vm, _ = load_benchmark("videomme", data / "videomme")
    lettered = [[f"{LETTERS[i]}. {o}" for i, o in enumerate(s.options)] for s in ws + vm]
    docs = {
        "worldsense": [
            {"index": i, "video_path": str(s.video), "question": s.question, "candidates": opts, "answer": s.answer,
             "task_type": "x", "task_domain": "Daily Life", "duration": "<1min", "audio_class": ["speech"]}
            for i, (s, opts) in enumerate(zip(ws, lettered))
        ],  # video_path is absolute: upstream joins it to its cache folder, which then has no effect
        "videomme": [
            {**s.extra, "question_id": s.id, "videoID": s.video.stem, "question": s.question, "options": opts,
             "answer": s.answer, "sub_category": VIDEOMME_SUB_CATEGORY}
            for s, opts in zip(vm, lettered[len(ws):])
        ],  # upstream reads $HF_HOME/videomme/data/<videoID>.mp4: each run's HF_HOME links videomme/ there
    }  # fmt: skip
    for name, rows in docs.items():
        (tasks / f"upstream_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tasks / f"upstream_{name}.yaml").write_text(
            f"include: {UPSTREAM / name / (name + '.yaml')}\ntask: seats_test_upstream_{name}\n"
            f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tasks / f'upstream_{name}.jsonl'}\n"
        )
    return {f"seats_test_upstream_{name}": len(rows) for name, rows in docs.items()}


def _scene_samples(folder: Path) -> list[Sample]:
    out = []
    for seed in SCENE_SEEDS:
        s = scenes.make_sample(seed, seconds=4)
        video = scenes.write_sample(s, folder / f"scene{seed}.mp4")
        question = s.question.split(" (A) ")[0]  # the options go in the task's own prompt
        out.append(Sample(f"scene{seed}", video, question, s.options, s.answer, "scenes"))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(kind: str, root: Path, tasks: Path, names: list[str]) -> tuple[subprocess.Popen, Path]:
    run = root / kind
    home = run / "hf"
    home.mkdir(parents=True)
    (home / "videomme").symlink_to(root / "data" / "videomme")
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(root / "entry_points"), str(ROOT), env.get("PYTHONPATH", "")])
    model_args = f"pretrained=mini,method=seats,retention=R10,max_new_tokens={MAX_NEW_TOKENS},log_path={run}/cost.jsonl"
    args = ["--model", "seats_qwen2_5_omni", "--model_args", model_args, "--tasks", ",".join(names)]
    args += [
        "--include_path",
        str(tasks),
        "--batch_size",
        "1",
        "--device",
        "cpu",
        "--output_path",
        str(run / "out"),
    ]
    args += ["--log_samples", "--verbosity", "DEBUG"]
    if kind == "one":
        cmd = [sys.executable, "-m", "lmms_eval", *args]
    else:
        accelerate = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
        ]
        accelerate += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        cmd = [*accelerate, "--main_process_port", str(_free_port()), "-m", "lmms_eval", *args]
    log = (run / "stdout.txt").open("w")
    return subprocess.Popen(cmd, env=env, cwd=run, stdout=log, stderr=subprocess.STDOUT), run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("lmms_real")
    data, tasks = root / "data", root / "tasks"
    clip = synth.make_demo_clip(root / "clip.mp4", seconds=4, size=(64, 48), fps=4, seed=3)["path"]
    folders = {"daily-omni": "Daily-Omni", "omnivideobench": "OmniVideoBench", "lvomnibench": "LVOmniBench"}
    keys = {
        lmms_tasks.task_name(b): (data / f, write_benchmark(b, data / f, [clip])) for b, f in folders.items()
    }
    write_benchmark("worldsense", data / "WorldSense", [clip])
    write_benchmark("videomme", data / "videomme", [clip])

    argv = ["eval-tasks", "--data", str(data), "--benchmark", ",".join(GENERATED), "--out", str(tasks)]
    assert cli(argv) == 0
    scene_docs = _scene_samples(root)
    lmms_tasks.write_task("seats_scenes", scene_docs, tasks)
    gold = {"seats_scenes": [s.answer for s in scene_docs]}  # the answer keys, in doc order
    for name, (folder, answer_key) in keys.items():
        docs = [json.loads(x) for x in (tasks / f"{name}.jsonl").read_text().splitlines()]
        where = [(Path(d["video"]).relative_to(folder.resolve()).as_posix(), d["question"]) for d in docs]
        assert sorted(where) == sorted(answer_key["expected"])  # every usable row, none of the bad ones
        gold[name] = [answer_key["expected"][w] for w in where]
    sizes = {name: len(g) for name, g in gold.items()} | _upstream_tasks(data, tasks)
    write_entry_points(root / "entry_points")

    launched = {kind: _launch(kind, root, tasks, sorted(sizes)) for kind in ("one", "two")}
    for proc, _ in launched.values():
        proc.wait(timeout=RUN_TIMEOUT_S)
    return {"tasks": tasks, "sizes": sizes, "gold": gold, "runs": launched}


def _samples(run: Path) -> dict[tuple[str, int], dict]:
    """(task, doc_id) -> the sample lmms-eval logged (its doc, reply and scores)."""
    out = {}
    for path in run.glob("out/*/*_samples_*.jsonl"):
        task = path.stem.split("_samples_", 1)[1]
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out[(task, row["doc_id"])] = row
    return out


def _reply(row: dict) -> str:
    reply = row["filtered_resps"]
    return reply[0] if isinstance(reply, list) else reply


def test_both_launches_exit_0_and_answer_every_doc(runs):
    for kind, (proc, run) in runs["runs"].items():
        text = (run / "stdout.txt").read_text()
        assert proc.returncode == 0, f"{kind}: exit {proc.returncode}\n{text[-4000:]}"
        assert "Traceback" not in text, f"{kind}:\n{text[-4000:]}"
        got = _samples(run)
        for task, n in runs["sizes"].items():
            assert sorted(d for t, d in got if t == task) == list(range(n)), (kind, task)
    two = (runs["runs"]["two"][1] / "stdout.txt").read_text()
    assert "Running on rank 0" in two and "Running on rank 1" in two  # really two processes


def test_two_processes_give_the_same_reply_per_doc_as_one(runs):
    one, two = (_samples(run) for _, run in runs["runs"].values())
    assert one.keys() == two.keys()
    assert {k: _reply(v) for k, v in one.items()} == {k: _reply(v) for k, v in two.items()}


def test_replies_equal_a_direct_engine_run(runs):
    from seats_core.run.pipeline import Engine

    engine = Engine("mini", device="cpu")
    media = engine.media(MediaConfig(max_seconds=EVAL_MAX_SECONDS))
    config = SeatsConfig.make("seats", "R10")
    one = _samples(runs["runs"]["one"][1])
    checked = 0
    for name in runs["sizes"]:
        if name.startswith("seats_test_upstream_"):
            continue  # upstream prompts; compared between the two launches above
        for line_no, line in enumerate((runs["tasks"] / f"{name}.jsonl").read_text().splitlines()):
            doc = json.loads(line)
            prep = engine.prepare(doc["video"], format_prompt(doc["question"], doc["options"]), media)
            answer = engine.run(prep, config, max_new_tokens=MAX_NEW_TOKENS).answer
            assert _reply(one[(name, line_no)]) == cut_at_stops(answer, STOP), (name, line_no)
            checked += 1
    assert checked == sum(n for t, n in runs["sizes"].items() if not t.startswith("seats_test_upstream_"))


def test_cost_logs_name_each_rank_and_count_each_doc_once(runs):
    every = {(task, d) for task, n in runs["sizes"].items() for d in range(n)}
    for kind, ranks in (("one", [None]), ("two", [0, 1])):
        run = runs["runs"][kind][1]
        replies = {k: _reply(v) for k, v in _samples(run).items()}
        seen = []
        for rank in ranks:
            path = run / ("cost.jsonl" if rank is None else f"cost.rank{rank}.jsonl")
            lines = [json.loads(x) for x in path.read_text().splitlines()]
            assert lines and {x["rank"] for x in lines} == {rank or 0}, (kind, rank)
            for x in lines:
                assert x["reply"] == replies[(x["task"], x["doc_id"])] and x["tflops"] > 0
            seen += [(x["task"], x["doc_id"]) for x in lines]
        assert sorted(seen) == sorted(every), kind  # every doc once: no padding copy, none missing
        assert kind == "two" or not list(run.glob("cost.rank*.jsonl"))


def test_tasks_score_against_the_answer_keys(runs):
    """Each doc's target is its folder's (or scene's) answer; accuracy = the replies' letters against it."""
    (results_path,) = runs["runs"]["one"][1].glob("out/*/*_results.json")
    results = json.loads(results_path.read_text())["results"]
    one = _samples(runs["runs"]["one"][1])
    for name, gold in runs["gold"].items():
        docs = [json.loads(x) for x in (runs["tasks"] / f"{name}.jsonl").read_text().splitlines()]
        assert [one[(name, i)]["target"] for i in range(len(docs))] == gold
        right = [
            extract_letter(_reply(one[(name, i)]), d["options"]) == g
            for i, (d, g) in enumerate(zip(docs, gold))
        ]
        assert results[name]["accuracy,none"] == pytest.approx(sum(right) / len(right)), name
    assert "worldsense_score,none" in results["seats_test_upstream_worldsense"]
    assert "videomme_perception_score,none" in results["seats_test_upstream_videomme"]


def test_task_names_do_not_clash_with_upstream(runs):
    from lmms_eval.tasks import TaskManager

    upstream = set(TaskManager("ERROR").all_tasks)
    mine = {p.stem for p in runs["tasks"].glob("seats_*.yaml")}
    assert mine == {lmms_tasks.task_name(b) for b in GENERATED} | {"seats_scenes"}
    assert not mine & upstream
