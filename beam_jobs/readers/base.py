"""What every reader shares: the utterance record, reader options, the format registry,
encoding detection, streamed lines and the tabular-record helper (pure Python, no Beam).

A format is one :class:`Format` registered with :func:`register` by its module in this package;
``beam_jobs.readers`` imports every module of the package, so adding a format is adding a module.
"""

from __future__ import annotations

import codecs
import datetime
import decimal
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

from schemas.options import option
from schemas.rejects import FileReject, Reject

__all__ = ["FileReject", "Format", "RawUtterance", "ReaderOptions", "Reject", "register"]

LOG = logging.getLogger("beam_jobs.readers")

_SNIFF_BYTES = 1 << 16
_MAX_EXCERPT = 200

#: (line number, decoded text, reject for an undecodable line or None)
Line = tuple[int, str, "Reject | None"]


class RawUtterance(NamedTuple):
    """One utterance as read, before normalization."""

    corpus: str
    source: str
    position: str
    doc_id: str
    turn: int
    text: str
    speaker: str | None = None
    label: str | None = None
    meta: dict[str, str] | None = None
    #: the transcription conventions of its corpus ("nikl", "kspon", "aihub"): which markup rules
    #: the normalizer runs on it; None for generic text (no markup rule runs)
    markup: str | None = None
    #: the split the input itself gives (``--split-column``); None: the hash split decides
    split: str | None = None
    #: named-entity spans ``(start, end, label)``, character offsets into ``text``; None: not annotated
    entities: tuple[tuple[int, int, str], ...] | None = None


@dataclass(frozen=True)
class Format:
    """A corpus format: its name, what its parser takes, and how ``--format auto`` recognizes it.

    ``takes`` is ``"lines"`` (an iterator of :data:`Line`, streamed), ``"json"`` (the parsed
    document) or ``"bytes"`` (the whole file). ``parse(data, source, options, name)`` yields
    :class:`RawUtterance` and :class:`Reject` and never raises for bad content.
    """

    name: str
    takes: str
    parse: Callable[..., Iterator[RawUtterance | Reject]]
    #: file-name endings that select this format under ``--format auto``
    extensions: tuple[str, ...] = ()
    #: for ``.json`` files: does a parsed document have this format's structure?
    matches_json: Callable[[Any], bool] | None = None
    #: does a file's first line say this format? Checked for files ending in ``sniffed`` before
    #: their extension decides (KsponSpeech ``.txt``, KLUE-NER ``.tsv``)
    matches_first_line: Callable[[str], bool] | None = None
    sniffed: tuple[str, ...] = (".txt",)

    def __post_init__(self) -> None:
        if self.takes not in ("lines", "json", "bytes"):
            raise ValueError(f"Format {self.name!r}: takes must be lines, json or bytes, found {self.takes!r}")


REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format to the registry (once per name)."""
    if fmt.name in REGISTRY or fmt.name in ("auto", "json"):
        raise ValueError(f"format {fmt.name!r} is registered twice (or is a reserved name)")
    REGISTRY[fmt.name] = fmt
    return fmt


def format_names() -> tuple[str, ...]:
    """``auto`` and every registered format, in registration order."""
    return ("auto", *REGISTRY)


#: ``--text-column``'s default candidates, in order: the names public Korean sets give their text
#: (NSMC ``document``, BEEP! ``comments``, KLUE ``sentence``, …)
DEFAULT_TEXT_COLUMNS = "text,document,sentence,comments,comment,content,review,utterance"


@dataclass(frozen=True, kw_only=True)
class ReaderOptions:
    """How to read files: the format and, for tabular formats, which columns mean what."""

    format: str = option("auto", help="input format; auto: by extension, .json by structure", choices=format_names)
    text_column: str = option(DEFAULT_TEXT_COLUMNS, help="jsonl/csv/tsv/parquet/xlsx: the text field; several "
                              "comma-separated candidates are tried in order, the first present wins (the default "
                              "holds the names public Korean sets use: NSMC's document, BEEP!'s comments, …)")
    label_column: str | None = option("label", help="jsonl/csv/tsv/parquet/xlsx: the label field, used when present")
    id_column: str | None = option("id", help="jsonl/csv/tsv/parquet: a record id field (kept in meta), used when present")
    doc_id_column: str | None = option(None, help="field grouping rows into documents/dialogues (they share a split)")
    corpus_name: str | None = option(None, help="value of the corpus column (default: the format)")
    split_column: str | None = option(None, help="a field holding each row's split (train, valid, test; dev, val "
                                      "and validation mean valid): used instead of the hash split")
    delimiter: str | None = option(None, help="csv/tsv: the field delimiter (default: , for csv, a tab for tsv); "
                                   "e.g. --format csv --delimiter '|'")
    header: bool = option(True, help="csv/tsv: the first row names the columns; with --no-header every row is data "
                          "and the columns are named 1, 2, … (e.g. --no-header --text-column 2 --label-column 1)")

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The candidate text fields, in order."""
        return tuple(c.strip() for c in self.text_column.split(",") if c.strip())

    def pick_text_column(self, names) -> str | None:
        """The first candidate text field among ``names`` (None when none is there)."""
        present = set(names)
        return next((c for c in self.text_columns if c in present), None)

    def log_text_column(self, names, source: str) -> None:
        """Say which field a file's text comes from when it is not the first candidate."""
        column = self.pick_text_column(names)
        if column is not None and column != self.text_columns[0]:
            LOG.warning("%s: the text is read from the %r column (no %r column; --text-column NAME chooses)",
                        source, column, self.text_columns[0])

    def __post_init__(self) -> None:
        if self.format not in format_names():
            raise ValueError(f"--format: expected one of {', '.join(format_names())}; found {self.format!r}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"--delimiter: expected one character, found {self.delimiter!r}")


# --------------------------------------------------------------------------- encodings


_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v") + b"\x7f"


def _looks_binary(head: bytes) -> bool:
    """NUL bytes beyond one in a hundred, or control bytes beyond one in ten: not text. A stray NUL
    in a text file is a damaged line, not a binary file."""
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return head.count(b"\x00") > max(1, len(head) // 100) or controls > max(1, len(head) // 10)


def sniff_encoding(head: bytes) -> str | None:
    """The encoding of a file from its first bytes: utf-8-sig, utf-16, utf-8 or cp949; None if binary.

    CP949 is a superset of EUC-KR, so both decode with it.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _looks_binary(head):
        return None
    for encoding in ("utf-8", "cp949"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    # A few broken lines in an otherwise clean file: pick the encoding most lines decode in,
    # and let the line readers reject the broken ones individually.
    lines = [line for line in head.split(b"\n")[:-1] if line.strip()] or [head]
    for encoding in ("utf-8", "cp949"):
        decoded = 0
        for line in lines:
            try:
                line.decode(encoding)
                decoded += 1
            except UnicodeDecodeError:
                pass
        if decoded >= 0.9 * len(lines) and decoded >= 2:
            return encoding
    return None


def excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:_MAX_EXCERPT]


_NEWLINE_RE = re.compile(b"\r\n|\r|\n")


def byte_lines(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """Lines (without the line break: LF, CRLF or CR alone) of ``head`` then the rest of ``stream``, streamed."""
    pending = head
    while True:
        chunk = stream.read(1 << 20)
        if chunk and pending.endswith(b"\r"):  # a CRLF may straddle the chunks
            pending, chunk = pending + chunk[:1], chunk[1:]
        *complete, pending = _NEWLINE_RE.split(pending)
        yield from complete
        if not chunk:
            break
        pending += chunk
    if pending:
        yield pending


def text_lines(text: str) -> list[str]:
    """A decoded text's lines at LF, CRLF or CR only (``str.splitlines`` also breaks at U+2028 and others)."""
    lines = re.split("\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def decoded_lines(raw_lines: Iterable[bytes], encoding: str, source: str) -> Iterator[tuple[int, str, Reject | None]]:
    """(line number, text, reject) triples; a line that does not decode becomes a reject.

    The encoding was guessed from the file's first 64 KB: a file sniffed as UTF-8 whose lines so
    far were all ASCII switches to CP949 at the first line that only CP949 decodes (a CP949 file
    with an English head), instead of rejecting its Korean lines.
    """
    ascii_only = encoding == "utf-8"
    for number, raw in enumerate(raw_lines, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as error:
            if ascii_only and _decodes(raw, "cp949"):
                encoding, ascii_only = "cp949", False
                line = raw.decode(encoding)
            else:
                yield number, "", Reject("undecodable_line", source, f"line {number}",
                                         f"invalid {encoding} at byte {error.start} of the line",
                                         excerpt(raw[:80]))
                continue
        if ascii_only and not raw.isascii():
            ascii_only = False
        if number == 1:
            line = line.lstrip("\ufeff")
        yield number, line, None


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def line_parser(parse: Callable[..., Iterator[RawUtterance | Reject]]) -> Callable[..., Iterator[RawUtterance | Reject]]:
    """A line format's parser that sees only the non-blank decoded lines as ``(number, text)``;
    undecodable lines come out as their rejects, none lost (each before the next output)."""

    def parse_lines(lines: Iterable[Line], source: str, options: ReaderOptions, fmt: str):
        rejects: list[Reject] = []

        def content() -> Iterator[tuple[int, str]]:
            for number, line, reject in lines:
                if reject is not None:
                    rejects.append(reject)
                elif line.strip():
                    yield number, line

        for item in parse(content(), source, options, fmt):
            yield from rejects
            rejects.clear()
            yield item
        yield from rejects

    parse_lines.__doc__ = parse.__doc__
    return parse_lines


def corpus_of(options: ReaderOptions, fmt: str) -> str:
    return options.corpus_name or fmt


def as_text(value: Any) -> str | None:
    """A text field as str: numbers are stringified, containers and None are not text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return None


def meta_value(value: Any) -> str:
    """A metadata value as text: strings as they are, anything else as JSON (dates, decimals and
    other non-JSON values by their ``str``, bytes as hex)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (datetime.date, datetime.time, decimal.Decimal)):  # datetime is a date too
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class DocTurns:
    """Assigns 0-based turns per document id within one file."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def __call__(self, doc_id: str) -> int:
        turn = self._next.get(doc_id, 0)
        self._next[doc_id] = turn + 1
        return turn


SPLIT_NAMES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "dev": "valid",
               "val": "valid", "test": "test", "testing": "test"}


def split_value(value: Any) -> str | None:
    """A row's own split name as malmoi's (train / valid / test), None when it is not one of them."""
    return SPLIT_NAMES.get((as_text(value) or "").strip().lower())


def record_from_fields(fields: dict[str, Any], source: str, position: str, options: ReaderOptions,
                        fmt: str, turns: DocTurns) -> RawUtterance | Reject:
    """A tabular record (jsonl object, csv row, parquet row) as an utterance or a reject."""
    column = options.pick_text_column(fields)
    if column is None:
        return Reject("missing_field", source, position,
                      f"no {' / '.join(repr(c) for c in options.text_columns)} field; found {sorted(fields)[:20]}. "
                      "Fix: pass --text-column NAME (or several, comma-separated).", excerpt(fields))
    text = as_text(fields[column])
    if text is None:
        return Reject("bad_text_type", source, position,
                      f"field '{column}' should be a string, found {type(fields[column]).__name__}",
                      excerpt(fields[column]))
    split = None
    if options.split_column:
        split = split_value(fields.get(options.split_column))
        if split is None:
            return Reject("bad_split", source, position,
                          f"--split-column {options.split_column!r}: expected train, valid or test (or dev, val, "
                          f"validation), found {fields.get(options.split_column)!r}",
                          excerpt(fields))
    label = None
    if options.label_column:
        raw_label = fields.get(options.label_column)
        label = None if raw_label in (None, "") else meta_value(raw_label)
    record_id = as_text(fields.get(options.id_column)) if options.id_column else None
    if options.doc_id_column and as_text(fields.get(options.doc_id_column)):
        doc_id = as_text(fields[options.doc_id_column]) or ""
    else:
        doc_id = record_id or f"{source}:{position}"
    used = {column, options.label_column, options.doc_id_column, options.split_column}
    meta = {k: meta_value(v) for k, v in fields.items() if k not in used and v is not None}
    if record_id is not None:
        meta["record_id"] = record_id
    entities = None
    if "entities" in fields and fields["entities"] is not None:
        entities, problem = entity_spans(fields["entities"], text)
        if problem:
            return Reject("bad_entities", source, position, problem, excerpt(fields["entities"]))
        meta.pop("entities", None)
    return RawUtterance(corpus_of(options, fmt), source, position, doc_id, turns(doc_id), text, None, label, meta,
                        split=split, entities=entities)


def entity_spans(value: Any, text: str) -> tuple[tuple[tuple[int, int, str], ...] | None, str | None]:
    """``[{"start", "end", "label"}, …]`` as sorted, checked spans; or the problem, in words."""
    if not isinstance(value, list):
        return None, f"'entities' should be a list of {{start, end, label}}, found {type(value).__name__}"
    spans = []
    for item in value:
        if not isinstance(item, dict) or not {"start", "end", "label"} <= set(item):
            return None, f"an entity should have start, end and label; found {str(item)[:80]}"
        start, end, label = item["start"], item["end"], item["label"]
        if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str) and label
                and 0 <= start < end <= len(text)):
            return None, (f"entity {str(item)[:80]}: expected 0 <= start < end <= {len(text)} (character offsets "
                          "into the text, end exclusive) and a label")
        spans.append((start, end, label))
    spans.sort()
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        if start < end:
            return None, f"entities overlap ({spans}); expected non-overlapping spans"
    return tuple(spans), None


