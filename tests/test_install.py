"""`pip install .` gives a working `seats` outside the repository, with the miniature's files inside the package.

Installed with --no-deps --no-build-isolation into a fresh venv that sees the system's packages (its pip and
setuptools; no download, ~15 s); the checks run from a temporary folder with a clean environment, so nothing can come from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 300
SOURCE_SKIP = (
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "runs",
    "out",
)
MINI_FILES = ("config.json", "model.safetensors", "tokenizer.json", "training.json")

pytest.importorskip("setuptools", reason="building the wheel without isolation needs setuptools")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("install")
    env_dir = root / "venv"
    try:
        venv.create(env_dir, system_site_packages=True)  # the system's pip and setuptools
    except OSError as e:
        pytest.skip(f"cannot create a venv here: {e}")
    py = env_dir / "bin" / "python"
    if subprocess.run([str(py), "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("no pip among the system's packages")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    source = root / "source"  # a copy: an in-tree build would leave build/ in the checkout (and reuse it)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*SOURCE_SKIP))
    cmd = [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(source)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = root / "elsewhere"
    work.mkdir()
    return {"bin": env_dir / "bin", "py": py, "env": env, "cwd": work}


def _run(installed, *args):
    return subprocess.run(
        list(args), env=installed["env"], cwd=installed["cwd"], capture_output=True, text=True, timeout=120
    )


def test_console_script_runs_outside_the_repository(installed):
    proc = _run(installed, str(installed["bin"] / "seats"), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "run" in proc.stdout and "analyze" in proc.stdout


def test_installed_package_carries_the_miniature(installed):
    code = "import seats_core, sys; from seats_core.models import mini; print(seats_core.__file__); print(mini.MINI_DIR)"
    proc = _run(installed, str(installed["py"]), "-c", code)
    assert proc.returncode == 0, proc.stderr
    package_file, mini_dir = (Path(x) for x in proc.stdout.split())
    assert installed["py"].parent.parent in package_file.parents, f"imported {package_file}, not the install"
    assert mini_dir == package_file.parent / "_assets" / "mini"
    for name in MINI_FILES:
        assert (mini_dir / name).stat().st_size == (ROOT / "assets" / "mini" / name).stat().st_size
