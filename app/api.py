"""The named API endpoints (the page's API tab and gradio_client): /run answers one clip with one method.

An API call keeps nothing between calls: its session is made for the call and dropped. Its values are checked
like the page's (checks.py), and its model work fails in one line like the page's (work.model_failures).
"""

from __future__ import annotations

from collections.abc import Callable

from app import checks
from app.checks import DEFAULT_MAX_NEW_TOKENS, DEFAULT_METHOD, DEFAULT_RETENTION
from app.server import SERVER
from app.state import Session
from app.work import decode, model_failures, run_models


def api_run(
    clip,
    question,
    method=DEFAULT_METHOD,
    retention=DEFAULT_RETENTION,
    max_new_tokens=DEFAULT_MAX_NEW_TOKENS,
    progress: Callable | None = None,
    compute: Callable = run_models,
) -> tuple[str, dict]:
    """The public /run endpoint: (answer, the run record exactly as the CLI's --json writes it).

    max_new_tokens is optional for API callers (the page's slider value, 16 by default)."""
    path = checks.check_clip_path(clip)
    q = checks.check_question(question)
    n_new = checks.check_max_new_tokens(max_new_tokens)
    cfg = checks.method_config(method, retention)
    session = Session("api")  # not stored: the API keeps nothing between calls
    model = SERVER.model
    clip = decode(session, path, model)
    with model_failures():
        runs, _ = compute(model, clip, q, {"method": cfg}, n_new, progress, fusion=False)  # the CLI's record
    record = runs["method"]
    return record["answer"], record
