"""`pip install .` gives a working `seats` outside the repository, with the miniature's files inside the package.

The wheel is built by this interpreter without build isolation (no download): its setuptools is the one the
README's commands install (requirements-dev.txt asks for >= 70.1, which builds wheels without the `wheel`
package). It is installed with --no-deps into a fresh venv that sees this interpreter's packages through a .pth
file (torch and the rest; a venv's system-site-packages would show the base interpreter's instead, which under
CI's own venv has none of them). The checks run from a temporary folder with a clean environment, so nothing can
come from the checkout. About 20 s.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
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


def _sh(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, **kw
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    source = root / "source"  # a copy: an in-tree build would leave build/ in the checkout (and reuse it)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*SOURCE_SKIP))
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        root / "dist",
    ]
    proc = _sh([*build, source], env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (root / "dist").glob("seats_explorer-*.whl")

    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)  # pip from the interpreter's bundled wheel (ensurepip), offline
    py = env_dir / "bin" / "python"
    purelib = _sh([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(purelib) / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    proc = _sh([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], env=env, cwd=root)
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
    assert "run" in proc.stdout and "analyze" in proc.stdout and "eval-tasks" in proc.stdout
    assert proc.stdout.startswith("usage: seats "), proc.stdout[:80]  # prog is the console script's name


def test_installed_package_carries_the_miniature(installed):
    code = "import seats_core, sys; from seats_core.models.qwen2_5_omni import mini; print(seats_core.__file__); print(mini.MINI_DIR)"
    proc = _run(installed, str(installed["py"]), "-c", code)
    assert proc.returncode == 0, proc.stderr
    package_file, mini_dir = (Path(x) for x in proc.stdout.split())
    assert installed["py"].parent.parent in package_file.parents, f"imported {package_file}, not the install"
    assert mini_dir == package_file.parent / "_assets" / "mini"
    for name in MINI_FILES:
        assert (mini_dir / name).stat().st_size == (ROOT / "assets" / "mini" / name).stat().st_size


def test_lmms_eval_finds_the_installed_plugin(installed):
    """The wheel's `lmms_eval.models` entry point, found by lmms-eval's own registry (needs requirements-eval)."""
    pytest.importorskip("lmms_eval", reason="the evaluation extras are not installed (requirements-eval.txt)")
    code = (
        "from lmms_eval.models import get_model; import seats_core; "
        "cls = get_model('seats_qwen2_5_omni'); print(cls.__module__, cls.__name__); print(seats_core.__file__)"
    )
    proc = _run(installed, str(installed["py"]), "-c", code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names, package_file = proc.stdout.strip().splitlines()[-2:]
    assert names == "seats_core.evaluation.lmms_eval_plugin SeatsQwen25Omni"
    assert installed["py"].parent.parent in Path(package_file).parents
