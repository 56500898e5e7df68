"""Plain text: one utterance per line, each line its own document.

A line that starts with short tab-separated codes (``0\\t그냥 빌`` in 3i4K's ``fci_*.txt``,
``12\\t3\\t…`` in paraKQC) is a headerless table, not one sentence: the codes go to ``meta`` as
``field_1``, ``field_2``, … and the text is what follows the last tab, so a label never becomes
part of the text. Read such a file with ``--format tsv --no-header --text-column 2 --label-column 1``
to get its labels.
"""

from __future__ import annotations

import re

from beam_jobs.readers.base import LOG, Format, RawUtterance, corpus_of, line_parser, register

#: one or more leading fields of up to 16 ASCII letters, digits or ``_.:-``, each ended by a tab
#: (the field class holds no tab, so every split is unique and the match stays linear)
_LEADING_CODES_RE = re.compile(r"((?:[0-9A-Za-z_.:\-]{1,16}\t)+)(.*)", re.DOTALL)
_CODE_RE = re.compile(r"[0-9A-Za-z_.:\-]{1,16}")


def split_leading_codes(line: str) -> tuple[list[str], str]:
    """``(codes, text)``: the short tab-separated codes a line starts with, and the rest. No codes
    when the rest would be empty or itself a code (a line of codes only is text)."""
    match = _LEADING_CODES_RE.fullmatch(line)
    if match is None:
        return [], line
    rest = match.group(2)
    if not rest.strip() or _CODE_RE.fullmatch(rest.strip()):
        return [], line
    return match.group(1).split("\t")[:-1], rest


@line_parser
def _parse_txt(lines, source, options, fmt):
    told = False
    for number, line in lines:
        position = f"line {number}"
        codes, text = split_leading_codes(line)
        if codes and not told:
            told = True
            LOG.warning("%s %s: leading tab-separated fields %s kept in meta (field_1, …), the text is what "
                        "follows the last tab; for labels read it with --format tsv --no-header --text-column %d "
                        "--label-column 1", source, position, codes, len(codes) + 1)
        meta = {f"field_{i}": code for i, code in enumerate(codes, 1)}
        # Lines of a plain text file are independent utterances: each is its own document.
        yield RawUtterance(corpus_of(options, fmt), source, position, f"{source}:{position}", 0, text, None, None, meta)


register(Format("txt", "lines", _parse_txt, extensions=(".txt",)))
