"""NIKL 모두의 말뭉치 JSON: 일상 대화 (SDRW), 구어 (S*RW), 메신저 (MDRW), 온라인 대화 (MMRW)."""

from __future__ import annotations

from typing import Any

from beam_jobs.readers.base import (
    FileReject,
    Format,
    RawUtterance,
    Reject,
    as_text,
    corpus_of,
    excerpt,
    meta_value,
    register,
)


def _parse_nikl(obj, source, options, fmt):
    """NIKL 모두의 말뭉치 (일상 대화 SDRW, 구어 S*RW, 메신저 MDRW / 온라인 대화 MMRW)."""
    corpus = corpus_of(options, fmt)
    documents = obj.get("document") if isinstance(obj, dict) else None
    if not isinstance(documents, list):
        yield FileReject("malformed_structure", source, "$", "expected an object with a 'document' list (NIKL JSON)")
        return
    for d_index, document in enumerate(documents):
        doc_position = f"document[{d_index}]"
        if not isinstance(document, dict) or not isinstance(document.get("utterance"), list):
            yield Reject("malformed_structure", source, doc_position, "expected a document with an 'utterance' list",
                         excerpt(document))
            continue
        doc_id = str(document.get("id") or f"{source}:{doc_position}")
        metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
        speakers = {str(s.get("id")): s for s in metadata.get("speaker", []) or [] if isinstance(s, dict)}
        doc_meta = {}
        for key in ("topic", "title", "category"):
            if metadata.get(key):
                doc_meta[key] = meta_value(metadata[key])
        setting = metadata.get("setting")
        if isinstance(setting, dict) and setting.get("relation"):
            doc_meta["relation"] = meta_value(setting["relation"])
        for u_index, utterance in enumerate(document["utterance"]):
            position = f"{doc_position}.utterance[{u_index}]"
            if not isinstance(utterance, dict):
                yield Reject("malformed_record", source, position, "expected an utterance object", excerpt(utterance))
                continue
            text = as_text(utterance.get("form"))
            if text is None:
                text = as_text(utterance.get("original_form"))
            if text is None:
                yield Reject("missing_field", source, position, "no 'form' or 'original_form' string",
                             excerpt(utterance))
                continue
            meta = dict(doc_meta)
            if utterance.get("id"):
                meta["utterance_id"] = str(utterance["id"])
            original = utterance.get("original_form")
            if isinstance(original, str) and original != text:
                meta["original_form"] = original
            for key in ("start", "end", "time", "note"):
                if utterance.get(key) not in (None, ""):
                    meta[key] = meta_value(utterance[key])
            speaker_id = utterance.get("speaker_id")
            speaker = str(speaker_id) if speaker_id not in (None, "") else None
            for key, value in (speakers.get(speaker or "", {}) or {}).items():
                if key != "id" and value not in (None, ""):
                    meta[f"speaker_{key}"] = meta_value(value)
            yield RawUtterance(corpus, source, position, doc_id, u_index, text, speaker, None, meta, markup="nikl")



def _is_nikl(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("document"), list)


register(Format("nikl", "json", _parse_nikl, matches_json=_is_nikl))
