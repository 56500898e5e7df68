"""Colloquial rewriting rules for the normalizer: lengthening, 애교 endings, contractions.

Each rule is conservative by construction: it rewrites only eojeol shapes listed in a lexicon
(``beam_jobs/lexicons/*.tsv``) or a lengthening pattern with at least two extension
syllables, so real words such as 여행, 중앙, 지인 or 누우면 are left alone. The optional Kiwi
judge (``NormalizerConfig.ending_judge == "kiwi"``) additionally strips an extra coda wherever
Kiwi tags one (``Z_CODA``), which catches endings the lexicon does not list.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from beam_jobs.text import lexicons
from beam_jobs.text.config import NormalizerConfig
from beam_jobs.text.edits import Rule, sub_rule
from beam_jobs.text.hangul import (
    NO_CODA_SYLLABLES,
    VOWEL_ONLY_INITIAL,
    compose,
    decompose,
    has_hangul,
    has_jamo,
    is_syllable,
    without_final,
)

PARTICLES = ("에서", "에게", "부터", "까지", "처럼", "보다", "이랑", "에는", "에도", "으로", "로", "에",
             "은", "는", "이", "가", "을", "를", "도", "만", "엔", "랑", "와", "과", "의")

# Vowel indices (jungseong order: ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ).
# An extension syllable ㅇ+V lengthens a syllable whose vowel "ends in" V.
_LENGTHENS = {
    0: {0, 2, 9},  # 아 after ㅏ ㅑ ㅘ
    4: {4, 6, 14},  # 어 after ㅓ ㅕ ㅝ
    8: {8, 12},  # 오 after ㅗ ㅛ
    13: {13, 17},  # 우 after ㅜ ㅠ
    18: {18},  # 으 after ㅡ
    20: {20, 16, 19},  # 이 after ㅣ ㅟ ㅢ
    5: {5, 7, 15},  # 에 after ㅔ ㅖ ㅞ
    1: {1, 3, 10},  # 애 after ㅐ ㅒ ㅙ
}
_MIN_EXTENSIONS = 2  # 지인, 누우면, 기이하다 have one; 지이인짜, 좋아아아 have two or more

_LENGTHENING_RE = re.compile(f"([{NO_CODA_SYLLABLES}])([아어오우으이에애]+[가-힣]?)")

_LAUGH_SYLLABLES = "하히호크키흐헤후캬큭킥"


def _lengthening(match: re.Match[str]) -> str:
    """지이인짜 -> 진짜, 좋아아아 -> 좋아, 우와아아아 -> 우와; fewer than two extensions: unchanged."""
    base, tail = match.group(1), match.group(2)
    initial, vowel, final = decompose(base)
    if final:
        return match.group(0)
    count = 0
    carried_final = 0
    for ch in tail:
        ext_initial, ext_vowel, ext_final = decompose(ch)
        if ext_initial != VOWEL_ONLY_INITIAL or vowel not in _LENGTHENS.get(ext_vowel, ()):
            break
        count += 1
        if ext_final:  # 인 in 지이인짜: its coda belongs to the base syllable
            carried_final = ext_final
            break
    if count < _MIN_EXTENSIONS:
        return match.group(0)
    rest = tail[count:]
    if carried_final and initial == VOWEL_ONLY_INITIAL:
        # 오오오옹: the base is itself a bare vowel; keep the final syllable as written (오옹).
        return base + tail[count - 1:]
    return compose(initial, vowel, carried_final) + rest


def _eojeol_bounds(text: str, start: int, end: int) -> tuple[str, str]:
    """The previous and next whitespace-separated words around ``text[start:end]``."""
    before = text[:start].rstrip().rsplit(" ", 1)[-1] if start else ""
    after = text[end:].lstrip().split(" ", 1)[0] if end < len(text) else ""
    return before, after


def _contraction_rule(config: NormalizerConfig) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    rows = lexicons.load("contractions.tsv", 5, config.extra_lexicons)
    table = {form: (standard, attach, not_before, not_after) for form, standard, attach, not_before, not_after in rows}
    forms = sorted(table, key=len, reverse=True)
    particles = "|".join(sorted(PARTICLES, key=len, reverse=True))
    pattern = re.compile(f"(?<![가-힣])({'|'.join(map(re.escape, forms))})({particles})?(?![가-힣])")
    guards = {
        form: (re.compile(nb) if nb else None, re.compile(na) if na else None)
        for form, (_, _, nb, na) in table.items()
    }

    def replace(match: re.Match[str]) -> str:
        form, particle = match.group(1), match.group(2) or ""
        standard, attach, _, _ = table[form]
        if particle and attach != "josa":
            return match.group(0)
        not_before, not_after = guards[form]
        if not_before or not_after:
            prev_word, next_word = _eojeol_bounds(match.string, match.start(), match.end())
            if not_before and next_word and not_before.search(next_word):
                return match.group(0)
            if not_after and prev_word and not_after.search(prev_word):
                return match.group(0)
        return standard + particle

    return pattern, replace


def _ending_rule(config: NormalizerConfig) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    rows = lexicons.load("endings.tsv", 4, config.extra_lexicons)
    table = {ending: (standard, int(min_prefix or 0), re.compile(not_after) if not_after else None)
             for ending, standard, min_prefix, not_after in rows}
    endings = sorted(table, key=len, reverse=True)
    pattern = re.compile(f"({'|'.join(map(re.escape, endings))})(?![가-힣])")

    def replace(match: re.Match[str]) -> str:
        standard, min_prefix, not_after = table[match.group(1)]
        text, start = match.string, match.start()
        prefix = 0
        while start - prefix - 1 >= 0 and is_syllable(text[start - prefix - 1]):
            prefix += 1
        if prefix < min_prefix:
            return match.group(0)
        if not_after is not None and not_after.search(text[start - prefix:start]):
            return match.group(0)
        return standard

    return pattern, replace


def _initialism_rule(config: NormalizerConfig) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    table = dict(row[:2] for row in lexicons.load("initialisms.tsv", 2, config.extra_lexicons))
    pattern = re.compile(f"(?<![ㄱ-ㅣ가-힣])({'|'.join(sorted(table, key=len, reverse=True))})(?![ㄱ-ㅣ가-힣])")
    return pattern, lambda m: table[m.group(1)]


class _KiwiCodaJudge:
    """Strips an extra coda wherever Kiwi tags one (Z_CODA); caches verdicts per eojeol."""

    _CANDIDATE_RE = re.compile("[가-힣]*[가-힣](?![가-힣])")

    def __init__(self) -> None:
        from kiwipiepy import Kiwi

        self._kiwi = Kiwi()
        self._cache: dict[str, str] = {}

    def __call__(self, match: re.Match[str]) -> str:
        word = match.group(0)
        if decompose(word[-1])[2] not in (21, 17, 16):  # ㅇ, ㅂ, ㅁ codas
            return word
        verdict = self._cache.get(word)
        if verdict is None:
            tokens = self._kiwi.tokenize(word)
            verdict = word
            if tokens and tokens[-1].tag == "Z_CODA":
                verdict = word[:-1] + without_final(word[-1])
            if len(self._cache) < 200_000:
                self._cache[word] = verdict
        return verdict


def colloquial_rules(config: NormalizerConfig) -> list[tuple[str, Rule]]:
    """The colloquial rules in the order they run, as (name, rule) pairs for the normalizer."""
    rules = []
    rules.append(("lengthening", sub_rule("lengthening", _LENGTHENING_RE, _lengthening, has_hangul)))
    laugh_cap = config.max_jamo_run
    laugh_re = re.compile(f"([{_LAUGH_SYLLABLES}])\\1{{{laugh_cap},}}")
    rules.append(("laughter_syllables", sub_rule("laughter_syllables", laugh_re, lambda m: m.group(0)[:laugh_cap])))
    pattern, replace = _ending_rule(config)
    rules.append(("cute_ending", sub_rule("cute_ending", pattern, replace)))
    if config.ending_judge == "kiwi":
        judge = _KiwiCodaJudge()
        rules.append(("kiwi_coda", sub_rule("kiwi_coda", _KiwiCodaJudge._CANDIDATE_RE, judge, has_hangul)))
    pattern, replace = _contraction_rule(config)
    rules.append(("contraction", sub_rule("contraction", pattern, replace)))
    if config.initialisms == "expand":
        pattern, replace = _initialism_rule(config)
        rules.append(("initialism", sub_rule("initialism", pattern, replace, has_jamo)))
    return rules
