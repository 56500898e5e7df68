"""Plain text: one utterance per line, each line its own document."""

from __future__ import annotations

from beam_jobs.readers.base import Format, RawUtterance, corpus_of, line_parser, register


@line_parser
def _parse_txt(lines, source, options, fmt):
    for number, line in lines:
        position = f"line {number}"
        # Lines of a plain text file are independent utterances: each is its own document.
        yield RawUtterance(corpus_of(options, fmt), source, position, f"{source}:{position}", 0, line, None, None, {})



register(Format("txt", "lines", _parse_txt, extensions=(".txt",)))
