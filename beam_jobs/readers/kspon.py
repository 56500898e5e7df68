"""KsponSpeech transcripts: ``<id> :: <transcript>`` lines (``.trn``) or one-transcript ``.txt`` files.

Utterances of one recording folder form one document, so they stay in one split. A ``.txt``
file is read as KsponSpeech under ``--format auto`` when its first line carries KsponSpeech
marks (an ``id :: text`` line, a noise tag such as ``b/``, or a dual transcription ``)/(``).
"""

from __future__ import annotations

import re

from beam_jobs.readers.base import Format, RawUtterance, corpus_of, line_parser, register

_KSPON_LINE_RE = re.compile(r"^\s*(\S+?)\s+::\s?(.*)$")


def _kspon_doc(utterance_id: str) -> str:
    """KsponSpeech has no dialogue ids; utterances of one recording folder stay in one split."""
    path = utterance_id.replace("\\", "/")
    return path.rsplit("/", 1)[0] if "/" in path else path.rsplit(".", 1)[0]


@line_parser
def _parse_kspon(lines, source, options, fmt):
    corpus = corpus_of(options, fmt)
    single_file_lines: list[tuple[int, str]] = []
    for number, line in lines:
        match = _KSPON_LINE_RE.match(line)
        if match is None:
            single_file_lines.append((number, line))
            continue
        utterance_id, transcript = match.group(1), match.group(2)
        yield RawUtterance(corpus, source, f"line {number}", _kspon_doc(utterance_id), 0, transcript, None, None,
                           {"utterance_id": utterance_id}, markup="kspon")
    # One-utterance-per-file transcripts (KsponSpeech_000001.txt): the file stem is the id.
    stem = source.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    folder = source.replace("\\", "/").rsplit("/", 1)[0] if "/" in source else stem
    for number, line in single_file_lines:
        yield RawUtterance(corpus, source, f"line {number}", folder, 0, line.strip(), None, None,
                           {"utterance_id": stem}, markup="kspon")




#: a KsponSpeech utterance id (KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm)
_KSPON_ID_RE = re.compile(r"^\s*\S*(?:KsponSpeech|\.pcm|\.wav)\S*\s+::")


def _looks_like_kspon(first_line: str) -> bool:
    """A KsponSpeech id line, or a dual transcription with a noise tag; ``C++ :: …`` is not."""
    if _KSPON_ID_RE.match(first_line):
        return True
    return bool(re.search(r"\)/\(", first_line) and re.search(r"(^|\s)[blonu]/(\s|$)", first_line))


register(Format("kspon", "lines", _parse_kspon, extensions=(".trn",), matches_first_line=_looks_like_kspon))
