"""Corpus readers: a registry of formats, one module per corpus family, one entry point.

``parse_file(stream, source, options)`` takes a binary stream and yields :class:`RawUtterance`
and :class:`Reject` records; nothing raises for bad content: an undecodable or malformed file,
or a malformed record, becomes a ``Reject`` with a reason, its source and position.

Adding a format is adding a module to this package that calls :func:`register` with a
:class:`Format` (every module here is imported below). Line formats are streamed, so memory
stays flat however large a file is; JSON and workbook formats read the whole document.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from typing import Any, BinaryIO

from beam_jobs.readers.base import (
    _SNIFF_BYTES,
    LOG,
    REGISTRY,
    FileReject,
    Format,
    RawUtterance,
    ReaderOptions,
    Reject,
    byte_lines,
    decoded_lines,
    excerpt,
    format_names,
    register,
    sniff_encoding,
    text_lines,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"):
    importlib.import_module(f"{__name__}.{_module}")

#: ``auto`` and every registered format (the ``--format`` choices)
FORMATS = format_names()

__all__ = ["FORMATS", "REGISTRY", "FileReject", "Format", "RawUtterance", "ReaderOptions", "Reject",
           "detect_format", "detect_json_format", "parse_file", "register", "sniff_encoding"]


def detect_format(source: str, head: bytes) -> str | None:
    """A format from the file name and first bytes when that is unambiguous; None otherwise.

    ``.json`` is resolved later from the parsed structure (``"json"`` here).
    """
    name = source.lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith(".tsv") and (claimed := _claimed_by_first_line(".tsv", head)):
        return claimed  # a line format may claim a .tsv by its first line (KLUE-NER's comment header)
    for fmt in REGISTRY.values():
        if not name.endswith(fmt.extensions):
            continue
        if fmt.takes == "lines" and name.endswith(".txt"):
            break  # plain text, unless a format claims its first line (below)
        return fmt.name
    if name.endswith(".txt"):
        return _claimed_by_first_line(".txt", head) or "txt"
    return None


def _claimed_by_first_line(suffix: str, head: bytes) -> str | None:
    """The format that sniffs ``suffix`` files and recognizes this first line, if any."""
    encoding = sniff_encoding(head)
    if not encoding or encoding == "utf-16":
        return None
    first = head.decode(encoding, errors="ignore").lstrip("\ufeff").split("\n", 1)[0]
    return next((fmt.name for fmt in REGISTRY.values() if suffix in fmt.sniffed and fmt.matches_first_line is not None
                 and fmt.matches_first_line(first)), None)


def detect_json_format(obj: Any) -> str | None:
    """Which JSON corpus a parsed document is, from its structure."""
    return next((f.name for f in REGISTRY.values() if f.matches_json is not None and f.matches_json(obj)), None)


def parse_file(stream: BinaryIO, source: str, options: ReaderOptions) -> Iterator[RawUtterance | Reject]:
    """Parse one file. Yields utterances and rejects; never raises for bad content.

    Whatever a parser raises on one file (a JSON document nested too deep, a value of a type
    nobody expected, a workbook that does not fit in memory) becomes that file's reject, with
    the error's class in the reason and the number of records read before it in the detail.
    """
    emitted = 0
    try:
        for item in _parse(stream, source, options):
            emitted += not isinstance(item, Reject)
            yield item
    except Exception as error:  # noqa: BLE001 - one bad file never fails the run
        after = f" after {emitted} records (those were kept)" if emitted else ""
        yield FileReject(f"parse_failed:{type(error).__name__}", source, "",
                         f"{type(error).__name__} while reading the file{after}: {str(error)[:300]}. "
                         "Fix: repair or convert the file, or report it if it is valid.")


def _parse(stream: BinaryIO, source: str, options: ReaderOptions) -> Iterator[RawUtterance | Reject]:
    head = stream.read(_SNIFF_BYTES)
    if not head:
        yield FileReject("empty_file", source, "", "the file is empty")
        return
    name = options.format
    if name == "auto":
        name = detect_format(source, head)
        if name is None:
            known = sorted({e for f in REGISTRY.values() for e in f.extensions} | {".json"})
            yield FileReject("unknown_format", source, "",
                             f"cannot tell the format from the extension; expected one of {', '.join(known)}. "
                             "Fix: rename the file or pass --format NAME.")
            return
        if name != "json":
            LOG.info("auto format: %s read as %s (by extension)", source, name)
    fmt = REGISTRY.get(name)
    if fmt is not None and fmt.takes == "bytes":
        yield from fmt.parse(head + stream.read(), source, options, name)
        return
    encoding = sniff_encoding(head)
    if encoding is None:
        yield FileReject("undecodable_file", source, "",
                         "not text in UTF-8 (with or without BOM), UTF-16 with BOM, or CP949/EUC-KR; "
                         "binary content? Fix: convert it to UTF-8 or remove it from the input.", excerpt(head[:40]))
        return
    if fmt is not None and fmt.takes == "lines" and encoding != "utf-16":
        yield from fmt.parse(decoded_lines(byte_lines(head, stream), encoding, source), source, options, name)
        return
    data = head + stream.read()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        yield FileReject("undecodable_file", source, f"byte {error.start}",
                         f"invalid {encoding} at byte {error.start}. Fix: convert the file to UTF-8.")
        return
    if fmt is not None and fmt.takes == "lines":  # utf-16 line formats
        lines = ((number, line, None) for number, line in enumerate(text_lines(text.lstrip("\ufeff")), 1))
        yield from fmt.parse(lines, source, options, name)
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:
        yield FileReject("malformed_json", source, f"line {error.lineno} column {error.colno}",
                         f"invalid JSON: {error.msg}. Fix: repair or remove the file.",
                         excerpt(text[max(0, error.pos - 40): error.pos + 40]))
        return
    if name == "json":
        name = detect_json_format(obj)
        if name is None:
            yield FileReject("unknown_format", source, "",
                             "JSON whose structure matches no known corpus (NIKL document[], AI Hub emotion "
                             "list of {profile, talk}, AI Hub data[] of {header, body}) and is not a list of "
                             "records ([{\"text\": …}, …]). Fix: pass --format, or convert it to JSONL with a "
                             "text field.")
            return
        LOG.info("auto format: %s read as %s (by JSON structure)", source, name)
        fmt = REGISTRY[name]
    if fmt is None or fmt.takes != "json":
        yield FileReject("unknown_format", source, "", f"format {name!r} is not a JSON format. Fix: check --format.")
        return
    yield from fmt.parse(obj, source, options, name)
