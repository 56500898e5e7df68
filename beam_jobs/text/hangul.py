"""Hangul syllable arithmetic and character classes, shared by every rule (pure)."""

from __future__ import annotations

import re

SYLLABLE_FIRST, SYLLABLE_LAST = "가", "힣"
#: regex class bodies: precomposed syllables, and compatibility jamo (ㄱ U+3131 .. ㅣ U+3163)
HANGUL_SYLLABLE = "가-힣"
JAMO = "ㄱ-ㅣ"
_BASE = 0xAC00
_PER_INITIAL = 588  # 21 vowels x 28 finals
_FINALS = 28
#: ㅇ as the initial consonant (a syllable that starts with a vowel sound)
VOWEL_ONLY_INITIAL = 11
#: ㅋ as a final consonant (jongseong index)
KIEUK_FINAL = 24


def is_syllable(ch: str) -> bool:
    """A precomposed Hangul syllable (가..힣)."""
    return SYLLABLE_FIRST <= ch <= SYLLABLE_LAST


def is_jamo(ch: str) -> bool:
    """A Hangul compatibility jamo (ㄱ..ㅣ), as in ㅋㅋ, ㅠㅠ, ㄱㅅ."""
    return "\u3131" <= ch <= "\u3163"


_HANGUL_RE = re.compile("[가-힣]")
_JAMO_RE = re.compile("[ㄱ-ㅣ]")


def has_hangul(text: str) -> bool:
    return _HANGUL_RE.search(text) is not None


def has_jamo(text: str) -> bool:
    return _JAMO_RE.search(text) is not None


def decompose(syllable: str) -> tuple[int, int, int]:
    """(initial, vowel, final) indices of one syllable; final 0 means no coda (받침)."""
    code = ord(syllable) - _BASE
    return code // _PER_INITIAL, (code % _PER_INITIAL) // _FINALS, code % _FINALS


def compose(initial: int, vowel: int, final: int = 0) -> str:
    return chr(_BASE + initial * _PER_INITIAL + vowel * _FINALS + final)


def final_of(syllable: str) -> int:
    return decompose(syllable)[2]


def without_final(syllable: str) -> str:
    """The syllable with its coda removed (했 -> 하)."""
    initial, vowel, _ = decompose(syllable)
    return compose(initial, vowel, 0)


def ends_in_consonant(text: str) -> bool:
    """Whether ``text`` ends in a consonant: a final jamo (ᆨ…ᇂ, as Kiwi writes some endings) or a
    syllable with a final consonant (받침)."""
    last = text[-1:]
    return bool(last) and ("\u11a8" <= last <= "\u11c2" or (is_syllable(last) and final_of(last) != 0))


#: every syllable without a coda, as one regex class body
NO_CODA_SYLLABLES = "".join(chr(_BASE + i) for i in range(0, 11172, _FINALS))
