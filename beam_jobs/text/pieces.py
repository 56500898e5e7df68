"""Unsplittable pieces of normalized text, the first step of every tokenizer (pure).

Placeholders (``&name&``), jamo runs (ㅋㅋ, ㅠㅠ, ㄱㅅ), Hangul runs, Latin/digit runs,
punctuation runs and single other characters (emoji) are never split further.
"""

from __future__ import annotations

import re

from beam_jobs.text.hangul import is_syllable

PIECE_RE = re.compile(
    r"&[a-z][a-z0-9-]*&"  # de-identification / masking placeholders
    r"|[ㄱ-ㅣ]+"  # jamo runs: laughter, crying, initialisms
    r"|[가-힣]+"  # Hangul syllable runs (eojeol bodies)
    r"|[A-Za-z0-9]+(?:[.,'][A-Za-z0-9]+)*%?"  # Latin words and numbers (3.5, 10,000, 70%)
    r"|([^\sA-Za-z0-9가-힣ㄱ-ㅣ])\1*"  # a punctuation run or one other character (emoji)
)


def pieces(text: str) -> list[str]:
    """Cut ``text`` into unsplittable pieces (see module docstring)."""
    return [m.group(0) for m in PIECE_RE.finditer(text)]


def hangul_words(text: str) -> list[str]:
    """The Hangul runs of a normalized text: what word scores are learned on and applied to."""
    return [p for p in pieces(text) if is_syllable(p[0])]
