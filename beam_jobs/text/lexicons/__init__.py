"""Lexicons shipped with malmoi (TSV files in this folder), loaded as plain data.

Lines starting with ``#`` are comments; columns are tab-separated. Users can add their
own files through ``NormalizerConfig.extra_lexicons`` (same columns; later files win).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

LEXICON_DIR = Path(__file__).resolve().parent
SHIPPED = ("contractions.tsv", "initialisms.tsv", "endings.tsv")


def read_tsv(path: str | Path, num_columns: int) -> list[tuple[str, ...]]:
    """Rows of a lexicon TSV, padded to ``num_columns``; a clear error for malformed lines."""
    rows: list[tuple[str, ...]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.split("\t")
            if len(cells) > num_columns or not cells[0]:
                raise ValueError(
                    f"{path}:{number}: expected at most {num_columns} tab-separated columns with a "
                    f"non-empty first one, found {len(cells)}: {line!r}"
                )
            rows.append(tuple(cells + [""] * (num_columns - len(cells))))
    return rows


@lru_cache(maxsize=32)
def load(name: str, num_columns: int, extra: tuple[str, ...] = ()) -> tuple[tuple[str, ...], ...]:
    """A shipped lexicon merged with extra files whose name starts the same way (later wins)."""
    merged: dict[str, tuple[str, ...]] = {}
    for row in read_tsv(LEXICON_DIR / name, num_columns):
        merged[row[0]] = row
    stem = name.split(".")[0]
    for path in extra:
        if Path(path).name.startswith(stem):
            for row in read_tsv(path, num_columns):
                merged[row[0]] = row
    return tuple(merged.values())


def content_hash(extra: tuple[str, ...] = ()) -> str:
    """Hash of every lexicon's bytes (shipped and extra), for provenance."""
    digest = hashlib.sha256()
    for path in [LEXICON_DIR / name for name in SHIPPED] + [Path(p) for p in extra]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
