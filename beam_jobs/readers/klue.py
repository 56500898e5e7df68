"""KLUE's tab-separated sentence files: KLUE-NER (one character per line) and KLUE-DP (one word per line).

    ## klue-ner-v1_dev_00000-wikitree\t<경찰:OG>은 또 …      (a sentence: its id, then its markup)
    경\tB-OG
    찰\tI-OG
    은\tO
    …                                                        (a blank line ends the sentence)

    ## klue-dp-v1_dev_00000_wikitree\t'K팝스타3’ 유희열이 …  (a sentence: its id, then its text)
    1\t'K팝스타3’\t' K 팝스타 3 ’\tSS+SL+NNP+SN+SS\t2\tNP    (INDEX, WORD_FORM, LEMMA, POS, HEAD, DEPREL)
    …

Both files start with the same ``## …`` comment lines, so a sentence is read by the shape of its
own lines. KLUE-NER: the text is the characters in order (spaces included); entities come from the
BIO tags as character spans. KLUE-DP: the text is the header's sentence, as written (its word lines
are the annotators' analysis — 6 of the 2,000 dev sentences spell a word there differently, e.g.
``7.70%`` for ``7.7%``); the analyses are not kept, the utterances schema has no place for them.
Each sentence is its own document (its id, kept in meta as ``guid``, says where it is from:
``-wikitree`` news, ``-nsmc`` movie reviews), its corpus ``klue-ner`` or ``klue-dp`` by its lines;
``--format auto`` recognizes a ``.tsv`` by the comment header.
"""

from __future__ import annotations

from beam_jobs.readers.base import Format, RawUtterance, Reject, excerpt, line_parser, register


def _looks_like_klue(first_line: str) -> bool:
    return first_line.startswith("## ") and ("레이블" in first_line or "klue-" in first_line)


def _entities(chars: list[tuple[int, str, str]], source: str) -> tuple | Reject:
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
    return tuple((s, e, label) for s, e, label in spans)


def _sentence(guid: str, start_line: int, header: str, chars: list[tuple[int, str, str]], words: int,
              source: str, options) -> RawUtterance | Reject:
    position = f"line {start_line}"
    if chars and words:
        return Reject("malformed_sentence", source, position, "character lines (KLUE-NER) and word lines (KLUE-DP) "
                      "in one sentence; expected one kind", excerpt(guid))
    if not chars and not words:
        return Reject("malformed_sentence", source, position, "a sentence header with no character or word lines "
                      "after it", excerpt(header))
    if words:
        return RawUtterance(options.corpus_name or "klue-dp", source, position, guid, 0, header, None, None,
                            {"guid": guid})
    entities = _entities(chars, source)
    if isinstance(entities, Reject):
        return entities
    text = "".join(ch for _, ch, _ in chars)
    return RawUtterance(options.corpus_name or "klue-ner", source, position, guid, 0, text, None, None, {"guid": guid},
                        entities=entities)


@line_parser
def _parse_klue(lines, source, options, fmt):
    guid, start_line, header, chars, words = None, 0, "", [], 0
    for number, line in lines:
        if line.startswith("## "):
            head, tab, rest = line[3:].partition("\t")
            if tab and head and " " not in head and rest.strip():  # a sentence header, not a comment
                if guid is not None:
                    yield _sentence(guid, start_line, header, chars, words, source, options)
                guid, start_line, header, chars, words = head, number, rest, [], 0
            continue
        if guid is None:
            continue
        fields = line.split("\t")
        if len(fields) == 2 and len(fields[0]) == 1:  # KLUE-NER: a character and its BIO tag
            chars.append((number, fields[0], fields[1].strip()))
        elif len(fields) == 6 and fields[0].strip().isdigit() and fields[1]:  # KLUE-DP: one word and its analysis
            words += 1
        else:
            yield Reject("malformed_line", source, f"line {number}",
                         "expected one character, a tab and its BIO tag (KLUE-NER), or INDEX, WORD_FORM, LEMMA, POS, "
                         "HEAD and DEPREL separated by tabs (KLUE-DP)", excerpt(line))
    if guid is not None:
        yield _sentence(guid, start_line, header, chars, words, source, options)


register(Format("klue-ner", "lines", _parse_klue, matches_first_line=_looks_like_klue, sniffed=(".tsv",)))
register(Format("klue-dp", "lines", _parse_klue))
