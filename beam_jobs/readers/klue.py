"""KLUE-NER: named entities, one character per line.

    ## klue-ner-v1_dev_00000-wikitree\t<경찰:OG>은 또 …      (a sentence: its id, then its markup)
    경\tB-OG
    찰\tI-OG
    은\tO
    …                                                        (a blank line ends the sentence)

The text is the characters in order (spaces included); entities come from the BIO tags as
character spans. The file's own ``## …`` comment lines come first. Each sentence is its own
document (its id, kept in meta as ``guid``, says where it is from: ``-wikitree`` news, ``-nsmc``
movie reviews); ``--format auto`` recognizes a ``.tsv`` by that comment header.
"""

from __future__ import annotations

from beam_jobs.readers.base import Format, RawUtterance, Reject, corpus_of, excerpt, line_parser, register


def _looks_like_klue_ner(first_line: str) -> bool:
    return first_line.startswith("## ") and ("레이블" in first_line or "klue-ner" in first_line)


def _sentence(guid: str, start_line: int, chars: list[tuple[int, str, str]], source: str, options, fmt: str):
    text = "".join(ch for _, ch, _ in chars)
    spans: list[list] = []
    for offset, (number, _ch, tag) in enumerate(chars):
        if tag == "O":
            continue
        kind, _, label = tag.partition("-")
        if kind not in ("B", "I") or not label:
            return Reject("malformed_tag", source, f"line {number}", f"tag {tag!r}: expected O, B-TYPE or I-TYPE",
                          excerpt(tag))
        if kind == "I" and spans and spans[-1][1] == offset and spans[-1][2] == label:
            spans[-1][1] = offset + 1
        else:  # B, or an I that continues nothing (read as a start)
            spans.append([offset, offset + 1, label])
    entities = tuple((s, e, label) for s, e, label in spans)
    position = f"line {start_line}"
    return RawUtterance(corpus_of(options, fmt), source, position, guid, 0, text, None, None, {"guid": guid},
                        entities=entities)


@line_parser
def _parse_klue_ner(lines, source, options, fmt):
    guid, start_line, chars = None, 0, []
    for number, line in lines:
        if line.startswith("## "):
            head, tab, rest = line[3:].partition("\t")
            if tab and head and " " not in head and rest.strip():  # a sentence header, not a comment
                if guid is not None and chars:
                    yield _sentence(guid, start_line, chars, source, options, fmt)
                guid, start_line, chars = head, number, []
            continue
        if guid is None:
            continue
        char, tab, tag = line.rpartition("\t")
        if not tab or len(char) != 1:
            yield Reject("malformed_line", source, f"line {number}",
                         "expected one character, a tab and its BIO tag", excerpt(line))
            continue
        chars.append((number, char, tag.strip()))
    if guid is not None and chars:
        yield _sentence(guid, start_line, chars, source, options, fmt)


register(Format("klue-ner", "lines", _parse_klue_ner, matches_first_line=_looks_like_klue_ner, sniffed=(".tsv",)))
