"""Tokenizers for normalized text: ``str -> list[str]``, pure Python, no Beam or torch.

Every tokenizer first cuts text into *pieces* that are never split further: placeholders
(``&name&``), jamo runs (ㅋㅋ, ㅠㅠ, ㄱㅅ), Hangul runs, Latin/digit runs, punctuation runs and
single other characters (emoji). Hangul runs are then split into words by the configured
method: ``whitespace`` keeps them whole; ``soynlp`` applies corpus-learned word scores
(:mod:`beam_jobs.text.word_scores`) with soynlp's ``LTokenizer`` or ``MaxScoreTokenizer``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from beam_jobs.text.hangul import is_syllable
from beam_jobs.text.pieces import PIECE_RE, pieces
from beam_jobs.text.word_scores import load_scores, make_soynlp_splitter

__all__ = ["PIECE_RE", "Tokenizer", "TokenizerConfig", "pieces"]


@dataclass(frozen=True, kw_only=True)
class TokenizerConfig:
    """How Hangul runs are split. ``scores_path`` points at a word-scores artifact."""

    # plain field metadata: the jobs' command lines are generated from it (schemas.options)
    method: str = field(default="whitespace", metadata={
        "help": "how Hangul runs are split into words", "flag": "--tokenizer", "choices": ("whitespace", "soynlp")})
    soynlp_tokenizer: str = field(default="ltokenizer", metadata={
        "help": "soynlp's splitter for --tokenizer soynlp", "choices": ("ltokenizer", "maxscore")})
    scores_path: str | None = field(default=None, metadata={
        "help": "word-scores file from beam_jobs.learn_words (for --tokenizer soynlp)", "flag": "--word-scores"})

    def __post_init__(self) -> None:
        if self.method not in ("whitespace", "soynlp"):
            raise ValueError(f"TokenizerConfig.method: expected 'whitespace' or 'soynlp', found {self.method!r}")
        if self.soynlp_tokenizer not in ("ltokenizer", "maxscore"):
            raise ValueError(
                f"TokenizerConfig.soynlp_tokenizer: expected 'ltokenizer' or 'maxscore', found {self.soynlp_tokenizer!r}"
            )
        if self.method == "soynlp" and not self.scores_path:
            raise ValueError(
                "TokenizerConfig: method 'soynlp' needs scores_path (a word-scores file written by "
                "`python -m beam_jobs.learn_words`). Fix: pass --word-scores PATH or use --tokenizer whitespace."
            )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Tokenizer:
    """Splits normalized text into tokens. Build once per process, call many times."""

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config or TokenizerConfig()
        self._split_hangul = None
        self._scores_digest = ""
        if self.config.method == "soynlp":
            scores, self._scores_digest = load_scores(self.config.scores_path)  # type: ignore[arg-type]
            self._split_hangul = make_soynlp_splitter(scores, self.config.soynlp_tokenizer)

    def tokenize(self, text: str) -> list[str]:
        if self._split_hangul is None:
            return pieces(text)
        tokens: list[str] = []
        split = self._split_hangul
        for piece in pieces(text):
            if is_syllable(piece[0]) and len(piece) > 1:
                tokens.extend(split(piece))
            else:
                tokens.append(piece)
        return tokens

    __call__ = tokenize

    def hash(self) -> str:
        """Stable hash of the configuration and the word scores' content."""
        payload = {"method": self.config.method, "tokenizer": self.config.soynlp_tokenizer,
                   "scores": self._scores_digest, "pieces": PIECE_RE.pattern}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
