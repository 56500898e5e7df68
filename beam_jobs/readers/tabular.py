"""Tabular formats: JSON lines, CSV, TSV, Parquet and a JSON list of records, one record per line or row.

CSV follows RFC 4180: a field may be quoted, and a quoted field may hold the delimiter, quotes
(doubled) and newlines. TSV has no quoting: a quote is a character of the text (NSMC's reviews
quote freely — ``딱 한마디 " 아! 나도 사랑 받고 싶다"`` — and read with CSV quoting one open quote
swallowed up to 20 reviews), each line is one row, and only a field wholly wrapped in quotes that
holds doubled quotes inside (``"그냥 ""최고"" 영화"``: what a CSV writer makes of a field with quotes)
is unwrapped. ``--format csv --delimiter $'\t'`` reads a tab-separated file with CSV quoting.

``--text-column`` (text), ``--label-column`` (label), ``--id-column`` (id, kept in meta) and
``--doc-id-column`` (document grouping) name the fields; line formats are streamed.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterator

from beam_jobs.readers.base import (
    DocTurns,
    FileReject,
    Format,
    RawUtterance,
    ReaderOptions,
    Reject,
    excerpt,
    line_parser,
    record_from_fields,
    register,
)


@line_parser
def _parse_jsonl(lines, source, options, fmt):
    turns = DocTurns()
    for number, line in lines:
        position = f"line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            yield Reject("malformed_json", source, position, f"invalid JSON: {error.msg}", excerpt(line))
            continue
        if not isinstance(obj, dict):
            yield Reject("malformed_record", source, position,
                         f"expected a JSON object per line, found {type(obj).__name__}", excerpt(line))
            continue
        yield record_from_fields(obj, source, position, options, fmt, turns)


#: a field wholly wrapped in quotes with every inner quote doubled (each step has one choice: linear)
_WRAPPED_RE = re.compile(r'"((?:[^"]|"")*)"')


def unwrap_tsv_field(field: str) -> str:
    """A TSV field as text: ``"a ""b"" c"`` (a CSV writer's quoting: wrapped, with doubled quotes
    inside) becomes ``a "b" c``; any other field, quotes included, is the text as written."""
    match = _WRAPPED_RE.fullmatch(field)
    return match.group(1).replace('""', '"') if match and '""' in match.group(1) else field


def _parse_delimited(lines, source, options, fmt):
    delimiter = options.delimiter or ("," if fmt == "csv" else "\t")
    quoted = fmt == "csv"  # TSV: quotes are text (module docstring)
    pending_rejects: list[Reject] = []

    def text_lines() -> Iterator[str]:
        for _number, line, reject in lines:
            if reject is not None:
                pending_rejects.append(reject)
                continue
            yield line + "\n"

    # CSV, strict: a quote left open makes an error at the end of the file (a reject that says how
    # many lines it swallowed) instead of one merged row; TSV reads quotes as text
    reader = csv.reader(text_lines(), delimiter=delimiter, strict=True,
                        quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)

    def cells(raw: list[str]) -> list[str]:
        return raw if quoted else [unwrap_tsv_field(field) for field in raw]

    turns = DocTurns()
    try:
        raw_first = next(reader)
    except StopIteration:
        yield from pending_rejects
        yield FileReject("empty_file", source, "", "no header row" if options.header else "no rows")
        return
    except csv.Error as error:
        yield FileReject("malformed_csv", source, "line 1",
                         f"cannot read the {'header' if options.header else 'first row'}: {error}")
        return
    # --no-header: the first row is data, and the columns are named by position (1-based)
    first = cells(raw_first)
    header = first if options.header else [str(i) for i in range(1, len(first) + 1)]
    rows = reader if options.header else itertools.chain([raw_first], reader)
    if options.pick_text_column(header) is None:
        yield from pending_rejects
        hint = " (one column: is the delimiter right? pass --delimiter)" if len(header) == 1 else ""
        what = "the header has" if options.header else "without a header (--no-header) the columns are"
        fix = "" if options.header else " (a column number), or drop --no-header when the first row names the columns"
        yield FileReject("missing_column", source, "line 1",
                         f"no {' / '.join(repr(c) for c in options.text_columns)} column; {what} "
                         f"{header[:20]}{hint}. Fix: pass --text-column NAME{fix} (and --label-column / "
                         "--id-column).", excerpt(first))
        return
    options.log_text_column(header, source)
    last_line = 0 if not options.header else reader.line_num
    while True:
        try:
            row = cells(next(rows))
        except StopIteration:
            break
        except csv.Error as error:
            span = f"lines {last_line + 1}-{reader.line_num}" if reader.line_num > last_line + 1 else f"line {reader.line_num}"
            yield Reject("malformed_csv", source, span,
                         f"unreadable row ({error}); {reader.line_num - last_line} line(s) not read as rows. "
                         "Fix: close the quote or escape it as \"\".")
            last_line = reader.line_num
            continue
        last_line = reader.line_num
        yield from pending_rejects
        pending_rejects.clear()
        if not row or all(not cell.strip() for cell in row):
            continue
        position = f"line {reader.line_num}"
        if len(row) != len(header):
            yield Reject("malformed_row", source, position,
                         f"expected {len(header)} fields ({'header' if options.header else 'first row'}), "
                         f"found {len(row)}", excerpt(delimiter.join(row)))
            continue
        yield record_from_fields(dict(zip(header, row, strict=True)), source, position, options, fmt, turns)
    yield from pending_rejects


def _parse_parquet(data: bytes, source: str, options: ReaderOptions, fmt: str = "parquet") -> Iterator[RawUtterance | Reject]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
    except Exception as error:  # pyarrow raises several types for corrupt files
        yield FileReject("malformed_parquet", source, "", f"not a readable Parquet file: {error}")
        return
    if options.pick_text_column(parquet.schema_arrow.names) is None:
        yield FileReject("missing_column", source, "",
                     f"no {' / '.join(repr(c) for c in options.text_columns)} column; found "
                     f"{parquet.schema_arrow.names[:20]}. Fix: pass --text-column NAME.")
        return
    options.log_text_column(parquet.schema_arrow.names, source)
    turns = DocTurns()
    row = 0
    for batch in parquet.iter_batches(batch_size=8192):
        for fields in batch.to_pylist():
            yield record_from_fields(fields, source, f"row {row}", options, fmt, turns)
            row += 1




def _is_record_list(obj) -> bool:
    """A ``.json`` document that is a list of records (``[{"text": …, "label": …}, …]``: pandas'
    ``to_json(orient="records")``, most labeling tools' exports). Checked after every corpus format."""
    return isinstance(obj, list) and bool(obj) and isinstance(obj[0], dict)


def _parse_json_records(obj, source, options, fmt):
    if not any(options.pick_text_column(record) for record in obj if isinstance(record, dict)):
        keys = sorted({key for record in obj[:1000] if isinstance(record, dict) for key in record})
        yield FileReject("missing_column", source, "",
                         f"no record has a {' / '.join(repr(c) for c in options.text_columns)} field; the records "
                         f"have {keys[:20]}. Fix: pass --text-column NAME (and --label-column / --id-column).",
                         excerpt(keys))
        return
    turns = DocTurns()
    for index, record in enumerate(obj):
        position = f"[{index}]"
        if not isinstance(record, dict):
            yield Reject("malformed_record", source, position,
                         f"expected a JSON object in the list, found {type(record).__name__}", excerpt(record))
            continue
        yield record_from_fields(record, source, position, options, fmt, turns)


register(Format("jsonl", "lines", _parse_jsonl, extensions=(".jsonl", ".ndjson")))
register(Format("csv", "lines", _parse_delimited, extensions=(".csv",)))
register(Format("tsv", "lines", _parse_delimited, extensions=(".tsv",)))
register(Format("parquet", "bytes", _parse_parquet, extensions=(".parquet",)))
register(Format("json-records", "json", _parse_json_records, matches_json=_is_record_list))
