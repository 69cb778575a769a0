"""Per-session state kept on the server: the decoded clip, the run records, the view digest and the analysis.

A session is named by a random id the server issues. Each page's `gr.State` starts as its own copy of an empty
dict (Gradio deep-copies a State's initial value per session and keeps it on the server); the first event puts the
id in it (`Server.session_of` in server.py, whose SERVER holds the one store), so the id never reaches the
browser. Sessions live in a bounded store: the least recently used session goes first when the store is full.
Nothing a client sends can name a file, a run or a session; the events resolve everything from here.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from seats_core.run.media import Clip

MAX_SESSIONS = (
    16  # sessions held (each holds one decoded clip: ~40 MB at the 7B's 60 s budget, ~1 MB for mini)
)


@dataclass
class Session:
    """One visitor's page: what the slider, the analysis and the exports work from."""

    id: str
    clip: Clip | None = None  # decoded once per upload (and model frame budget)
    clip_key: tuple | None = None  # (sha256 of the file, MediaConfig) of `clip`
    clip_name: str = ""
    question: str = ""
    model: str = ""
    records: dict[str, dict] = field(default_factory=dict)  # RUN_KEYS -> RunRecord dict or {"error": ...}
    view: dict | None = None  # app.view digest of `records`
    analysis: dict | None = None
    source: str = ""
    pending: dict | None = None  # a validated Run request waiting for the model queue
    exported: tuple | None = None  # ((id of view, id of analysis), paths) of the last export
    tour_step: int | None = None  # guided tour: None = not shown yet, 0.. = step shown, -1 = skipped or done
    narrow: bool = False  # the page is a phone's (< 640 px): pictures laid out to stay readable
    marked: dict | None = None  # the Fusion view's clicked token: {key, index, attends_to, attended_by}
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class SessionStore:
    """Sessions by id, at most `capacity` of them (least recently used evicted)."""

    def __init__(self, capacity: int = MAX_SESSIONS):
        self.capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def new_id(self) -> str:
        """A fresh unguessable id (gr.State's per-session initial value)."""
        return secrets.token_urlsafe(18)

    def get(self, sid: str | None, create: bool = True) -> Session | None:
        """The session `sid` (created when missing and `create`); None for no id or a missing one."""
        if not isinstance(sid, str) or not sid:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                if not create:
                    return None
                session = self._sessions[sid] = Session(sid)
            self._sessions.move_to_end(sid)
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
            return session

    def drop(self, sid) -> None:
        """Forget a session (its page was closed)."""
        if isinstance(sid, str):
            with self._lock:
                self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)
