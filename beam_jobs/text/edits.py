"""Auditable edits: the record of what a rule changed, replay, and the substitution-rule machinery.

Offsets of an edit refer to the text as it was just before that edit was applied, so replaying
the edits in order on the raw text gives the normalized text (:func:`replay_edits`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple


class Edit(NamedTuple):
    """One change: ``text[start:end] == before`` was replaced by ``after``."""

    rule: str
    start: int
    end: int
    before: str
    after: str

    def as_dict(self) -> dict[str, object]:
        return self._asdict()


#: a rule rewrites a text and appends the edits it made
Rule = Callable[[str, list[Edit]], str]


def sub_rule(name: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str],
             trigger: Callable[[str], bool] | None = None) -> Rule:
    """A rule that substitutes every match of ``pattern`` and records sequential edits.

    ``trigger`` is a cheap pre-check (``"@" in text``) that skips the regex when it cannot match.
    """

    def apply(text: str, edits: list[Edit]) -> str:
        if trigger is not None and not trigger(text):
            return text
        pieces: list[str] = []
        last = 0
        delta = 0  # how much earlier edits of this pass moved later offsets
        for match in pattern.finditer(text):
            before = match.group(0)
            after = replace(match)
            if after == before:
                continue
            start, end = match.span()
            pieces.append(text[last:start])
            pieces.append(after)
            edits.append(Edit(name, start + delta, end + delta, before, after))
            delta += len(after) - len(before)
            last = end
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)

    return apply


def replay_edits(text_raw: str, edits: list[Edit] | list[dict]) -> str:
    """Apply ``edits`` in order to ``text_raw``; checks each ``before`` so audits cannot drift."""
    text = text_raw
    for edit in edits:
        e = Edit(**edit) if isinstance(edit, dict) else edit
        if text[e.start:e.end] != e.before:
            raise ValueError(
                f"edit {e} does not apply: text[{e.start}:{e.end}] is {text[e.start:e.end]!r}, "
                f"expected {e.before!r}"
            )
        text = text[: e.start] + e.after + text[e.end:]
    return text
