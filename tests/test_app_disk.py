"""What the explorer leaves on disk and in memory, measured on a real server process with its own temp folder.

The server runs in a subprocess whose TMPDIR is a fresh folder, so every file it writes (Gradio's cache, the
app's `seats_explorer` folder) is counted and nothing else is; the presses come from this process over plain
HTTP. References: the folder's byte count, the process's VmRSS from /proc, and the folder listing after a SIGKILL
and a restart.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import examples
from app.files import LOCK, PREFIX, Workspace
from seats_core.data import synth
from tests.helpers import fn_indices, http_event, http_upload

PRESSES = 50
DISK_LIMIT = 50 * 2**20
QUESTION = "Which shape moves?"
START_TIMEOUT_S = 240
SERVE = """
import sys
sys.path.insert(0, {root!r})
from tests.helpers import launch_app
from app import work
work.REPEATS = 1  # one timed run per answer: this test measures disk, not time
demo = launch_app("seats_app_disk")
print("URL", demo.local_url, flush=True)
import time
while True:
    time.sleep(3600)
"""


def _start(tmpdir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "TMPDIR": str(tmpdir), "OMP_NUM_THREADS": "1"}
    env.pop("GRADIO_TEMP_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE.format(root=str(examples.ROOT))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("URL "):
            return proc, line.split()[1]
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the app did not start")


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _press(url, fns, clip, session, i=0):
    adv = [1.4, "", None, 0.1, "same", True, True, True, 2, 0.05, 0]
    question = f"{QUESTION} ({i})"  # a new question each time: new selections, new overlay images
    data = [{}, clip, question, "mini", "seats", "R10", "none", 1, *adv]
    assert http_event(url, fns["on_check"], data, session)["success"]
    reply = http_event(url, fns["on_run"], [{}], session)
    assert reply["success"], reply["raw"][-300:]


@pytest.mark.slow
def test_fifty_runs_stay_small_and_a_killed_process_is_cleaned_on_restart(tmp_path, capsys):
    tmpdir = tmp_path / "server_tmp"
    tmpdir.mkdir()
    clip_file = synth.make_demo_clip(tmp_path / "clip.mp4", seconds=2, seed=4)["path"]
    proc, url = _start(tmpdir)
    try:
        fns = fn_indices(url)
        session = secrets.token_hex(8)
        clip = http_upload(url, clip_file)
        _press(url, fns, clip, session)
        disk0, rss0 = _bytes(tmpdir), _rss(proc.pid)
        t0 = time.time()
        for i in range(1, PRESSES):
            _press(url, fns, clip, session, i)
        seconds = time.time() - t0
        disk, rss = _bytes(tmpdir), _rss(proc.pid)
        with capsys.disabled():
            print(
                f"\n{PRESSES} Runs: temp folder {disk0 / 2**20:.2f} -> {disk / 2**20:.2f} MiB "
                f"({(disk - disk0) / (PRESSES - 1) / 1024:.1f} KiB per Run after the first), RSS "
                f"{rss0 / 2**20:.0f} -> {rss / 2**20:.0f} MiB, {seconds / (PRESSES - 1):.2f} s per Run"
            )
        assert disk < DISK_LIMIT
        assert http_event(url, fns["on_export"], [{}], session)["success"]  # files in the app's own folder
        own = [p for p in (tmpdir / "seats_explorer").iterdir() if p.name.startswith(PREFIX)]
        assert len(own) == 1 and any((own[0] / "exports").rglob("*.html"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert own[0].exists()  # SIGKILL runs no clean-up
    again, _ = _start(tmpdir)
    try:
        left = [p for p in (tmpdir / "seats_explorer").iterdir()]
        assert not own[0].exists() and len(left) == 1 and (left[0] / LOCK).exists()
    finally:
        again.terminate()
        again.wait()


def test_workspace_removes_only_dead_owners_and_keeps_its_cap(tmp_path):
    root = tmp_path / "seats_explorer"
    code = (
        f"import sys, time; sys.path.insert(0, {str(examples.ROOT)!r}); from app.files import Workspace; "
        f"w = Workspace({str(root)!r}); w.start(); w.new_file('exports', 'a.json').write_text('x' * 1000); "
        "print(w.dir, flush=True); time.sleep(600)"
    )
    alive = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    killed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        alive_dir, killed_dir = Path(alive.stdout.readline().strip()), Path(killed.stdout.readline().strip())
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        (root / "exports-12345").mkdir()  # an older layout's folder: no lock, removed
        mine = Workspace(root, max_bytes=2500)
        removed = mine.start()
        assert set(removed) == {killed_dir, root / "exports-12345"} and alive_dir.exists()
    finally:
        alive.kill()
        alive.wait()
    paths = []
    for i in range(4):  # 1000 bytes each under a 2500-byte cap: the oldest go first
        p = mine.new_file("exports", f"{i}.json", 1000)
        p.write_text("y" * 1000)
        paths.append(p)
        time.sleep(0.01)
    assert mine.used_bytes() <= 2500
    assert [p.exists() for p in paths] == [False, False, True, True]
    mine.close()
    assert not mine.dir and not any(p.exists() for p in paths)
