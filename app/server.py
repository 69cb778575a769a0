"""The explorer's server state: one object, SERVER, holds all that this process keeps between requests.

It holds the model served by default and the deployment whose rules say which models a request may use, the
folders a clip may come from, the loaded engine (one model at a time, shared by every session), the generated
scenes whose answers are known, and the pages' sessions. The other app modules keep no state of their own: they
read and change it here, so a test swaps one attribute of SERVER to change one rule. Nothing here checks a
client's value (checks.py) or runs the model (work.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from gradio.utils import get_upload_folder

from app import deploy, examples
from app.state import Session, SessionStore
from seats_core.models.loader import MINI, MINIS
from seats_core.run.pipeline import Engine

MAX_SCENES = 32  # generated clips kept on disk (oldest deleted first)


@dataclass
class Server:
    """The settings and shared state of one explorer process (app.py configures it at start)."""

    model: str = MINI  # the model a request gets when it names none (app.py --model)
    deployment: deploy.Deployment | None = None  # None: local, serving `model`
    extra_clip_roots: list[Path] = field(
        default_factory=list
    )  # besides uploads and examples (tests, scripts)
    engines: dict[str, Engine] = field(default_factory=dict)  # the loaded model: at most one entry
    engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    scenes: OrderedDict[str, dict] = field(
        default_factory=OrderedDict
    )  # sha256 of a generated clip -> its Q&A
    scenes_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    max_scenes: int = MAX_SCENES
    sessions: SessionStore = field(default_factory=SessionStore)

    # -- what is served --------------------------------------------------------------------------------------

    def configure(self, model: str, deployment: deploy.Deployment | None = None) -> None:
        """Serve `model` by default (app.py --model) under `deployment`'s rules (app.deploy.Deployment)."""
        self.model, self.deployment = model, deployment

    def served(self) -> deploy.Deployment:
        """The deployment in force: the configured one, or a local one serving `model`."""
        d = self.deployment
        if d is None or d.model != self.model:
            d = deploy.Deployment(self.model, self.model, None, False)
        return d

    def model_choices(self) -> list[str]:
        """Models the page offers: deploy.allowed_models (one model on a shared deployment such as a Space)."""
        d = self.served()
        return (
            deploy.allowed_models(d) if d.shared else list(dict.fromkeys([*deploy.allowed_models(d), *MINIS]))
        )

    # -- where clips may come from ---------------------------------------------------------------------------

    def allow_clip_root(self, folder: str | Path) -> None:
        """Also accept clips under `folder` (tests and scripts that call the handlers with their own files)."""
        self.extra_clip_roots.append(Path(folder).resolve())

    def clip_roots(self) -> list[Path]:
        """Folders a clip path may point into: Gradio's upload folder, the shipped examples, allow_clip_root's."""
        return [Path(get_upload_folder()).resolve(), examples.EXAMPLES_DIR.resolve(), *self.extra_clip_roots]

    # -- the model -------------------------------------------------------------------------------------------

    def has_engine(self, name: str) -> bool:
        return name in self.engines

    def engine(self, name: str | None = None) -> Engine:
        """The process-wide Engine for `name`, created on first use. One model at a time: asking for another
        replaces the current one (its memory is released). Raises ModelLoadError."""
        name = name or self.model
        with self.engine_lock:
            if name not in self.engines:
                self.engines.clear()
                self.engines[name] = Engine(name)
            return self.engines[name]

    # -- generated scenes ------------------------------------------------------------------------------------

    def remember_scene(self, key: str, info: dict) -> None:
        """Keep a generated scene's question and answer under `key` (its sha256); the oldest scenes beyond
        max_scenes are forgotten and their files deleted."""
        with self.scenes_lock:
            self.scenes[key] = info
            while len(self.scenes) > self.max_scenes:
                _, old = self.scenes.popitem(last=False)
                if old["file"] != info["file"]:
                    Path(old["file"]).unlink(missing_ok=True)

    def scene(self, key: str) -> dict | None:
        """The remembered scene whose clip has sha256 `key`, else None."""
        with self.scenes_lock:
            return self.scenes.get(key)

    # -- sessions --------------------------------------------------------------------------------------------

    def session_of(self, box: dict | None) -> Session:
        """The session of a page's gr.State dict (an id is issued on first use); without one, an empty session
        that is not kept (so nothing can be read from it)."""
        if not isinstance(box, dict):
            return Session(self.sessions.new_id())
        if "id" not in box:
            box["id"] = self.sessions.new_id()
        return self.sessions.get(box["id"])

    def forget(self, box) -> None:
        """gr.State's delete_callback: the page was closed."""
        if isinstance(box, dict):
            self.sessions.drop(box.get("id"))


SERVER = Server()
