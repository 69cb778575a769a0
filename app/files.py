"""The explorer's own files: one folder, `<temp dir>/seats_explorer`, with one sub-folder per live process.

Each process holds an exclusive lock (fcntl.flock) on `<its folder>/.lock` for as long as it lives; the kernel
drops the lock when the process dies, SIGKILL included. When the app starts, every other entry whose lock can be
taken (its owner is dead), and everything that is not a locked process folder (older layouts), is removed.
Inside its folder the process keeps its files under a byte cap: before a file is added, the oldest files go until
the new total fits.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

ROOT_NAME = "seats_explorer"
LOCK = ".lock"
PREFIX = "proc-"
MAX_BYTES = 200 * 2**20  # all files of one process (exports, generated scenes)


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / ROOT_NAME


class Workspace:
    """This process's folder under `root`, capped at `max_bytes`."""

    def __init__(self, root: Path | None = None, max_bytes: int = MAX_BYTES):
        self.root = Path(root) if root is not None else default_root()
        self.max_bytes = max_bytes
        self.dir: Path | None = None
        self._lock_fd: int | None = None
        self._mutex = threading.Lock()

    def start(self) -> list[Path]:
        """Create and lock this process's folder (once); remove what dead processes left. Returns the removed."""
        with self._mutex:
            if self.dir is not None:
                return []
            self.root.mkdir(parents=True, exist_ok=True)
            d = self.root / f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            d.mkdir()
            fd = os.open(d / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.dir, self._lock_fd = d, fd
            atexit.register(self.close)
            return self._remove_dead()

    def _remove_dead(self) -> list[Path]:
        removed = []
        for entry in self.root.iterdir():
            if entry == self.dir or _held(entry):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        return removed

    def folder(self, kind: str) -> Path:
        """A sub-folder of this process's folder (created)."""
        self.start()
        d = self.dir / kind
        d.mkdir(exist_ok=True)
        return d

    def new_file(self, kind: str, name: str, incoming_bytes: int = 0) -> Path:
        """A fresh path `<kind>/<random>/<name>` with room made for `incoming_bytes` under the cap."""
        self.make_room(incoming_bytes)
        d = self.folder(kind) / secrets.token_hex(8)
        d.mkdir()
        return d / name

    def files(self) -> list[Path]:
        if self.dir is None:
            return []
        return [p for p in self.dir.rglob("*") if p.is_file() and p.name != LOCK]

    def used_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())

    def make_room(self, incoming_bytes: int) -> None:
        """Delete this process's oldest files until `incoming_bytes` more fit under max_bytes."""
        with self._mutex:
            files = sorted(self.files(), key=lambda p: p.stat().st_mtime)
            total = sum(p.stat().st_size for p in files)
            while files and total + incoming_bytes > self.max_bytes:
                old = files.pop(0)
                total -= old.stat().st_size
                old.unlink(missing_ok=True)
                if old.parent != self.dir and not any(old.parent.iterdir()):
                    old.parent.rmdir()

    def close(self) -> None:
        """Remove this process's folder and release its lock (at exit; a killed process is cleaned next start)."""
        with self._mutex:
            if self.dir is None:
                return
            shutil.rmtree(self.dir, ignore_errors=True)
            os.close(self._lock_fd)
            self.dir, self._lock_fd = None, None


def _held(entry: Path) -> bool:
    """True when `entry` is a process folder whose owner is alive (its lock cannot be taken)."""
    lock = entry / LOCK
    if not entry.name.startswith(PREFIX) or not lock.is_file():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we took
    return False


WORKSPACE = Workspace()
