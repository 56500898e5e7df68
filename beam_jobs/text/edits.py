"""Auditable edits: the record of what a rule changed, replay, and the substitution-rule machinery.

Offsets of an edit refer to the text as it was just before that edit was applied, so replaying
the edits in order on the raw text gives the normalized text (:func:`replay_edits`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
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


def _substitute(name: str, text: str, edits: list[Edit], matches: Iterable[re.Match[str]],
                replace: Callable[[re.Match[str]], str]) -> str:
    """Replace each of ``matches`` (in order, not overlapping) and record sequential edits."""
    pieces: list[str] = []
    last = 0
    delta = 0  # how much earlier edits of this pass moved later offsets
    for match in matches:
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


def sub_rule(name: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str],
             trigger: Callable[[str], bool] | None = None) -> Rule:
    """A rule that substitutes every match of ``pattern`` and records sequential edits.

    ``trigger`` is a cheap pre-check (``"@" in text``) that skips the regex when it cannot match.
    """

    def apply(text: str, edits: list[Edit]) -> str:
        if trigger is not None and not trigger(text):
            return text
        first = pattern.search(text)
        if first is None:  # most texts: no iterator, no loop
            return text
        return _substitute(name, text, edits, pattern.finditer(text, first.start()), replace)

    return apply


def cue_rule(name: str, cue: re.Pattern[str], pattern: re.Pattern[str],
             replace: Callable[[re.Match[str]], str], back: int = 0, starts: Iterable[str] = ()) -> Rule:
    """:func:`sub_rule` for a ``pattern`` whose search is slow (a lookbehind or a long alternation
    first, which the regex engine cannot skip to, or a first character common in Korean): it is
    tried only near where ``cue`` — a rare character, as a class the engine skips to fast —
    matches, at the cue's start and up to ``back`` characters before it, leftmost first. Every
    match of ``pattern`` must start in such a window; then the matches are those of
    ``pattern.finditer``. ``starts``: strings one of which every match starts with (a lexicon's
    forms), checked before the regex is tried."""
    by_first: dict[str, tuple[str, ...]] = {}
    for form in starts:
        by_first[form[0]] = (*by_first.get(form[0], ()), form)

    def matches(text: str) -> Iterator[re.Match[str]]:
        last = 0
        for hit in cue.finditer(text):
            at = hit.start()
            if at < last:
                continue
            for start in range(max(last, at - back), at + 1) if back else (at,):
                if by_first and not text.startswith(by_first.get(text[start], ()), start):
                    continue
                match = pattern.match(text, start)
                if match is not None:
                    last = match.end()
                    yield match
                    break

    return _cued(name, cue, matches, replace)


_HANGUL_RUN_RE = re.compile("[가-힣]+")


def run_rule(name: str, cue: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> Rule:
    """A rule over whole Hangul runs (maximal 가-힣 sequences) that contain a match of ``cue``
    (a pattern inside one run, starting with a character class): ``replace`` gets the run's match."""

    def matches(text: str) -> Iterator[re.Match[str]]:
        last = 0
        for hit in cue.finditer(text):
            start = hit.start()
            if start < last:
                continue
            while start > last and "가" <= text[start - 1] <= "힣":
                start -= 1
            match = _HANGUL_RUN_RE.match(text, start)
            last = match.end()
            yield match

    return _cued(name, cue, matches, replace)


def _cued(name: str, cue: re.Pattern[str], matches: Callable[[str], Iterator[re.Match[str]]],
          replace: Callable[[re.Match[str]], str]) -> Rule:
    """The rule of :func:`cue_rule` / :func:`run_rule`: nothing to do without a cue."""

    def apply(text: str, edits: list[Edit]) -> str:
        if cue.search(text) is None:
            return text
        return _substitute(name, text, edits, matches(text), replace)

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


Span = tuple[int, int, str]


def remap_spans(spans: tuple[Span, ...] | list[Span], edits: list[Edit]) -> list[Span] | None:
    """Labelled spans of the raw text, moved through ``edits`` onto the edited text; None when an
    edit cuts through a span's boundary (an edit wholly inside a span resizes it; one at or before
    its start shifts it; one at or after its end leaves it)."""
    current = [list(span) for span in spans]
    for edit in edits:
        delta = len(edit.after) - (edit.end - edit.start)
        for span in current:
            start, end = span[0], span[1]
            if edit.end <= start and not (edit.start == edit.end == start == end):
                span[0], span[1] = start + delta, end + delta
            elif edit.start >= end:
                continue
            elif start <= edit.start and edit.end <= end:
                span[1] = end + delta
            else:
                return None
    return [(start, end, label) for start, end, label in current]


def normalize_keeping_spans(normalize: Callable[[str], tuple[str, list[Edit]]], text: str,
                            spans: tuple[Span, ...] | list[Span]) -> tuple[str, list[Edit], list[Span], bool]:
    """Normalize ``text`` so that no edit cuts through a span: (text, edits, remapped spans, whether
    the text had to be cut). When a whole-text edit would cross a span boundary, the text is cut at
    every boundary and each piece normalized on its own (edits shifted onto the whole text, so
    replaying them still reproduces it). Spans that end up empty are dropped."""
    result, edits = normalize(text)
    moved = remap_spans(spans, edits)
    cut = moved is None
    if cut:
        bounds = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
        pieces, edits = [], []
        for start, end in zip(bounds, bounds[1:], strict=False):
            piece, piece_edits = normalize(text[start:end])
            shift = sum(len(p) for p in pieces)
            edits += [Edit(e.rule, e.start + shift, e.end + shift, e.before, e.after) for e in piece_edits]
            pieces.append(piece)
        result = "".join(pieces)
        moved = remap_spans(spans, edits)
        assert moved is not None, "pieces cut at every span boundary cannot cross one"
    return result, edits, [(s, e, label) for s, e, label in moved if e > s], cut


def unmap_span(start: int, end: int, edits: list[Edit]) -> tuple[int, int]:
    """A span of the edited text mapped back onto the raw text ``edits`` started from: through
    each edit, last first; a span touching an edit's new text grows to cover what it replaced."""
    for edit in reversed(edits):
        new_end = edit.start + len(edit.after)
        delta = len(edit.after) - (edit.end - edit.start)
        if start >= new_end and not (start == end == new_end == edit.start):
            start, end = start - delta, end - delta
            continue
        if end <= edit.start:
            continue
        start = min(start, edit.start)
        end = edit.end if end <= new_end else end - delta
    return start, end
