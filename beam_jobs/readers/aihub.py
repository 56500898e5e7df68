"""AI Hub corpora: 감성 대화 (JSON list), 한국어 대화 요약 and 한국어 SNS (``data[]`` of
{header, body}), and 한국어 대화 workbooks (xlsx, one utterance per row)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from beam_jobs.readers.base import (
    DEFAULT_TEXT_COLUMNS,
    DocTurns,
    FileReject,
    Format,
    RawUtterance,
    ReaderOptions,
    Reject,
    as_text,
    corpus_of,
    excerpt,
    meta_value,
    register,
)

_EMOTION_TURNS = ("HS01", "SS01", "HS02", "SS02", "HS03", "SS03", "HS04", "SS04")


def _parse_aihub_emotion(obj, source, options, fmt):
    """AI Hub 감성 대화 말뭉치: a list of {profile{persona, emotion}, talk{id, content}}."""
    corpus = corpus_of(options, fmt)
    if not isinstance(obj, list):
        yield FileReject("malformed_structure", source, "$", "expected a JSON list of {profile, talk} objects")
        return
    for index, item in enumerate(obj):
        position = f"[{index}]"
        talk = item.get("talk") if isinstance(item, dict) else None
        content = talk.get("content") if isinstance(talk, dict) else None
        if not isinstance(content, dict):
            yield Reject("malformed_structure", source, position, "expected talk.content with HS01/SS01…",
                         excerpt(item))
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
            meta["situation"] = meta_value(emotion["situation"])
        persona = profile.get("persona")
        if isinstance(persona, dict):
            for key, value in persona.items():
                meta[f"persona_{key}"] = meta_value(value)
        turn = 0
        keys = [k for k in _EMOTION_TURNS if k in content] + sorted(k for k in content if k not in _EMOTION_TURNS)
        for key in keys:
            text = as_text(content[key])
            if text is None:
                yield Reject("bad_text_type", source, f"{position}.talk.content.{key}", "turn is not a string",
                             excerpt(content[key]))
                continue
            if not text.strip():  # unused turn slots are empty strings in this corpus
                continue
            speaker = "human" if key.startswith("HS") else "system" if key.startswith("SS") else key
            yield RawUtterance(corpus, source, f"{position}.talk.content.{key}", doc_id, turn, text, speaker, label,
                               dict(meta, slot=key), markup="aihub")
            turn += 1


def _parse_aihub_dialogues(obj, source, options, fmt):
    """AI Hub 한국어 대화 요약 (body.dialogue[] + summary) and 한국어 SNS (body is the list)."""
    corpus = corpus_of(options, fmt)
    items = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(items, list):
        yield FileReject("malformed_structure", source, "$", "expected an object with a 'data' list")
        return
    for index, item in enumerate(items):
        position = f"data[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("header"), dict):
            yield Reject("malformed_structure", source, position, "expected {header, body}", excerpt(item))
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
                         excerpt(body))
            continue
        doc_meta = {k: meta_value(v) for k, v in info.items() if k != "dialogueID" and v not in (None, "")}
        if summary:
            doc_meta["summary"] = meta_value(summary)
        for u_index, utterance in enumerate(turns):
            u_position = f"{position}.{body_path}[{u_index}]"
            if not isinstance(utterance, dict):
                yield Reject("malformed_record", source, u_position, "expected an utterance object",
                             excerpt(utterance))
                continue
            text = as_text(utterance.get("utterance"))
            if text is None:
                yield Reject("missing_field", source, u_position, "no 'utterance' string", excerpt(utterance))
                continue
            meta = dict(doc_meta)
            for key in ("utteranceID", "turnID", "date", "time"):
                if utterance.get(key) not in (None, ""):
                    meta[key] = meta_value(utterance[key])
            speaker = str(utterance["participantID"]) if utterance.get("participantID") else None
            for key, value in (participants.get(speaker or "", {}) or {}).items():
                if key != "participantID" and value not in (None, ""):
                    meta[f"speaker_{key}"] = meta_value(value)
            yield RawUtterance(corpus, source, u_position, doc_id, u_index, text, speaker, None, meta, markup="aihub")


_XLSX_COLUMNS = {
    "speaker": ("speaker", "발화자", "화자", "speakerid"),
    "text": ("sentence", "발화문", "문장", "발화", "text"),
    "doc": ("dialogueid", "dialogue_id", "대화id", "대화 id", "mainid"),
}


#: limits on what a workbook may unpack to: past them it is rejected before it is opened
MAX_XLSX_UNPACKED_BYTES = 1 << 30
MAX_XLSX_RATIO = 200


def _unpacked_too_big(data: bytes) -> str | None:
    """Why a workbook (a zip archive) would unpack to too much (a decompression bomb), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        return None  # openpyxl says what is wrong with it
    if unpacked > MAX_XLSX_UNPACKED_BYTES or unpacked > MAX_XLSX_RATIO * max(1, len(data)):
        return (f"the workbook unpacks to {unpacked:,} bytes from {len(data):,} (limits: {MAX_XLSX_UNPACKED_BYTES:,} "
                f"bytes, {MAX_XLSX_RATIO}x): a decompression bomb, or a sheet too large for one file. "
                "Fix: split it, or export it as CSV.")
    return None


def _parse_xlsx(data: bytes, source: str, options: ReaderOptions, fmt: str = "aihub-dialogue") -> Iterator[RawUtterance | Reject]:
    """AI Hub 한국어 대화 workbooks: one utterance per row, header in the first row."""
    import openpyxl

    too_big = _unpacked_too_big(data)
    if too_big:
        yield FileReject("xlsx_too_large", source, "", too_big)
        return
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises zipfile/KeyError/ValueError for bad files
        yield FileReject("malformed_xlsx", source, "", f"not a readable xlsx workbook: {error}")
        return
    corpus = corpus_of(options, fmt)
    for sheet in workbook.worksheets:
        sheet.reset_dimensions()  # read every row, not the <dimension> the file declares (often stale)
        rows = sheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            continue
        header = [str(cell).strip() if cell is not None else "" for cell in header_row]
        lowered = [h.lower() for h in header]

        def find(role: str, override: str | tuple[str, ...] | None = None, lowered=lowered) -> int | None:
            if override:
                for name in (override,) if isinstance(override, str) else override:  # candidates, in order
                    if name.lower() in lowered:
                        return lowered.index(name.lower())
                return None
            return next((i for i, h in enumerate(lowered) if h in _XLSX_COLUMNS[role]), None)

        text_index = find("text", options.text_columns if options.text_column != DEFAULT_TEXT_COLUMNS else None)
        if text_index is None:
            yield FileReject("missing_column", source, f"sheet {sheet.title}",
                         f"no sentence column (SENTENCE / 발화문); header is {header[:20]}. "
                         "Fix: pass --text-column NAME.")
            continue
        speaker_index = find("speaker")
        doc_index = find("doc", options.doc_id_column)
        turns = DocTurns()
        for number, values in enumerate(rows, start=2):
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            position = f"sheet {sheet.title} row {number}"
            cells = list(values) + [None] * (len(header) - len(values))
            raw_text = cells[text_index]
            text = as_text(raw_text) if raw_text is not None else ""
            if text is None:
                yield Reject("bad_text_type", source, position, "sentence cell is not text", excerpt(raw_text))
                continue
            doc_value = cells[doc_index] if doc_index is not None else None
            doc_id = str(doc_value) if doc_value not in (None, "") else f"{source}:{position}"
            meta = {header[i] or f"column_{i}": meta_value(v) for i, v in enumerate(cells)
                    if i not in (text_index, speaker_index) and v is not None and i < len(header)}
            speaker = cells[speaker_index] if speaker_index is not None else None
            label = None
            if options.label_column:
                label_index = find("text", options.label_column)
                label = meta_value(cells[label_index]) if label_index is not None and cells[label_index] is not None else None
            yield RawUtterance(corpus, source, position, doc_id, turns(doc_id), text,
                               None if speaker is None else str(speaker), label, meta, markup="aihub")
    workbook.close()




def _is_emotion(obj: Any) -> bool:
    return isinstance(obj, list) and bool(obj) and isinstance(obj[0], dict) and "talk" in obj[0] and "profile" in obj[0]


def _first_body(obj: Any) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("data"), list) and obj["data"]:
        first = obj["data"][0]
        if isinstance(first, dict) and "header" in first and "body" in first:
            return first["body"]
    return None


def _is_summary(obj: Any) -> bool:
    body = _first_body(obj)
    return isinstance(body, dict) and "dialogue" in body


def _is_sns(obj: Any) -> bool:
    return isinstance(_first_body(obj), list)


register(Format("aihub-emotion", "json", _parse_aihub_emotion, matches_json=_is_emotion))
register(Format("aihub-summary", "json", _parse_aihub_dialogues, matches_json=_is_summary))
register(Format("aihub-sns", "json", _parse_aihub_dialogues, matches_json=_is_sns))
register(Format("aihub-dialogue", "bytes", _parse_xlsx, extensions=(".xlsx",)))
