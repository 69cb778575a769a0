"""The `eval` harness: prompt and letter extraction, the table maths, and end-to-end runs on the miniature
(random weights: the accuracy means nothing, the pipeline, resume and reporting must work).

Resume is tested by interrupting runs (an exception injected after k engine runs; a --limit that is raised
later) and counting the engine calls of the rerun: nothing already in results.jsonl may be recomputed.
"""

from __future__ import annotations

import json

import pytest

from seats_core.cli import cli
from seats_core.data import synth
from seats_core.data.benchmark_folders import BAD_ROWS, write_benchmark
from seats_core.evaluation import harness as ev
from seats_core.evaluation.benchmarks import BENCHMARKS
from seats_core.evaluation.benchmarks.mcq import INSTRUCTION, extract_letter, format_prompt
from seats_core.evaluation.benchmarks.report import summarize
from seats_core.method import PRESETS
from seats_core.run.flops import LLMDims, prefill_flops
from seats_core.run.media import MediaConfig

CLIP_SIZE = (64, 48)
CLIP_FPS = 4
# A tiny per-frame budget for the multi-benchmark runs (4 tokens per frame pair) keeps them quick on a CPU;
# the CLI test runs at the paper's budget (MediaConfig defaults).
SMALL = 4 * 28 * 28
SMALL_MEDIA = MediaConfig(min_pixels=SMALL, max_pixels=SMALL)


class Interrupted(RuntimeError):
    pass


class Spy:
    """Wraps an Engine, counting prepare/run calls; optionally raises on the run after `fail_after` runs."""

    def __init__(self, engine, fail_after: int | None = None):
        self.engine, self.fail_after = engine, fail_after
        self.adapter = engine.adapter  # RunRecord reads the token geometry from it
        self.prepares, self.runs = 0, 0

    def prepare(self, *a, **k):
        self.prepares += 1
        return self.engine.prepare(*a, **k)

    def media(self, *a, **k):
        return self.engine.media(*a, **k)

    def run(self, *a, **k):
        if self.fail_after is not None and self.runs >= self.fail_after:
            raise Interrupted("injected interruption")
        self.runs += 1
        return self.engine.run(*a, **k)


@pytest.fixture(scope="module")
def engine():
    from seats_core.run.pipeline import Engine

    return Engine("mini", device="cpu")


@pytest.fixture(scope="module")
def tiny_clips(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("eval_clips")
    return [
        synth.make_demo_clip(d / f"c{k}.mp4", seconds=s, size=CLIP_SIZE, fps=CLIP_FPS, seed=k)["path"]
        for k, s in enumerate((4, 5))
    ]


# ---------------------------------------------------------------------------------------------------------------
# Prompt and extraction


def test_prompt_lists_lettered_options_and_asks_for_the_letter():
    assert (
        format_prompt(" What is it? ", ["a cat", "a dog"])
        == f"What is it?\nA. a cat\nB. a dog\n{INSTRUCTION}"
    )


OPTS = ("a red car", "a blue bus", "the dog", "nothing at all")


@pytest.mark.parametrize(
    "reply, letter",
    [
        ("B", "B"),
        ("B.", "B"),
        ("b", None),  # lowercase letters are words, not option letters
        (" C\n", "C"),
        ("(C)", "C"),
        ("[D]", "D"),
        ("**A**", "A"),
        ("A.", "A"),
        ("A. a red car", "A"),
        ("B) a blue bus", "B"),
        ("The answer is D.", "D"),
        ("The correct answer is (A) a red car", "A"),
        ("Answer: C", "C"),
        ("answer:B", "B"),
        ("The best answer is:B", "B"),
        ("Option B", "B"),
        ("I'd say C", "C"),
        ("C, because the dog barks", "C"),
        ("A is correct", "A"),
        ("A dog is barking.", None),  # the article, and no option text matched
        ("A blue bus went by", "B"),  # article skipped; the option's text is in the reply
        ("a blue bus", "B"),  # exactly an option's text
        ("The Dog.", "C"),
        ("I think it is the dog", "C"),
        ("nothing at all", "D"),
        ("答案是B", "B"),
        ("E", None),  # only four options
        ("CDE", None),  # not a standalone letter
        ("Because", None),
        ("", None),
        ("   ", None),
        ("none of them", None),
        ("B or C", "B"),  # the first standalone letter wins
    ],
)
def test_extract_letter(reply, letter):
    assert extract_letter(reply, OPTS) == letter


def test_extract_letter_without_options_accepts_a_to_e():
    assert extract_letter("E") == "E"
    assert extract_letter("F") is None
    assert extract_letter("(e)") is None


# ---------------------------------------------------------------------------------------------------------------
# Settings and the table maths


def test_parse_retentions_pairs_numbers_and_keeps_presets():
    assert ev.parse_retentions("R10, r25,0.3,0.6") == [
        ("R10", PRESETS["R10"]),
        ("R25", PRESETS["R25"]),
        ("0.3,0.6", (0.3, 0.6)),
    ]
    with pytest.raises(ValueError):
        ev.parse_retentions("R10,0.3")
    with pytest.raises(ValueError):
        ev.parse_retentions("R99")


def test_run_specs_full_runs_once_whatever_the_retention():
    specs = ev.run_specs("full,seats,divprune-om,full", "R10,R25")
    assert [(s.method, s.label) for s in specs] == [
        ("full", "-"),
        ("seats", "R10"),
        ("seats", "R25"),
        ("divprune-om", "R10"),
        ("divprune-om", "R25"),
    ]
    assert specs[2].config.retention == PRESETS["R25"]
    with pytest.raises(ValueError, match="unknown method"):
        ev.run_specs("seats,magic", "R10")


def _rec(bench, method, label, correct, tflops, ms, pred="A"):
    return dict(
        model="m",
        benchmark=bench,
        sample_id=f"{bench}{tflops}{ms}",
        method=method,
        retention=label,
        correct=correct,
        pred=pred,
        tflops=tflops,
        tflops_full=10.0,
        prefill_ms=ms,
        selection_ms=0.0,
    )


def test_summary_matches_hand_computation():
    recs = [
        _rec("b1", "full", "-", True, 10.0, 100.0),
        _rec("b1", "full", "-", True, 10.0, 120.0),
        _rec("b2", "full", "-", True, 10.0, 80.0),
        _rec("b2", "full", "-", False, 10.0, 100.0),
        _rec("b1", "seats", "R10", True, 1.0, 20.0),
        _rec("b1", "seats", "R10", False, 2.0, 30.0, pred=None),
        _rec("b2", "seats", "R10", True, 1.5, 10.0),
        _rec("b2", "seats", "R10", False, 1.5, 20.0),
        _rec("b1", "random", "R10", True, 1.0, 10.0),  # covers one benchmark only: no mean
    ]
    s = summarize(recs)
    assert s["benchmarks"] == ["b1", "b2"]
    full, seats, rnd = s["rows"]
    assert (full["method"], seats["method"], rnd["method"]) == ("full", "seats", "random")
    assert (
        full["accuracy"] == {"b1": 100.0, "b2": 50.0}
        and full["mean"] == 75.0
        and full["pct_of_full"] == 100.0
    )
    assert seats["accuracy"] == {"b1": 50.0, "b2": 50.0} and seats["mean"] == 50.0
    assert seats["pct_of_full"] == pytest.approx(100 * 50 / 75)
    assert seats["tflops"] == pytest.approx((1 + 2 + 1.5 + 1.5) / 4) and seats["prefill_ms"] == 20.0
    assert seats["unanswered"] == 1 and seats["samples"] == 4 and seats["n"] == {"b1": 2, "b2": 2}
    assert rnd["mean"] is None and rnd["pct_of_full"] is None and rnd["accuracy"]["b2"] is None


def test_a_line_cut_short_by_a_kill_is_ignored(tmp_path):
    store = ev.ResultStore(tmp_path)
    store.append(_rec("b1", "full", "-", True, 1.0, 1.0))
    with store.path.open("a") as f:
        f.write('{"model": "m", "benchmark": "b1", "sample_')  # killed mid-line
    assert len(store.records()) == 1 and len(store.done()) == 1
    store.append(_rec("b2", "full", "-", True, 1.0, 1.0))  # goes on a fresh line, not onto the stub
    assert [r["benchmark"] for r in store.records()] == ["b1", "b2"]


# ---------------------------------------------------------------------------------------------------------------
# End to end on the miniature


@pytest.mark.slow
def test_all_five_formats_end_to_end_and_resume_after_a_limit(engine, tiny_clips, tmp_path):
    """Five synthetic benchmarks in one data folder; a corrupt video counts as a problem, not an answer."""
    data = tmp_path / "data"
    folder = {
        "worldsense": "WorldSense",
        "daily-omni": "Daily-Omni",
        "omnivideobench": "OmniVideoBench",
        "videomme": "Video-MME",
        "lvomnibench": "LVOmniBench",
    }
    for name in BENCHMARKS:
        write_benchmark(name, data / folder[name], tiny_clips)
    (data / "LVOmniBench" / "videos" / "long_0.mp4").write_bytes(b"\x00not a video" * 64)
    specs = ev.run_specs("full,seats", "R10")
    store = ev.ResultStore(tmp_path / "out")

    samples, problems = ev.load_samples(str(data), ",".join(BENCHMARKS), limit=1)
    assert len(samples) == len(BENCHMARKS) and len(problems) == BAD_ROWS * len(BENCHMARKS)
    spy = Spy(engine)
    work = ev.pending(samples, specs, store.done(), "mini")
    run_problems = ev.evaluate(
        spy, work, store, model="mini", max_new_tokens=1, media=SMALL_MEDIA, progress=False
    )
    assert spy.prepares == len(BENCHMARKS) and spy.runs == 2 * (len(BENCHMARKS) - 1)
    assert [p.benchmark for p in run_problems] == ["lvomnibench"]
    assert "cannot prepare" in run_problems[0].reason
    # beside each results line, the run's record (without token columns): same answer, its own geometry
    from seats_core.run.record import RunRecord

    lines = store.records_path.read_text().splitlines()
    assert len(lines) == spy.runs == len(store.records())
    for line, result in zip(lines, store.records()):
        stored = json.loads(line)
        record = RunRecord.from_dict(stored)
        assert stored["key"][2:] == [result["sample_id"], result["method"], result["retention"]]
        assert record.tokens is None and record.answer == result["reply"] and record.geometry.block_px == 28

    # "interrupted" by the limit: raising it to 2 (seats only, to keep the test short) runs just the new
    # samples; lvomnibench's first sample is retried (nothing of it was recorded) and fails again
    samples2, _ = ev.load_samples(str(data), ",".join(BENCHMARKS), limit=2)
    specs2 = ev.run_specs("seats", "R10")
    work = ev.pending(samples2, specs2, store.done(), "mini")
    lv = {s.id for s in samples2 if s.benchmark == "lvomnibench"}
    assert {s.id for s, _ in work} == {s.id for s in samples2[1::2]} | lv
    spy2 = Spy(engine)
    ev.evaluate(spy2, work, store, model="mini", max_new_tokens=1, media=SMALL_MEDIA, progress=False)
    assert spy2.runs == len(BENCHMARKS) - 1 and spy2.prepares == len(BENCHMARKS) - 1 + len(lv)

    records = store.records()
    keys = [(r["benchmark"], r["sample_id"], r["method"], r["retention"]) for r in records]
    assert len(keys) == len(set(keys)) == 3 * (len(BENCHMARKS) - 1)
    by_id = {s.id: s for s in samples2}
    for r in records:
        assert r["correct"] == (r["pred"] == by_id[r["sample_id"]].answer)
        assert r["pred"] == extract_letter(r["reply"], by_id[r["sample_id"]].options)
        assert r["tflops"] <= r["tflops_full"] and r["prefill_ms"] > 0
    summary = summarize(records)
    assert summary["benchmarks"] == sorted(set(BENCHMARKS) - {"lvomnibench"})
    assert [(row["method"], row["retention"], row["samples"]) for row in summary["rows"]] == [
        ("full", "-", 4),
        ("seats", "R10", 8),
    ]
    full, seats = summary["rows"]
    assert seats["tflops"] < full["tflops"]
    assert full["tflops"] == pytest.approx(full["tflops_full"])


def test_cli_end_to_end_resumes_after_an_injected_failure(engine, tiny_clips, tmp_path, monkeypatch, capsys):
    """At the paper's media budget: 2 samples x (full, seats R10) = 4 runs; the 4th raises; the rerun does 1."""
    write_benchmark("videomme", tmp_path / "vm", tiny_clips)
    out = tmp_path / "out"
    argv = [
        "--debug",
        "eval",
        "--data",
        str(tmp_path / "vm"),
        "--benchmark",
        "Video-MME",
        "--methods",
        "full,seats",
        "--retention",
        "R10",
        "--limit",
        "2",
        "--out",
        str(out),
        "--max-new-tokens",
        "2",
        "--warmup",
        "0",
        "--no-progress",
    ]
    spies = []

    def factory(fail_after):
        def make(args):
            assert args.model == "mini"
            spies.append(Spy(engine, fail_after))
            return spies[-1]

        return make

    monkeypatch.setattr(ev, "make_engine", factory(3))
    with pytest.raises(Interrupted):
        cli(argv)
    assert spies[0].runs == 3 and spies[0].prepares == 2
    finished = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(finished) == 3

    monkeypatch.setattr(ev, "make_engine", factory(None))
    capsys.readouterr()
    assert cli(argv) == 0
    assert spies[1].runs == 1 and spies[1].prepares == 1  # only the missing (sample 2, seats) run
    captured = capsys.readouterr()
    assert "1 to do, 3 already" in captured.err and f"{BAD_ROWS} row(s) skipped" in captured.err
    assert "| mini | full | - |" in captured.out and "| mini | seats | R10 |" in captured.out

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert records[:3] == finished  # nothing finished was rewritten
    assert sorted((r["sample_id"], r["method"]) for r in records) == [
        ("001-1", "full"),
        ("001-1", "seats"),
        ("001-2", "full"),
        ("001-2", "seats"),
    ]
    dims = LLMDims.from_config(engine.adapter.text_config)
    for r in records:  # the full cost is the analytic prefill of every prompt token at every layer
        assert r["tflops_full"] == pytest.approx(
            prefill_flops(dims, [r["prompt_tokens"]] * engine.num_layers) / 1e12
        )
        assert (r["tflops"] < r["tflops_full"]) == (r["method"] == "seats")
    summary = json.loads((out / "results.json").read_text())
    assert [(row["method"], row["n"]) for row in summary["rows"]] == [
        ("full", {"videomme": 2}),
        ("seats", {"videomme": 2}),
    ]
    assert (out / "results.md").read_text().startswith("| model | method | retention | videomme |")
    assert len((out / "problems.jsonl").read_text().splitlines()) == BAD_ROWS

    # a third run has nothing to do and does not even load the model
    monkeypatch.setattr(
        ev, "make_engine", lambda args: pytest.fail("the model was loaded with nothing to do")
    )
    assert cli(argv) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--benchmark", "mmlu"], "unknown benchmark"),
        (["--benchmark", "worldsense", "--methods", "seats,magic"], "unknown method"),
        (["--benchmark", "worldsense", "--retention", "R99"], "retention"),
        (["--benchmark", "worldsense", "--limit", "0"], "--limit"),
        (["--benchmark", "worldsense,videomme"], "no sub-folder"),
    ],
)
def test_cli_bad_settings_fail_before_loading(extra, message, tiny_clips, tmp_path, monkeypatch, capsys):
    write_benchmark("worldsense", tmp_path / "ws", tiny_clips)
    monkeypatch.setattr(ev, "make_engine", lambda args: pytest.fail("the model was loaded"))
    assert cli(["eval", "--data", str(tmp_path / "ws"), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_missing_data_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ev, "make_engine", lambda args: pytest.fail("the model was loaded"))
    assert (
        cli(
            [
                "eval",
                "--data",
                str(tmp_path / "nope"),
                "--benchmark",
                "worldsense",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err
