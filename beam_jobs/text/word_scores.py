"""Corpus-learned word scores (soynlp cohesion and branching entropy), as pure functions.

soynlp's ``WordExtractor`` keeps four additive counters — left substrings ``L``, right
substrings ``R`` and their one-character extensions across a space ``aL`` / ``aR``. Because
they are sums, they can be counted per batch on many workers and combined
(:mod:`beam_jobs.learn_words`); :func:`scores_from_counts` then scores the combined counts as soynlp's
``WordExtractor.extract`` does (equal to float rounding, checked against soynlp in the tests),
over whole Arrow columns.

The artifact is a small JSON file: ``{"format": "malmoi.word_scores", "version": 1,
"scores": {word: score}, ...}`` where ``score = cohesion_forward * exp(right_branching_entropy)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from beam_jobs.text.pieces import hangul_words

__all__ = ["ARTIFACT_FORMAT", "COUNTS_SCHEMA", "SCORES_NAME", "artifact_bytes", "as_dict", "count_substrings",
           "hangul_words", "load_scores", "make_soynlp_splitter", "merge_counts", "prune", "scores_from_counts",
           "shard_ids", "split_by_shard"]

ARTIFACT_FORMAT = "malmoi.word_scores"
ARTIFACT_VERSION = 1
KINDS = ("L", "R", "aL", "aR")


#: the counts table: one row per (kind, substring) with its count
COUNTS_SCHEMA = pa.schema([("kind", pa.string()), ("text", pa.string()), ("n", pa.int64())])


def _gather(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """Strings built from byte ranges of ``data``: row ``r`` is ``data[starts[r, k]:ends[r, k]]``
    concatenated over ``k`` (arrays of shape (rows, parts)), in one vectorized gather."""
    lengths = (ends - starts).ravel()
    total = int(lengths.sum())
    offsets = np.zeros(starts.shape[0] + 1, np.int64)
    np.cumsum((ends - starts).sum(axis=1), out=offsets[1:])
    placed = np.cumsum(lengths) - lengths  # where each range lands in the output
    body = data[np.arange(total, dtype=np.int64) + np.repeat(starts.ravel() - placed, lengths)]
    if total < 2**31:
        return pa.StringArray.from_buffers(starts.shape[0], pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(body))
    return pa.LargeStringArray.from_buffers(starts.shape[0], pa.py_buffer(offsets), pa.py_buffer(body)).cast(pa.string())


def _tally(kind: str, parts: list[pa.Array]) -> pa.Table:
    values = pa.concat_arrays(parts) if parts else pa.array([], pa.string())
    counted = pc.value_counts(values) if len(values) else pa.StructArray.from_arrays(
        [pa.array([], pa.string()), pa.array([], pa.int64())], ["values", "counts"])
    return pa.table({"kind": pa.repeat(pa.scalar(kind, pa.string()), len(counted)), "text": counted.field("values"),
                     "n": counted.field("counts").cast(pa.int64())}, schema=COUNTS_SCHEMA)


def count_substrings(sentences: Iterable[list[str]], max_left_length: int = 10,
                     max_right_length: int = 6, *, scored_only: bool = False) -> pa.Table:
    """soynlp's L / R / aL / aR counts for ``sentences`` (each a list of words), as a table
    (:data:`COUNTS_SCHEMA`, one row per distinct substring).

    ``scored_only`` counts only the rows :func:`scores_from_counts` reads at these lengths: ``L``,
    ``aL`` and the ``R`` substrings longer than ``max_left_length`` (none at the defaults). ``aR``
    and the other ``R`` rows feed soynlp's left-side scores, which the artifact does not keep;
    leaving them out halves what is counted, merged and shuffled, with the same scores.

    The same counts as ``soynlp.word.WordExtractor.train`` (0.0.493) without its pruning, so
    partial counts from many workers add up (:func:`merge_counts`) to the whole corpus's. No
    substring is cut in Python: the words' UTF-8 bytes are laid out once, every substring is a
    byte range of them (character boundaries found from the UTF-8 lead bytes), all substrings of
    one length are gathered by one numpy index, and Arrow's ``value_counts`` counts them. Empty
    words are dropped (``str.split``, as soynlp uses, never makes them).
    """
    sentences = [kept for kept in ([w for w in s if w] for s in sentences) if kept]
    sizes = np.fromiter((len(s) for s in sentences), np.int64, len(sentences))
    words = pa.array([w for s in sentences for w in s], pa.string())
    offsets = np.frombuffer(words.buffers()[1], np.int32)[:len(words) + 1].astype(np.int64)
    raw = np.frombuffer(words.buffers()[2], np.uint8)[:offsets[-1]] if len(words) else np.zeros(0, np.uint8)
    space = len(raw)  # one space byte appended after the words: the " " of aL / aR
    data = np.concatenate([raw, np.frombuffer(b" ", np.uint8)])
    char_start = np.flatnonzero((raw & 0xC0) != 0x80)  # bytes that begin a code point
    bounds = np.append(char_start, space)  # bounds[c]: the byte where character c begins
    length = np.diff(np.searchsorted(char_start, offsets))  # code points per word
    first_char = np.cumsum(length) - length
    start, end = offsets[:-1], offsets[1:]

    def whole(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return start[w], end[w]

    def prefix(w: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:  # word[:i]
        return start[w], bounds[first_char[w] + i]

    def suffix(w: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:  # word[-i:]
        return bounds[first_char[w] + length[w] - i], end[w]

    def joined(*ranges: tuple[np.ndarray, np.ndarray]) -> pa.Array:
        return _gather(data, np.stack([r[0] for r in ranges], 1), np.stack([r[1] for r in ranges], 1))

    # L: word[:i] for i = 1 .. min(max_left + 1, len) of words longer than one character (soynlp's range)
    multi_char = length > 1
    left = [joined(prefix(np.flatnonzero(multi_char & (length >= i)), i)) for i in range(1, max_left_length + 2)]
    # R: word[-i:] for i = 1 .. min(max_right + 1, len) - 1
    right = [joined(suffix(np.flatnonzero(multi_char & (length > i)), i))
             for i in range((max_left_length + 1) if scored_only else 1, max_right_length + 1)]
    # aL / aR: each word with the first character of the next word / the last of the previous
    # one, circularly within a sentence of two words or more
    sentence = np.repeat(np.arange(len(sentences)), sizes)
    first = (np.cumsum(sizes) - sizes)[sentence]
    size = sizes[sentence]
    position = np.arange(len(words)) - first
    chosen = np.flatnonzero(size > 1)
    after = (first + (position + 1) % np.maximum(size, 1))[chosen]
    before = (first + (position - 1) % np.maximum(size, 1))[chosen]
    following = np.stack([start[after], bounds[first_char[after] + 1]])  # first character of the next word
    preceding = np.stack([bounds[first_char[before] + length[before] - 1], end[before]])  # last of the previous
    blank = np.stack([np.full(len(chosen), space), np.full(len(chosen), space + 1)])
    with_next = [joined(whole(chosen), tuple(blank), tuple(following))]
    with_previous = [] if scored_only else [joined(tuple(preceding), tuple(blank), whole(chosen))]
    for i in range(1, max(max_left_length, max_right_length) + 1):
        keep = length[chosen] > i
        if i <= max_right_length:
            with_next.append(joined(suffix(chosen[keep], i), tuple(blank[:, keep]), tuple(following[:, keep])))
        if i <= max_left_length and not scored_only:
            with_previous.append(joined(tuple(preceding[:, keep]), tuple(blank[:, keep]), prefix(chosen[keep], i)))
    return pa.concat_tables([_tally("L", left), _tally("R", right), _tally("aL", with_next),
                             _tally("aR", with_previous)])


def merge_counts(tables: Iterable[pa.Table]) -> pa.Table:
    """Sum several counts tables (per-batch or per-worker partial counts) into one.

    Per kind, the substrings are dictionary-encoded (one hash pass over one string key) and their
    counts summed by index with ``np.bincount``: about twice as fast as a ``group_by`` over the
    two keys, and the output order (first occurrence) does not depend on thread scheduling.
    Counts are summed as float64, exact up to 2**53 per substring.
    """
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return COUNTS_SCHEMA.empty_table()
    if len(tables) == 1:
        return tables[0]
    table = pa.concat_tables(tables)
    kind = table.column("kind")
    merged, seen = [], 0
    for name in KINDS:
        part = table.filter(pc.equal(kind, name))
        seen += part.num_rows
        if not part.num_rows:
            continue
        encoded = pc.dictionary_encode(part.column("text").combine_chunks())
        sums = np.bincount(encoded.indices.to_numpy(), weights=part.column("n").to_numpy(),
                           minlength=len(encoded.dictionary))
        merged.append(pa.table({"kind": pa.repeat(pa.scalar(name, pa.string()), len(sums)),
                                "text": encoded.dictionary, "n": sums.astype(np.int64)}, schema=COUNTS_SCHEMA))
    if seen != table.num_rows:  # a kind this module does not know would be dropped silently
        unknown = set(pc.unique(kind).to_pylist()) - set(KINDS)
        raise ValueError(f"counts tables hold kinds {sorted(unknown)}; expected only {KINDS}")
    return pa.concat_tables(merged)


def shard_ids(counts: pa.Table, shards: int) -> np.ndarray:
    """A stable shard per row, decided by the substring's **first character** only (its UTF-8
    bytes, summed, modulo ``shards``): the same substring lands in the same shard on every worker
    and run, and everything a word's score reads — its own ``L`` count, that of its first
    character, its ``L`` / ``aL`` right extensions and its ``R`` entry — shares that first
    character, so each shard scores on its own (:func:`scores_from_counts` per shard)."""
    text = counts.column("text").combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset:text.offset + len(text) + 1]
    body = text.buffers()[2]
    data = np.frombuffer(body, np.uint8) if body is not None and body.size else np.zeros(1, np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    lead = data[np.minimum(starts, len(data) - 1)]
    # bytes in the first character, from its UTF-8 lead byte (an empty string counts none)
    width = np.where(lead < 0xC0, 1, np.where(lead < 0xE0, 2, np.where(lead < 0xF0, 3, 4)))
    width = np.minimum(width, ends - starts)
    total = np.zeros(len(text), np.int64)
    for k in range(4):
        inside = k < width
        total += np.where(inside, data[np.minimum(starts + k, len(data) - 1)], 0)
    return (total % shards).astype(np.int64)


def split_by_shard(counts: pa.Table, shards: int) -> dict[int, pa.Table]:
    """``counts`` cut into its shards (:func:`shard_ids`)."""
    ids = shard_ids(counts, shards)
    # one gather, then zero-copy slices (not a filter per shard); a stable sort of small integers
    # is numpy's radix sort (10x faster than on int64)
    order = np.argsort(ids.astype(np.uint8 if shards <= 256 else np.int64), kind="stable")
    grouped, ids = counts.take(pa.array(order)), ids[order]
    present = np.unique(ids)
    starts = np.searchsorted(ids, present, "left")
    ends = np.searchsorted(ids, present, "right")
    return {int(shard): grouped.slice(int(a), int(b - a)) for shard, a, b in zip(present, starts, ends, strict=True)}


def prune(counts: pa.Table, min_count: int) -> pa.Table:
    """soynlp's pruning: L/R below ``min_count`` and aL/aR seen once are dropped."""
    is_lr = pc.is_in(counts.column("kind"), pa.array(["L", "R"]))
    floor = pc.if_else(is_lr, min_count, 2)
    return counts.filter(pc.greater_equal(counts.column("n"), floor))


def as_dict(counts: pa.Table) -> dict[tuple[str, str], int]:
    """The counts as ``{(kind, substring): n}``."""
    return dict(zip(zip(counts.column("kind").to_pylist(), counts.column("text").to_pylist(), strict=True),
                    counts.column("n").to_pylist(), strict=True))


def scores_from_counts(counts: pa.Table, *, min_count: int = 5, max_left_length: int = 10,
                       max_right_length: int = 6, min_cohesion_forward: float = 0.05) -> dict[str, float]:
    """Word -> ``cohesion_forward * exp(right_branching_entropy)``: what soynlp 0.0.493's
    ``WordExtractor.extract`` gives for these (combined) counts at its default thresholds, equal to
    float rounding (``tests/test_word_scores.py`` checks against soynlp itself), computed with
    Arrow and numpy over whole columns instead of soynlp's Python loops over every substring
    (~8 s of a 200k-utterance learn_words run, all in one process).

    The words are the left substrings ``L`` of 2 to ``max_left_length`` characters, pruned at
    ``min_count`` (and see below); ``cohesion_forward(w) = (L[w] / L[w[0]]) ** (1 / (len(w) - 1))``, kept when at
    least ``min_cohesion_forward`` and above 0; the right branching entropy of ``w`` is the entropy
    of the counts of its one-character right extensions: ``L`` entries ``w + c`` and ``aL`` entries
    ``"w c"`` (soynlp computes it for words up to ``max_left_length - 1`` characters, 0 beyond).
    soynlp's words also include the ``R`` substrings up to ``max_right_length`` characters: those
    with an ``L`` count (a prefix of ``max_left_length + 1`` characters) score too.
    """
    counts = prune(counts, min_count)
    kind = counts.column("kind")
    left = counts.filter(pc.equal(kind, "L"))
    text = left.column("text").combine_chunks()
    n = left.column("n").to_numpy().astype(np.float64)
    length = pc.utf8_length(text).to_numpy(zero_copy_only=False)
    # cohesion_forward of every candidate word: soynlp's words are the L keys up to max_left_length
    # characters and the R keys up to max_right_length; only those with an L count score
    right = counts.filter(pc.equal(kind, "R")).column("text")
    in_right = pc.is_in(text, value_set=right.combine_chunks()).to_numpy(zero_copy_only=False)
    word = (length >= 2) & ((length <= max_left_length) | (in_right & (length <= max_right_length)))
    at_first = pc.index_in(pc.utf8_slice_codeunits(text, 0, 1), value_set=text)  # where L[w[0]] is
    chosen = np.flatnonzero(word & pc.is_valid(at_first).to_numpy(zero_copy_only=False))
    first = pc.fill_null(at_first, 0).to_numpy()
    cohesion = np.zeros(len(text))
    cohesion[chosen] = np.power(n[chosen] / n[first[chosen]], 1.0 / (length[chosen] - 1))
    keep = np.flatnonzero(word & (cohesion >= min_cohesion_forward) & (cohesion > 0))
    # right branching entropy per root: the L extensions (2..max_left_length characters) and the
    # aL ones ("w c", 3..max_left_length + 1 characters with the space), soynlp's parse_left
    extended = np.flatnonzero((length >= 2) & (length <= max_left_length))
    across = counts.filter(pc.equal(kind, "aL"))
    across_text = across.column("text").combine_chunks()
    across_length = pc.utf8_length(across_text).to_numpy(zero_copy_only=False)
    across_keep = np.flatnonzero((across_length >= 3) & (across_length <= max_left_length + 1))
    extensions = pa.concat_arrays([text.take(pa.array(extended)), across_text.take(pa.array(across_keep))])
    frequency = np.concatenate([n[extended], across.column("n").to_numpy().astype(np.float64)[across_keep]])
    # summed in the extensions' sorted order, not the counts' (which depends on how many workers
    # merged them): the same corpus gives the same bytes whatever the parallelism
    order = pc.sort_indices(extensions)
    extensions, frequency = extensions.take(order), frequency[order.to_numpy()]
    roots = pc.utf8_slice_codeunits(pc.replace_substring(extensions, " ", ""), 0, -1)  # soynlp's parse_left
    encoded = pc.dictionary_encode(roots)
    index = encoded.indices.to_numpy()
    total = np.bincount(index, weights=frequency, minlength=len(encoded.dictionary))
    p = frequency / total[index]
    entropy_of = -np.bincount(index, weights=p * np.log(p), minlength=len(encoded.dictionary))
    words = text.take(pa.array(keep))
    at = pc.index_in(words, value_set=encoded.dictionary)  # null: a word with no right extension
    entropy = np.zeros(len(keep))
    entropy[np.flatnonzero(pc.is_valid(at).to_numpy(zero_copy_only=False))] = entropy_of[pc.drop_null(at).to_numpy()]
    return dict(zip(words.to_pylist(), (cohesion[keep] * np.exp(entropy)).tolist(), strict=True))


SCORES_NAME = "word_scores.json"


def read_bytes(path: str) -> bytes:
    """The artifact's bytes: ``path`` is learn_words' output folder (refused without ``_SUCCESS``)
    or the scores file itself; local, ``gs://`` or ``s3://`` (through :mod:`schemas.storage`)."""
    from schemas import storage

    if storage.is_dir(path) or not storage.exists(path):
        if not storage.is_file(storage.join(path, "_SUCCESS")):
            raise FileNotFoundError(
                f"word scores '{path}': no finished learn_words output there (expected {SCORES_NAME} and "
                "_SUCCESS). Fix: pass the --output folder of a finished beam_jobs.learn_words run.")
        path = storage.join(path, SCORES_NAME)
    return storage.read_bytes(path)


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
