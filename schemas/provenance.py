"""Provenance: stable ids and hashes that tie every artifact to what made it.

* ids and splits are stable hashes of where a row came from, so a rerun, another machine or
  another number of workers gives the same values (:func:`stable_id`, :func:`stable_unit`,
  :func:`stable_seed`);
* artifacts are identified by content hashes (:func:`files_hash`, :func:`weights_hash`,
  :func:`tokenizer_hash`), streamed in 1 MiB blocks so a base-size teacher (~440 MB) is never
  read into memory whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

_SEP = "\x1f"
_BLOCK = 1 << 20
#: files whose bytes decide a tokenizer's ids
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")


def stable_id(*parts: str, length: int = 20) -> str:
    """A deterministic id from its parts (sha1 of the parts joined by U+001F)."""
    return hashlib.sha1(_SEP.join(parts).encode()).hexdigest()[:length]


def stable_unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from its parts (for hash splits)."""
    return int.from_bytes(hashlib.sha1(_SEP.join(parts).encode()).digest()[:8], "big") / 2**64


def stable_seed(*parts: str) -> int:
    """A deterministic 64-bit seed from its parts (for per-row random generators)."""
    return int.from_bytes(hashlib.sha1(_SEP.join(parts).encode()).digest()[:8], "big")


def short_hash(payload: str | bytes) -> str:
    """16 hex characters of sha256: the hash shown in manifests."""
    return hashlib.sha256(payload.encode() if isinstance(payload, str) else payload).hexdigest()[:16]


def files_hash(paths: Iterable[str | Path]) -> str:
    """Hash of files' names and bytes, in name order, streamed."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
    return digest.hexdigest()[:16]


def weights_hash(model_dir: str) -> str:
    """Hash of a checkpoint's weight files (safetensors, else bin)."""
    folder = Path(model_dir)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise FileNotFoundError(
            f"'{model_dir}' has no *.safetensors or *.bin weights. Fix: pass a save_pretrained directory."
        )
    return files_hash(files)


#: tokenizer.json fields that do not decide the ids: a fast tokenizer used with truncation or padding
#: records them, and save_pretrained writes them out (a model's copy of a tokenizer then differs in
#: bytes from the tokenizer it was trained with, with the same ids)
_RUNTIME_FIELDS = ("truncation", "padding")


def _tokenizer_files(tokenizer_dir: str) -> list[Path]:
    folder = Path(tokenizer_dir)
    files = [p for name in TOKENIZER_FILES if (p := folder / name).exists()]
    if not files:
        raise FileNotFoundError(
            f"'{tokenizer_dir}' has no tokenizer.json / vocab.txt. Fix: pass a tokenizer saved by kd.tokenizer "
            "or save_pretrained."
        )
    return files


def tokenizer_hash(tokenizer_dir: str) -> str:
    """Hash of what decides a tokenizer directory's ids: its ``tokenizer.json`` with the run-time
    truncation and padding settings left out (keys sorted), else its vocabulary files."""
    files = _tokenizer_files(tokenizer_dir)
    main = Path(tokenizer_dir) / "tokenizer.json"
    if main not in files:
        return files_hash(files)
    spec = json.loads(main.read_text(encoding="utf-8"))
    for field in _RUNTIME_FIELDS:
        spec.pop(field, None)
    canonical = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(b"tokenizer.json" + canonical.encode()).hexdigest()[:16]


def tokenizer_hashes(tokenizer_dir: str) -> frozenset[str]:
    """The hashes a dataset may have recorded for this tokenizer: :func:`tokenizer_hash` and the
    whole-file hash that malmoi recorded before it (datasets made then still match)."""
    return frozenset({tokenizer_hash(tokenizer_dir), files_hash(_tokenizer_files(tokenizer_dir))})
