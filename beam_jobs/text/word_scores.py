"""Corpus-learned word scores (soynlp cohesion and branching entropy), as pure functions.

soynlp's ``WordExtractor`` keeps four additive counters — left substrings ``L``, right
substrings ``R`` and their one-character extensions across a space ``aL`` / ``aR``. Because
they are sums, they can be counted per batch on many workers and combined
(:mod:`beam_jobs.learn_words`); :func:`scores_from_counts` then hands the combined counts to
soynlp itself for scoring, so the scores are exactly soynlp's.

The artifact is a small JSON file: ``{"format": "malmoi.word_scores", "version": 1,
"scores": {word: score}, ...}`` where ``score = cohesion_forward * exp(right_branching_entropy)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from beam_jobs.text.pieces import hangul_words

__all__ = ["ARTIFACT_FORMAT", "artifact_bytes", "count_substrings", "hangul_words", "load_scores",
           "make_soynlp_splitter", "prune", "scores_from_counts"]

ARTIFACT_FORMAT = "malmoi.word_scores"
ARTIFACT_VERSION = 1
KINDS = ("L", "R", "aL", "aR")


def count_substrings(sentences: Iterable[list[str]], max_left_length: int = 10,
                     max_right_length: int = 6) -> Counter[tuple[str, str]]:
    """soynlp's L / R / aL / aR counts for ``sentences`` (each a list of words).

    Mirrors ``soynlp.word.WordExtractor.train`` (0.0.493), without its pruning, so partial
    counts from many workers add up to the counts of the whole corpus.
    """
    counts: Counter[tuple[str, str]] = Counter()
    for words in sentences:
        for word in words:
            if len(word) <= 1:
                continue
            length = len(word)
            for i in range(1, min(max_left_length + 1, length) + 1):
                counts["L", word[:i]] += 1
            for i in range(1, min(max_right_length + 1, length)):
                counts["R", word[-i:]] += 1
        if len(words) <= 1:
            continue
        for left_word, word, right_word in zip([words[-1], *words[:-1]], words, [*words[1:], words[0]], strict=True):
            counts["aL", f"{word} {right_word[0]}"] += 1
            counts["aR", f"{left_word[-1]} {word}"] += 1
            length = len(word)
            for i in range(1, min(max_right_length + 1, length)):
                counts["aL", f"{word[-i:]} {right_word[0]}"] += 1
            for i in range(1, min(max_left_length + 1, length)):
                counts["aR", f"{left_word[-1]} {word[:i]}"] += 1
    return counts


def prune(counts: dict[tuple[str, str], int], min_count: int) -> dict[tuple[str, str], int]:
    """soynlp's pruning: L/R below ``min_count`` and aL/aR seen once are dropped."""
    return {key: n for key, n in counts.items() if n >= (min_count if key[0] in ("L", "R") else 2)}


def scores_from_counts(counts: dict[tuple[str, str], int], *, min_count: int = 5, max_left_length: int = 10,
                       max_right_length: int = 6, min_cohesion_forward: float = 0.05) -> dict[str, float]:
    """Word -> ``cohesion_forward * exp(right_branching_entropy)``, scored by soynlp from combined counts."""
    from soynlp.word import WordExtractor

    extractor = WordExtractor(max_left_length=max_left_length, max_right_length=max_right_length,
                              min_frequency=min_count, min_cohesion_forward=min_cohesion_forward, verbose_points=0)
    tables: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
    for (kind, text), n in prune(counts, min_count).items():
        tables[kind][text] = n
    extractor.L, extractor.R, extractor._aL, extractor._aR = tables["L"], tables["R"], tables["aL"], tables["aR"]
    extracted = extractor.extract()
    return {
        word: float(s.cohesion_forward * math.exp(s.right_branching_entropy))
        for word, s in extracted.items()
        if len(word) >= 2 and s.cohesion_forward > 0
    }


def read_bytes(path: str) -> bytes:
    """A local file's bytes, or a remote one's (``gs://``, ``s3://``) through fsspec."""
    if "://" in path:
        import fsspec

        with fsspec.open(path, "rb") as handle:
            return handle.read()
    with open(path, "rb") as handle:
        return handle.read()


def artifact_bytes(scores: dict[str, float], info: dict[str, Any]) -> bytes:
    """The word-scores artifact: format, version, how it was learned (``info``) and the scores."""
    payload = {"format": ARTIFACT_FORMAT, "version": ARTIFACT_VERSION, **info,
               "num_words": len(scores), "scores": dict(sorted(scores.items()))}
    return (json.dumps(payload, ensure_ascii=False, indent=0, sort_keys=True) + "\n").encode()


def load_scores(path: str) -> tuple[dict[str, float], str]:
    """Read a word-scores artifact; returns the scores and a digest of the file for provenance."""
    data = read_bytes(path)
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as error:
        raise ValueError(f"word scores '{path}': not JSON ({error}). Fix: write it with beam_jobs.learn_words.") from error
    if payload.get("format") != ARTIFACT_FORMAT or payload.get("version") != ARTIFACT_VERSION:
        raise ValueError(
            f"word scores '{path}': expected format {ARTIFACT_FORMAT} v{ARTIFACT_VERSION}, found "
            f"{payload.get('format')} v{payload.get('version')}. Fix: re-run beam_jobs.learn_words."
        )
    return {k: float(v) for k, v in payload["scores"].items()}, hashlib.sha256(data).hexdigest()[:16]


def make_soynlp_splitter(scores: dict[str, float], kind: str) -> Callable[[str], list[str]]:
    """A function splitting one Hangul run into words with soynlp's LTokenizer or MaxScoreTokenizer."""
    if kind == "ltokenizer":
        from soynlp.tokenizer import LTokenizer

        tokenizer = LTokenizer(scores=scores)
        return lambda word: [w for w in tokenizer.tokenize(word) if w]
    from soynlp.tokenizer import MaxScoreTokenizer

    tokenizer = MaxScoreTokenizer(scores=scores)
    return lambda word: [w for w in tokenizer.tokenize(word) if w]
