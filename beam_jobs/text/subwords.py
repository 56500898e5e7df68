"""A model directory's subword tokenizer with everything malmoi recorded beside it, applied alike
wherever text becomes ids: ``kd.tokenizer`` (training), ``beam_jobs.augment`` (the student's
``input_ids`` and the teacher's inputs), ``kd.pretrain`` / ``kd.finetune`` / ``kd.distill`` and
``kd.predict`` (serving).

``malmoi_tokenizer.json`` beside the Hugging Face files says how the vocabulary was trained:
with ``"pre_split": "tokens"`` every text is first cut by malmoi's word tokenizer (the same
:class:`~beam_jobs.text.tokenizer.TokenizerConfig` that made the dataset's ``tokens`` column,
word scores copied into the directory) and re-joined with spaces, so subwords never cross
those boundaries — in training and in serving alike. Without the file, the directory is a
plain Hugging Face tokenizer and texts go in unchanged.

Imports ``transformers`` when a tokenizer is loaded (no torch, no Beam).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from beam_jobs.text.tokenizer import Tokenizer, TokenizerConfig

METADATA_FILE = "malmoi_tokenizer.json"
WORD_SCORES_FILE = "malmoi_word_scores.json"
PRE_SPLITS = ("none", "tokens")


class SubwordTokenizer:
    """The Hugging Face tokenizer of ``folder`` plus malmoi's recorded pre-splitting.

    Call it like the Hugging Face tokenizer (``tok(texts, truncation=True, ...)``); any other
    attribute (``pad_token_id``, ``get_vocab``, ``len(tok)``) is the Hugging Face tokenizer's.
    """

    def __init__(self, hf_tokenizer: Any, metadata: dict[str, Any], folder: Path) -> None:
        self.hf = hf_tokenizer
        self.metadata = dict(metadata)
        self.pre_split = self.metadata.get("pre_split", "none")
        if self.pre_split not in PRE_SPLITS:
            raise ValueError(f"{folder / METADATA_FILE}: pre_split must be one of {PRE_SPLITS}, found "
                             f"{self.pre_split!r}. Fix: re-run kd.tokenizer.")
        self._words: Tokenizer | None = None
        self._backends: dict[int, Any] = {}  # max_length -> truncating Rust tokenizer (input_ids)
        self._specials: re.Pattern[str] | None = None
        if self.pre_split == "tokens":
            specials = sorted(getattr(hf_tokenizer, "all_special_tokens", []) or [], key=len, reverse=True)
            if specials:  # [MASK] in a masked-LM input stays one token
                self._specials = re.compile("(" + "|".join(map(re.escape, specials)) + ")")
            config = dict(self.metadata.get("word_tokenizer") or {})
            if config.get("scores_path"):
                config["scores_path"] = str(folder / config["scores_path"])
            self._words = Tokenizer(TokenizerConfig(**config))

    def prepare(self, text: str) -> str:
        """The text as the vocabulary was trained on it (pre-split into words when recorded)."""
        if self._words is None:
            return text
        if self._specials is None:
            return " ".join(self._words(text))
        parts = self._specials.split(text)  # odd positions are special tokens
        return " ".join(w for i, part in enumerate(parts)
                        for w in ([part] if i % 2 else self._words(part)) if w)

    def __call__(self, texts: str | Sequence[str], *args: Any, **kwargs: Any) -> Any:
        if isinstance(texts, str):
            return self.hf(self.prepare(texts), *args, **kwargs)
        return self.hf([self.prepare(t) for t in texts], *args, **kwargs)

    def input_ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """``self(texts, truncation=True, max_length=max_length)["input_ids"]``, read straight from
        the Rust tokenizer's encodings when there is one (the Python call builds a dictionary of
        every field per text first: about 1% of a CPU teacher's labeling time)."""
        backend = self._truncating_backend(max_length)
        prepared = [self.prepare(t) for t in texts]
        if backend is None:
            return self.hf(prepared, truncation=True, max_length=max_length)["input_ids"]
        return [encoding.ids for encoding in backend.encode_batch(prepared, add_special_tokens=True)]

    def _truncating_backend(self, max_length: int) -> Any:
        """A copy of the Rust tokenizer that truncates at ``max_length`` and never pads (cached)."""
        cache = self._backends
        if max_length not in cache:
            backend = getattr(self.hf, "backend_tokenizer", None) if getattr(self.hf, "is_fast", False) else None
            if backend is not None:
                backend = copy.deepcopy(backend)
                backend.no_padding()
                side = getattr(self.hf, "truncation_side", "right")
                backend.enable_truncation(max_length, strategy="longest_first", direction=side)
            cache[max_length] = backend
        return cache[max_length]

    def __len__(self) -> int:
        return len(self.hf)

    def __getattr__(self, name: str) -> Any:
        if name == "hf":  # not yet set: avoid recursing while unpickling
            raise AttributeError(name)
        return getattr(self.hf, name)

    def save_pretrained(self, output: str | Path) -> None:
        """The Hugging Face files, ``malmoi_tokenizer.json`` and the word scores it needs."""
        output = Path(output)
        self.hf.save_pretrained(output)
        metadata = dict(self.metadata)
        words = self._words
        if words is not None and words.config.scores_path:
            target = output / WORD_SCORES_FILE
            if Path(words.config.scores_path).resolve() != target.resolve():
                shutil.copyfile(words.config.scores_path, target)
            metadata["word_tokenizer"] = {**metadata["word_tokenizer"], "scores_path": WORD_SCORES_FILE}
        if metadata:
            (output / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False, sort_keys=True)
                                                + "\n", encoding="utf-8")


def write_metadata(folder: str | Path, *, pre_split: str, word_tokenizer: dict[str, Any] | None,
                   **extra: Any) -> None:
    """Record how a vocabulary in ``folder`` was trained (kd.tokenizer); copies word scores in."""
    if pre_split not in PRE_SPLITS:
        raise ValueError(f"--pre-split: expected one of {PRE_SPLITS}, found {pre_split!r}")
    folder = Path(folder)
    metadata: dict[str, Any] = {"pre_split": pre_split, **extra}
    if pre_split == "tokens":
        config = dict(word_tokenizer or TokenizerConfig().to_dict())
        if config.get("scores_path"):
            from beam_jobs.text.word_scores import read_bytes

            (folder / WORD_SCORES_FILE).write_bytes(read_bytes(config["scores_path"]))
            config["scores_path"] = WORD_SCORES_FILE
        metadata["word_tokenizer"] = config
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                        encoding="utf-8")


def load_subword_tokenizer(folder: str | Path) -> SubwordTokenizer:
    """The tokenizer of a model or tokenizer directory, with malmoi's recorded pre-splitting applied."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    metadata_path = folder / METADATA_FILE
    metadata = json.loads(metadata_path.read_text(encoding="utf-8")) if metadata_path.exists() else {}
    return SubwordTokenizer(AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False), metadata, folder)
