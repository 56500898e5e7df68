"""Corpus readers: one parser per format, each yielding the same :class:`RawUtterance`.

Pure Python (no Beam): ``parse_file(stream, source, options)`` takes a binary stream and
yields utterances and :class:`Reject` records. Nothing raises for bad input: an undecodable
or malformed file, or a malformed record, becomes a ``Reject`` with a reason, its source and
position, and a human-readable detail.

Line formats (jsonl, csv, tsv, txt, kspon) are streamed, so memory stays flat however large
a file is; JSON and xlsx formats need the whole document and read it at once.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

LOG = logging.getLogger(__name__)

FORMATS = (
    "auto", "nikl", "aihub-emotion", "aihub-summary", "aihub-sns", "aihub-dialogue",
    "kspon", "jsonl", "csv", "tsv", "txt", "parquet",
)
_SNIFF_BYTES = 1 << 16
_MAX_EXCERPT = 200


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


class Reject(NamedTuple):
    """Something that did not make it, with why and where."""

    reason: str
    source: str
    position: str
    detail: str
    excerpt: str = ""
    #: "file" when the whole file is lost (undecodable, unknown format, malformed JSON
    #: document, missing column); "record" for one utterance or line.
    level: str = "record"

    def as_dict(self) -> dict[str, str]:
        return self._asdict()


def FileReject(reason: str, source: str, position: str, detail: str, excerpt: str = "") -> Reject:  # noqa: N802
    """A reject for a whole file."""
    return Reject(reason, source, position, detail, excerpt, "file")


@dataclass(frozen=True)
class ReaderOptions:
    """How to read files: the format and, for tabular formats, which columns mean what."""

    format: str = "auto"
    text_column: str = "text"
    label_column: str | None = "label"
    id_column: str | None = "id"
    doc_id_column: str | None = None
    corpus_name: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"--format: expected one of {', '.join(FORMATS)}; found {self.format!r}")


# --------------------------------------------------------------------------- encodings


def sniff_encoding(head: bytes) -> str | None:
    """The encoding of a file from its first bytes: utf-8-sig, utf-16, utf-8 or cp949; None if binary.

    CP949 is a superset of EUC-KR, so both decode with it.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
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


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:_MAX_EXCERPT]


def _byte_lines(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """Lines (without the newline) of ``head`` followed by the rest of ``stream``, streamed."""
    pending = head
    while True:
        *complete, pending = pending.split(b"\n")
        yield from complete
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        pending += chunk
    if pending:
        yield pending


# --------------------------------------------------------------------------- detection


def detect_format(source: str, head: bytes) -> str | None:
    """Pick a format from the extension and first bytes when that is unambiguous; None otherwise.

    ``.json`` is resolved later from the parsed structure (``"json"`` here).
    """
    name = source.lower()
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv"), (".tsv", "tsv"),
                        (".parquet", "parquet"), (".xlsx", "aihub-dialogue"), (".trn", "kspon"),
                        (".json", "json")):
        if name.endswith(suffix):
            return fmt
    if name.endswith(".txt"):
        encoding = sniff_encoding(head)
        if encoding and encoding != "utf-16":
            first = head.decode(encoding, errors="ignore").lstrip("\ufeff").split("\n", 1)[0]
            if _KSPON_LINE_RE.match(first) or re.search(r"(^|\s)[blonu]/(\s|$)|\)/\(", first):
                return "kspon"
        return "txt"
    return None


def detect_json_format(obj: Any) -> str | None:
    """Which JSON corpus a parsed document is, from its structure."""
    if isinstance(obj, dict) and isinstance(obj.get("document"), list):
        return "nikl"
    if isinstance(obj, list) and obj and isinstance(obj[0], dict) and "talk" in obj[0] and "profile" in obj[0]:
        return "aihub-emotion"
    if isinstance(obj, dict) and isinstance(obj.get("data"), list) and obj["data"]:
        first = obj["data"][0]
        if isinstance(first, dict) and "header" in first and "body" in first:
            body = first["body"]
            if isinstance(body, dict) and "dialogue" in body:
                return "aihub-summary"
            if isinstance(body, list):
                return "aihub-sns"
    return None


# --------------------------------------------------------------------------- entry point


def parse_file(stream: BinaryIO, source: str, options: ReaderOptions) -> Iterator[RawUtterance | Reject]:
    """Parse one file. Yields utterances and rejects; never raises for bad content."""
    head = stream.read(_SNIFF_BYTES)
    if not head:
        yield FileReject("empty_file", source, "", "the file is empty")
        return
    fmt = options.format
    if fmt == "auto":
        fmt = detect_format(source, head)
        if fmt is None:
            yield FileReject(
                "unknown_format", source, "",
                "cannot tell the format from the extension; expected .json, .jsonl, .csv, .tsv, .txt, "
                ".trn, .parquet or .xlsx. Fix: rename the file or pass --format NAME.",
            )
            return
        if fmt != "json":
            LOG.info("auto format: %s read as %s (by extension)", source, fmt)
    if fmt in ("parquet", "aihub-dialogue"):
        yield from (_parse_parquet if fmt == "parquet" else _parse_xlsx)(head + stream.read(), source, options)
        return
    encoding = sniff_encoding(head)
    if encoding is None:
        yield FileReject("undecodable_file", source, "",
                     "not text in UTF-8 (with or without BOM), UTF-16 with BOM, or CP949/EUC-KR; "
                     "binary content? Fix: convert it to UTF-8 or remove it from the input.",
                     _excerpt(head[:40]))
        return
    if fmt in ("jsonl", "csv", "tsv", "txt", "kspon") and encoding != "utf-16":
        lines = _decoded_lines(_byte_lines(head, stream), encoding, source)
        parser = {"jsonl": _parse_jsonl, "csv": _parse_delimited, "tsv": _parse_delimited,
                  "txt": _parse_txt, "kspon": _parse_kspon}[fmt]
        yield from parser(lines, source, options, fmt)
        return
    data = head + stream.read()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        yield FileReject("undecodable_file", source, f"byte {error.start}",
                     f"invalid {encoding} at byte {error.start}. Fix: convert the file to UTF-8.")
        return
    if fmt in ("jsonl", "csv", "tsv", "txt", "kspon"):  # utf-16 line formats
        lines = ((number, line, None) for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1))
        parser = {"jsonl": _parse_jsonl, "csv": _parse_delimited, "tsv": _parse_delimited,
                  "txt": _parse_txt, "kspon": _parse_kspon}[fmt]
        yield from parser(lines, source, options, fmt)
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:
        yield FileReject("malformed_json", source, f"line {error.lineno} column {error.colno}",
                     f"invalid JSON: {error.msg}. Fix: repair or remove the file.",
                     _excerpt(text[max(0, error.pos - 40): error.pos + 40]))
        return
    if fmt == "json":
        fmt = detect_json_format(obj)
        if fmt is None:
            yield FileReject("unknown_format", source, "",
                         "JSON whose structure matches no known corpus (NIKL document[], AI Hub emotion "
                         "list of {profile, talk}, AI Hub data[] of {header, body}). Fix: pass --format, "
                         "or convert it to JSONL with a text field.")
            return
        LOG.info("auto format: %s read as %s (by JSON structure)", source, fmt)
    parser = {"nikl": _parse_nikl, "aihub-emotion": _parse_aihub_emotion,
              "aihub-summary": _parse_aihub_dialogues, "aihub-sns": _parse_aihub_dialogues}.get(fmt)
    if parser is None:
        yield FileReject("unknown_format", source, "", f"format {fmt!r} is not a JSON format. Fix: check --format.")
        return
    yield from parser(obj, source, options, fmt)


def _decoded_lines(raw_lines: Iterable[bytes], encoding: str, source: str) -> Iterator[tuple[int, str, Reject | None]]:
    """(line number, text, reject) triples; a line that does not decode becomes a reject."""
    for number, raw in enumerate(raw_lines, start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as error:
            yield number, "", Reject("undecodable_line", source, f"line {number}",
                                     f"invalid {encoding} at byte {error.start} of the line",
                                     _excerpt(raw[:80]))
            continue
        if number == 1:
            line = line.lstrip("\ufeff")
        yield number, line, None


def _corpus(options: ReaderOptions, fmt: str) -> str:
    return options.corpus_name or fmt


def _as_text(value: Any) -> str | None:
    """A text field as str: numbers are stringified, containers and None are not text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _meta_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------- tabular and line formats


class _DocTurns:
    """Assigns 0-based turns per document id within one file."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def __call__(self, doc_id: str) -> int:
        turn = self._next.get(doc_id, 0)
        self._next[doc_id] = turn + 1
        return turn


def _record_from_fields(fields: dict[str, Any], source: str, position: str, options: ReaderOptions,
                        fmt: str, turns: _DocTurns) -> RawUtterance | Reject:
    """A tabular record (jsonl object, csv row, parquet row) as an utterance or a reject."""
    column = options.text_column
    if column not in fields:
        return Reject("missing_field", source, position,
                      f"no '{column}' field; found {sorted(fields)[:20]}. Fix: pass --text-column NAME.",
                      _excerpt(fields))
    text = _as_text(fields[column])
    if text is None:
        return Reject("bad_text_type", source, position,
                      f"field '{column}' should be a string, found {type(fields[column]).__name__}",
                      _excerpt(fields[column]))
    label = None
    if options.label_column:
        raw_label = fields.get(options.label_column)
        label = None if raw_label in (None, "") else _meta_value(raw_label)
    record_id = _as_text(fields.get(options.id_column)) if options.id_column else None
    if options.doc_id_column and _as_text(fields.get(options.doc_id_column)):
        doc_id = _as_text(fields[options.doc_id_column]) or ""
    else:
        doc_id = record_id or f"{source}:{position}"
    used = {column, options.label_column, options.doc_id_column}
    meta = {k: _meta_value(v) for k, v in fields.items() if k not in used and v is not None}
    if record_id is not None:
        meta["record_id"] = record_id
    return RawUtterance(_corpus(options, fmt), source, position, doc_id, turns(doc_id), text, None, label, meta)


def _parse_jsonl(lines, source, options, fmt):
    turns = _DocTurns()
    for number, line, reject in lines:
        if reject is not None:
            yield reject
            continue
        if not line.strip():
            continue
        position = f"line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            yield Reject("malformed_json", source, position, f"invalid JSON: {error.msg}", _excerpt(line))
            continue
        if not isinstance(obj, dict):
            yield Reject("malformed_record", source, position,
                         f"expected a JSON object per line, found {type(obj).__name__}", _excerpt(line))
            continue
        yield _record_from_fields(obj, source, position, options, fmt, turns)


def _parse_delimited(lines, source, options, fmt):
    delimiter = "," if fmt == "csv" else "\t"
    pending_rejects: list[Reject] = []

    def text_lines() -> Iterator[str]:
        for _number, line, reject in lines:
            if reject is not None:
                pending_rejects.append(reject)
                continue
            yield line + "\n"

    reader = csv.reader(text_lines(), delimiter=delimiter)
    turns = _DocTurns()
    try:
        header = next(reader)
    except StopIteration:
        yield from pending_rejects
        yield FileReject("empty_file", source, "", "no header row")
        return
    except csv.Error as error:
        yield FileReject("malformed_csv", source, "line 1", f"cannot read the header: {error}")
        return
    if options.text_column not in header:
        yield from pending_rejects
        yield FileReject("missing_column", source, "line 1",
                     f"no '{options.text_column}' column; the header has {header[:20]}. "
                     "Fix: pass --text-column NAME (and --label-column / --id-column).", _excerpt(header))
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            yield Reject("malformed_csv", source, f"line {reader.line_num}", f"unreadable row: {error}")
            continue
        yield from pending_rejects
        pending_rejects.clear()
        if not row or all(not cell.strip() for cell in row):
            continue
        position = f"line {reader.line_num}"
        if len(row) != len(header):
            yield Reject("malformed_row", source, position,
                         f"expected {len(header)} fields (header), found {len(row)}", _excerpt(delimiter.join(row)))
            continue
        yield _record_from_fields(dict(zip(header, row, strict=True)), source, position, options, fmt, turns)
    yield from pending_rejects


def _parse_txt(lines, source, options, fmt):
    for number, line, reject in lines:
        if reject is not None:
            yield reject
            continue
        if not line.strip():
            continue
        position = f"line {number}"
        # Lines of a plain text file are independent utterances: each is its own document.
        yield RawUtterance(_corpus(options, fmt), source, position, f"{source}:{position}", 0, line, None, None, {})


_KSPON_LINE_RE = re.compile(r"^\s*(\S+?)\s+::\s?(.*)$")


def _kspon_doc(utterance_id: str) -> str:
    """KsponSpeech has no dialogue ids; utterances of one recording folder stay in one split."""
    path = utterance_id.replace("\\", "/")
    return path.rsplit("/", 1)[0] if "/" in path else path.rsplit(".", 1)[0]


def _parse_kspon(lines, source, options, fmt):
    corpus = _corpus(options, fmt)
    single_file_lines: list[tuple[int, str]] = []
    for number, line, reject in lines:
        if reject is not None:
            yield reject
            continue
        if not line.strip():
            continue
        match = _KSPON_LINE_RE.match(line)
        if match is None:
            single_file_lines.append((number, line))
            continue
        utterance_id, transcript = match.group(1), match.group(2)
        yield RawUtterance(corpus, source, f"line {number}", _kspon_doc(utterance_id), 0, transcript, None, None,
                           {"utterance_id": utterance_id})
    # One-utterance-per-file transcripts (KsponSpeech_000001.txt): the file stem is the id.
    stem = source.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    folder = source.replace("\\", "/").rsplit("/", 1)[0] if "/" in source else stem
    for number, line in single_file_lines:
        yield RawUtterance(corpus, source, f"line {number}", folder, 0, line.strip(), None, None,
                           {"utterance_id": stem})


def _parse_parquet(data: bytes, source: str, options: ReaderOptions) -> Iterator[RawUtterance | Reject]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
    except Exception as error:  # pyarrow raises several types for corrupt files
        yield FileReject("malformed_parquet", source, "", f"not a readable Parquet file: {error}")
        return
    if options.text_column not in parquet.schema_arrow.names:
        yield FileReject("missing_column", source, "",
                     f"no '{options.text_column}' column; found {parquet.schema_arrow.names[:20]}. "
                     "Fix: pass --text-column NAME.")
        return
    turns = _DocTurns()
    row = 0
    for batch in parquet.iter_batches(batch_size=8192):
        for fields in batch.to_pylist():
            yield _record_from_fields(fields, source, f"row {row}", options, "parquet", turns)
            row += 1


_XLSX_COLUMNS = {
    "speaker": ("speaker", "발화자", "화자", "speakerid"),
    "text": ("sentence", "발화문", "문장", "발화", "text"),
    "doc": ("dialogueid", "dialogue_id", "대화id", "대화 id", "mainid"),
}


def _parse_xlsx(data: bytes, source: str, options: ReaderOptions) -> Iterator[RawUtterance | Reject]:
    """AI Hub 한국어 대화 workbooks: one utterance per row, header in the first row."""
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises zipfile/KeyError/ValueError for bad files
        yield FileReject("malformed_xlsx", source, "", f"not a readable xlsx workbook: {error}")
        return
    corpus = _corpus(options, "aihub-dialogue")
    for sheet in workbook.worksheets:
        rows = sheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            continue
        header = [str(cell).strip() if cell is not None else "" for cell in header_row]
        lowered = [h.lower() for h in header]

        def find(role: str, override: str | None = None, lowered=lowered) -> int | None:
            names = (override.lower(),) if override else _XLSX_COLUMNS[role]
            return next((i for i, h in enumerate(lowered) if h in names), None)

        text_index = find("text", options.text_column if options.text_column != "text" else None)
        if text_index is None:
            yield FileReject("missing_column", source, f"sheet {sheet.title}",
                         f"no sentence column (SENTENCE / 발화문); header is {header[:20]}. "
                         "Fix: pass --text-column NAME.")
            continue
        speaker_index = find("speaker")
        doc_index = find("doc", options.doc_id_column)
        turns = _DocTurns()
        for number, values in enumerate(rows, start=2):
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            position = f"sheet {sheet.title} row {number}"
            cells = list(values) + [None] * (len(header) - len(values))
            raw_text = cells[text_index]
            text = _as_text(raw_text) if raw_text is not None else ""
            if text is None:
                yield Reject("bad_text_type", source, position, "sentence cell is not text", _excerpt(raw_text))
                continue
            doc_value = cells[doc_index] if doc_index is not None else None
            doc_id = str(doc_value) if doc_value not in (None, "") else f"{source}:{position}"
            meta = {header[i] or f"column_{i}": _meta_value(v) for i, v in enumerate(cells)
                    if i not in (text_index, speaker_index) and v is not None and i < len(header)}
            speaker = cells[speaker_index] if speaker_index is not None else None
            label = None
            if options.label_column:
                label_index = find("text", options.label_column)
                label = _meta_value(cells[label_index]) if label_index is not None and cells[label_index] is not None else None
            yield RawUtterance(corpus, source, position, doc_id, turns(doc_id), text,
                               None if speaker is None else str(speaker), label, meta)
    workbook.close()


# --------------------------------------------------------------------------- JSON corpora


def _parse_nikl(obj, source, options, fmt):
    """NIKL 모두의 말뭉치 (일상 대화 SDRW, 구어 S*RW, 메신저 MDRW / 온라인 대화 MMRW)."""
    corpus = _corpus(options, fmt)
    documents = obj.get("document") if isinstance(obj, dict) else None
    if not isinstance(documents, list):
        yield FileReject("malformed_structure", source, "$", "expected an object with a 'document' list (NIKL JSON)")
        return
    for d_index, document in enumerate(documents):
        doc_position = f"document[{d_index}]"
        if not isinstance(document, dict) or not isinstance(document.get("utterance"), list):
            yield Reject("malformed_structure", source, doc_position, "expected a document with an 'utterance' list",
                         _excerpt(document))
            continue
        doc_id = str(document.get("id") or f"{source}:{doc_position}")
        metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
        speakers = {str(s.get("id")): s for s in metadata.get("speaker", []) or [] if isinstance(s, dict)}
        doc_meta = {}
        for key in ("topic", "title", "category"):
            if metadata.get(key):
                doc_meta[key] = _meta_value(metadata[key])
        setting = metadata.get("setting")
        if isinstance(setting, dict) and setting.get("relation"):
            doc_meta["relation"] = _meta_value(setting["relation"])
        for u_index, utterance in enumerate(document["utterance"]):
            position = f"{doc_position}.utterance[{u_index}]"
            if not isinstance(utterance, dict):
                yield Reject("malformed_record", source, position, "expected an utterance object", _excerpt(utterance))
                continue
            text = _as_text(utterance.get("form"))
            if text is None:
                text = _as_text(utterance.get("original_form"))
            if text is None:
                yield Reject("missing_field", source, position, "no 'form' or 'original_form' string",
                             _excerpt(utterance))
                continue
            meta = dict(doc_meta)
            if utterance.get("id"):
                meta["utterance_id"] = str(utterance["id"])
            original = utterance.get("original_form")
            if isinstance(original, str) and original != text:
                meta["original_form"] = original
            for key in ("start", "end", "time", "note"):
                if utterance.get(key) not in (None, ""):
                    meta[key] = _meta_value(utterance[key])
            speaker_id = utterance.get("speaker_id")
            speaker = str(speaker_id) if speaker_id not in (None, "") else None
            for key, value in (speakers.get(speaker or "", {}) or {}).items():
                if key != "id" and value not in (None, ""):
                    meta[f"speaker_{key}"] = _meta_value(value)
            yield RawUtterance(corpus, source, position, doc_id, u_index, text, speaker, None, meta)


_EMOTION_TURNS = ("HS01", "SS01", "HS02", "SS02", "HS03", "SS03", "HS04", "SS04")


def _parse_aihub_emotion(obj, source, options, fmt):
    """AI Hub 감성 대화 말뭉치: a list of {profile{persona, emotion}, talk{id, content}}."""
    corpus = _corpus(options, fmt)
    if not isinstance(obj, list):
        yield FileReject("malformed_structure", source, "$", "expected a JSON list of {profile, talk} objects")
        return
    for index, item in enumerate(obj):
        position = f"[{index}]"
        talk = item.get("talk") if isinstance(item, dict) else None
        content = talk.get("content") if isinstance(talk, dict) else None
        if not isinstance(content, dict):
            yield Reject("malformed_structure", source, position, "expected talk.content with HS01/SS01…",
                         _excerpt(item))
            continue
        talk_id = talk.get("id")
        if isinstance(talk_id, dict):
            doc_id = str(talk_id.get("talk-id") or talk_id.get("talk_id") or f"{source}:{position}")
        else:
            doc_id = str(talk_id or f"{source}:{position}")
        profile = item.get("profile") if isinstance(item.get("profile"), dict) else {}
        emotion = profile.get("emotion") if isinstance(profile.get("emotion"), dict) else {}
        label = str(emotion["type"]) if emotion.get("type") else None
        meta = {}
        if emotion.get("emotion-id"):
            meta["emotion_id"] = str(emotion["emotion-id"])
        if emotion.get("situation"):
            meta["situation"] = _meta_value(emotion["situation"])
        persona = profile.get("persona")
        if isinstance(persona, dict):
            for key, value in persona.items():
                meta[f"persona_{key}"] = _meta_value(value)
        turn = 0
        keys = [k for k in _EMOTION_TURNS if k in content] + sorted(k for k in content if k not in _EMOTION_TURNS)
        for key in keys:
            text = _as_text(content[key])
            if text is None:
                yield Reject("bad_text_type", source, f"{position}.talk.content.{key}", "turn is not a string",
                             _excerpt(content[key]))
                continue
            if not text.strip():  # unused turn slots are empty strings in this corpus
                continue
            speaker = "human" if key.startswith("HS") else "system" if key.startswith("SS") else key
            yield RawUtterance(corpus, source, f"{position}.talk.content.{key}", doc_id, turn, text, speaker, label,
                               dict(meta, slot=key))
            turn += 1


def _parse_aihub_dialogues(obj, source, options, fmt):
    """AI Hub 한국어 대화 요약 (body.dialogue[] + summary) and 한국어 SNS (body is the list)."""
    corpus = _corpus(options, fmt)
    items = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(items, list):
        yield FileReject("malformed_structure", source, "$", "expected an object with a 'data' list")
        return
    for index, item in enumerate(items):
        position = f"data[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("header"), dict):
            yield Reject("malformed_structure", source, position, "expected {header, body}", _excerpt(item))
            continue
        header = item["header"]
        info = header.get("dialogueInfo") if isinstance(header.get("dialogueInfo"), dict) else {}
        doc_id = str(info.get("dialogueID") or f"{source}:{position}")
        participants = {str(p.get("participantID")): p for p in header.get("participantsInfo", []) or []
                        if isinstance(p, dict)}
        body = item.get("body")
        summary = None
        if fmt == "aihub-summary":
            turns = body.get("dialogue") if isinstance(body, dict) else None
            summary = body.get("summary") if isinstance(body, dict) else None
            body_path = "body.dialogue"
        else:
            turns = body
            body_path = "body"
        if not isinstance(turns, list):
            yield Reject("malformed_structure", source, f"{position}.{body_path}", "expected a list of utterances",
                         _excerpt(body))
            continue
        doc_meta = {k: _meta_value(v) for k, v in info.items() if k != "dialogueID" and v not in (None, "")}
        if summary:
            doc_meta["summary"] = _meta_value(summary)
        for u_index, utterance in enumerate(turns):
            u_position = f"{position}.{body_path}[{u_index}]"
            if not isinstance(utterance, dict):
                yield Reject("malformed_record", source, u_position, "expected an utterance object",
                             _excerpt(utterance))
                continue
            text = _as_text(utterance.get("utterance"))
            if text is None:
                yield Reject("missing_field", source, u_position, "no 'utterance' string", _excerpt(utterance))
                continue
            meta = dict(doc_meta)
            for key in ("utteranceID", "turnID", "date", "time"):
                if utterance.get(key) not in (None, ""):
                    meta[key] = _meta_value(utterance[key])
            speaker = str(utterance["participantID"]) if utterance.get("participantID") else None
            for key, value in (participants.get(speaker or "", {}) or {}).items():
                if key != "participantID" and value not in (None, ""):
                    meta[f"speaker_{key}"] = _meta_value(value)
            yield RawUtterance(corpus, source, u_position, doc_id, u_index, text, speaker, None, meta)
