"""Multiple-choice prompt and answer-letter extraction (the paper's evaluation: greedy, batch 1).

The prompt lists the options as "A. ...\\nB. ..." under the question and asks for the option's letter. The
extractor reads a free-form reply the way lmms-eval style scorers do: a reply that is exactly one option's text
first, then an explicit "answer is X" / "Answer: X" / "(X)", then the first standalone option letter (skipping
the article "A"), then the first of a run of option letters ("BD"), then an option's text inside the reply. A reply naming no option gives None (counted wrong).
"""

from __future__ import annotations

import re

from .common import LETTERS

INSTRUCTION = "Answer with the option's letter from the given choices directly."
_TRAILING = " \t\n.,;:!?\"'*`"
DEFAULT_LETTERS = 5  # without the options, letters A-E count
# Words that may follow a standalone "A" meaning option A ("A is correct"), not the article ("A dog runs").
_LETTER_VERBS = {"is", "was", "seems", "appears", "would", "should", "matches", "fits", "and", "or"}


def format_prompt(question: str, options: tuple[str, ...] | list[str]) -> str:
    """'question\\nA. opt\\nB. opt\\n...\\n' + INSTRUCTION."""
    lines = [question.strip()] + [f"{LETTERS[i]}. {text}" for i, text in enumerate(options)]
    return "\n".join([*lines, INSTRUCTION])


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(_TRAILING).lower()


def _is_article(after: str) -> bool:
    """True when an "A" is the English article: followed by a lowercase word that is not a verb about it."""
    m = re.match(r"\s+([a-z]+)", after)
    return bool(m) and m.group(1) not in _LETTER_VERBS


def extract_letter(
    reply: str, options: tuple[str, ...] | list[str] | None = None, n_letters: int | None = None
) -> str | None:
    """The option letter a reply names, or None: the one answer parser of the project (the eval harness, the
    lmms-eval plugin, the explorer and the miniature's scenes). Letters are limited to the options given, else to
    the first `n_letters` (default A-E)."""
    letters = LETTERS[: len(options) if options else (n_letters or DEFAULT_LETTERS)]
    text = (reply or "").strip()
    if not text:
        return None
    opts = [_norm(o) for o in options] if options else []
    whole = _norm(text)
    if whole in opts and opts.count(whole) == 1:  # the reply is exactly one option's text
        return letters[opts.index(whole)]
    cls = f"[{letters}]"
    explicit = (
        rf"(?i:answer|option|choice)(?:\s+(?i:is|would be|should be))?\s*[:\-]?\s*[\(\[\*]*({cls})(?![A-Za-z0-9])",
        rf"[\(\[]({cls})[\)\]]",
    )
    for pattern in explicit:
        m = re.search(pattern, text)
        if m:
            return m.group(1)
    for m in re.finditer(rf"(?<![A-Za-z0-9'])({cls})(?![A-Za-z0-9'])", text):
        if m.group(1) == "A" and _is_article(text[m.end() :]):
            continue
        return m.group(1)
    run_on = re.match(
        rf"({cls}){cls}+(?![A-Za-z0-9'])", text
    )  # 'BD': a letter run on (a model that did not stop)
    if run_on:
        return run_on.group(1)
    found = [(whole.find(o), -len(o), i) for i, o in enumerate(opts) if o and o in whole]
    return letters[min(found)[2]] if found else None
