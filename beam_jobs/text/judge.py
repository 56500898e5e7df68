"""The lexical judge: before a rule rewrites a word that could be a real word, ask whether the
original already reads as valid Korean and whether the rewrite reads better.

Lengthening, contractions with a particle, typo fixes, glued vowel jamo, noun + copula
contractions and extra codas all meet real words of the same shape (자기+이익 looks like a
stretched 기, 첨가 like 첨 + 가). :class:`KiwiJudge` asks Kiwi's analysis of the Hangul run
alone — once per distinct run (cached), and only for the runs a rule wants to change, so the
default path stays fast:

* an analysis is **valid** when no morpheme is out of vocabulary, no extra coda (``Z_CODA``) or
  unknown piece is left, and no typo-form ending (``엇``, ``겄``, ``것`` …) is used;
* a rewrite is **better** when it is valid and either the original is not, with a higher score,
  or the original is valid too and the rewrite scores at least ``margin`` (log-probability) more.

``NullJudge`` accepts everything (``NormalizerConfig.lexical_judge = "none"``: the rules alone,
faster, and they damage real words; measured in docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Protocol

#: pre-final endings that are typo forms of 었/았/였/겠 (Kiwi knows them as dialect/typo EPs)
TYPO_ENDINGS = frozenset({"엇", "앗", "엿", "겄", "것"})
_INVALID_TAGS = frozenset({"Z_CODA", "Z_SIOT", "UN"})
_CACHE_LIMIT = 500_000


@dataclass(frozen=True)
class Morpheme:
    form: str
    tag: str
    start: int
    length: int
    oov: bool


@dataclass(frozen=True)
class Analysis:
    """Kiwi's best analysis of one Hangul run: its morphemes and log-probability score."""

    score: float
    morphemes: tuple[Morpheme, ...]

    @property
    def valid(self) -> bool:
        return not any(m.oov or m.tag in _INVALID_TAGS or (m.tag == "EP" and m.form in TYPO_ENDINGS)
                       for m in self.morphemes)


class Judge(Protocol):
    analyzes: bool

    def analyze(self, word: str) -> Analysis | None: ...

    def better(self, original: str, rewritten: str) -> bool: ...

    def is_one_word(self, word: str) -> bool: ...


class NullJudge:
    """No judge: every rewrite a rule proposes is made (and no analysis-driven rule runs)."""

    analyzes = False

    def analyze(self, word: str) -> Analysis | None:
        return None

    def better(self, original: str, rewritten: str) -> bool:
        return True

    def is_one_word(self, word: str) -> bool:
        return False


class KiwiJudge:
    """Kiwi's analysis of single Hangul runs, cached per run; Kiwi loads on the first question."""

    analyzes = True

    def __init__(self, margin: float = 6.0) -> None:
        self._kiwi = None
        self.margin = margin
        self._cache: dict[str, Analysis] = {}

    def analyze(self, word: str) -> Analysis | None:
        found = self._cache.get(word)
        if found is None:
            if self._kiwi is None:
                from kiwipiepy import Kiwi

                self._kiwi = Kiwi()
            tokens, score = self._kiwi.analyze(word, top_n=1)[0]
            found = Analysis(float(score), tuple(Morpheme(t.form, t.tag, t.start, t.len, bool(t.oov)) for t in tokens))
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[word] = found
        return found

    def better(self, original: str, rewritten: str) -> bool:
        before, after = self.analyze(original), self.analyze(rewritten)
        if not after.valid:
            return False
        if not before.valid:
            return after.score > before.score
        return after.score - before.score >= self.margin

    def is_one_word(self, word: str) -> bool:
        """Kiwi reads ``word`` as one known content morpheme (첨가: a noun, not 첨 + the particle 가)."""
        analysis = self.analyze(word)
        content = [m for m in analysis.morphemes if not m.tag.startswith(("J", "E", "X", "S"))]
        return len(content) == 1 and not content[0].oov and content[0].length == len(word)


@cache
def shared_judge(kind: str) -> Judge:
    """One judge of each kind per process (its cache and Kiwi's model are shared by every normalizer)."""
    if kind == "kiwi":
        return KiwiJudge()
    if kind == "none":
        return NullJudge()
    raise ValueError(f"lexical judge: expected 'kiwi' or 'none', found {kind!r}")
