"""Particle agreement: the allomorph a particle takes after a word ending in a vowel or a consonant.

A rewrite that changes a word's last sound must change its particle too (여친이 -> 여자 친구**가**,
넘은 -> 너무**는**). :func:`agree` returns the form that fits the new word.
"""

from __future__ import annotations

from beam_jobs.text.hangul import decompose, is_syllable

_RIEUL = 8  # ㄹ as a final consonant

#: (after a consonant, after a vowel) pairs; 으로/로 also takes 로 after ㄹ (see :func:`agree`)
PAIRS: tuple[tuple[str, str], ...] = (
    ("이", "가"), ("은", "는"), ("을", "를"), ("과", "와"), ("이랑", "랑"), ("으로", "로"), ("이나", "나"),
    ("이에요", "예요"), ("이야", "야"), ("이라", "라"), ("이라도", "라도"), ("이든", "든"), ("이면", "면"),
    ("이고", "고"), ("이며", "며"), ("아", "야"), ("이여", "여"), ("으로는", "로는"), ("으로도", "로도"),
    ("이라고", "라고"), ("이랑은", "랑은"),
)
_TO_CONSONANT = {vowel: consonant for consonant, vowel in PAIRS}
_TO_VOWEL = {consonant: vowel for consonant, vowel in PAIRS}
#: every form, longest first (for regexes that look for a particle after a word)
FORMS: tuple[str, ...] = tuple(sorted({f for pair in PAIRS for f in pair} | {
    "에서", "에게", "부터", "까지", "처럼", "보다", "에는", "에도", "에", "도", "만", "엔", "의", "한테", "께"},
    key=len, reverse=True))
#: the copula's whole-word endings after a noun (첨인데 -> 처음인데, 셤인가 -> 시험인가): a "josa" lexicon
#: row takes these too; they read the same after a vowel or a consonant, so they need no agreement
COPULA_FORMS: tuple[str, ...] = ("인데", "인듯", "인가", "인지", "인걸", "인거", "인건", "이었다", "이였다", "이다", "이네",
                                 "이지", "이라서", "이라니")


def final_sound(word: str) -> int | None:
    """The final consonant index of the word's last syllable (0: a vowel); None when it does not end in Hangul."""
    last = word[-1:]
    return decompose(last)[2] if last and is_syllable(last) else None


def agree(word: str, particle: str) -> str:
    """``particle`` in the allomorph that follows ``word`` (unchanged when it has no pair)."""
    if not particle:
        return particle
    final = final_sound(word)
    if final is None:
        return particle
    if particle in ("으로", "로", "으로는", "로는", "으로도", "로도"):
        plain = particle.replace("으로", "로")
        return plain if final in (0, _RIEUL) else "으" + plain
    if final == 0:
        return _TO_VOWEL.get(particle, particle)
    return _TO_CONSONANT.get(particle, particle)
