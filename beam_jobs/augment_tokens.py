"""The augment job with a token-classification (named-entity) teacher: utterances -> ``kd_token``
shards (wiring; ``python -m beam_jobs.augment`` picks this path when ``--teacher`` is a
``…ForTokenClassification`` checkpoint).

Per utterance: the teacher's class distribution per character of ``text``
(:func:`beam_jobs.text.entities.char_distributions`), its predicted entities with confidence, the
student tokenizer's ``input_ids`` with each token's character span, and the gold entities when the
row has them. No gold entities needed: on a spoken corpus this writes entity pseudo-labels for
every utterance.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.pvalue import TaggedOutput

from beam_jobs import beam_io
from beam_jobs.beam_io import REJECTS, STATS, Balance, count
from schemas import read_manifest, storage
from schemas.dataset import part_files, validate
from schemas.kd_token import KD_TOKEN
from schemas.options import MalmoiError
from schemas.provenance import tokenizer_hash, weights_hash
from schemas.rejects import Reject

JOB_NAME = "beam_jobs.augment (token classification)"
CHAR_RULE = "first character: the token's distribution; later characters: B- mass moved to I-; outside tokens: O"
BALANCES = (
    Balance(("records_in", "records.in"), (("records_out", "records.out"), ("records_rejected", "records.rejected."))),
    Balance(("rows_written", "rows.written"), (("records_out", "records.out"),)),
)


def is_token_teacher(teacher_dir: str) -> bool:
    """Whether ``--teacher`` is a token classifier (False when unreadable: the sentence path then
    says what is wrong with it)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(storage.local_folder(teacher_dir), trust_remote_code=False)
    except (OSError, ValueError):
        return False
    return any(a.endswith("ForTokenClassification") for a in (config.architectures or []))


def check_setup(config: Any) -> dict[str, Any]:
    from transformers import AutoConfig

    manifest = read_manifest(config.input)
    if manifest.get("schema") != "utterances":
        raise MalmoiError(f"--input {config.input}: holds '{manifest.get('schema')}', expected an utterances dataset.",
                          "pass the output of beam_jobs.preprocess.")
    if config.paraphrase or config.teacher_signals or config.share_teacher:
        raise MalmoiError("--paraphrase, --teacher-signals and --share-teacher are for sentence-label teachers; this "
                          "teacher tags tokens (loaded once per worker process).",
                          "drop them for a token-classification teacher.")
    teacher_dir = storage.local_folder(config.teacher)
    teacher_config = AutoConfig.from_pretrained(teacher_dir, trust_remote_code=False)
    labels = [teacher_config.id2label[i] for i in range(teacher_config.num_labels)]
    if "O" not in labels or any(not (name == "O" or name[:2] in ("B-", "I-")) for name in labels):
        raise MalmoiError(f"--teacher {config.teacher}: its labels {labels[:8]} are not BIO tags (O, B-T, I-T).",
                          "fine-tune it with kd.finetune --task token-classification.")
    source = manifest.get("provenance", {})
    return {"label_names": labels, "teacher_id": config.teacher, "teacher_weights_hash": weights_hash(teacher_dir),
            "student_tokenizer_hash": tokenizer_hash(storage.local_folder(config.student_tokenizer)),
            "normalizer_hash": source.get("normalizer_hash"), "normalizer_config": source.get("normalizer_config"),
            "char_rule": CHAR_RULE, "source_dataset": config.input, "task": "token-classification"}


class ReadEntityRowsFn(beam.DoFn):
    """(file, row group) -> batches of (id, text, entities, split)."""

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size

    def process(self, element):
        from schemas import UTTERANCES

        path, index = element
        part = storage.parquet_file(path)
        table = part.read_row_group(index)
        validate(table, UTTERANCES, where=f"'{path}' row group {index}")
        table = UTTERANCES.to_current(table, None if "entities" in table.column_names else 1)
        rows = table.select(["id", "text", "entities", "split"]).to_pylist()
        for start in range(0, len(rows), self._batch_size):
            batch = rows[start:start + self._batch_size]
            yield TaggedOutput(STATS, count("records.in", len(batch)))
            yield batch


class TokenTeacherFn(beam.DoFn):
    """A batch of utterances -> one kd_token table (teacher per character, student tokens)."""

    def __init__(self, config: Any, labels: list[str]) -> None:
        self._config, self._labels = config, labels
        self._progress = beam_io.Progress("augment.token_teacher", "rows")

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForTokenClassification

        from beam_jobs.text.subwords import load_subword_tokenizer

        config = self._config
        teacher_dir = storage.local_folder(config.teacher)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
        self._device = torch.device(device)
        self._model = AutoModelForTokenClassification.from_pretrained(teacher_dir, trust_remote_code=False
                                                                      ).to(self._device).eval()
        self._teacher_tokenizer = load_subword_tokenizer(teacher_dir)
        self._student_tokenizer = load_subword_tokenizer(storage.local_folder(config.student_tokenizer))
        for name, tokenizer in (("teacher", self._teacher_tokenizer), ("student", self._student_tokenizer)):
            if not getattr(tokenizer, "is_fast", False):
                raise MalmoiError(f"the {name} tokenizer gives no character offsets (not a fast tokenizer).",
                                  "use a tokenizer.json tokenizer (kd.tokenizer writes one).")

    def process(self, batch: list[dict[str, Any]]):
        import pyarrow as pa
        import torch

        from beam_jobs.text.entities import char_distributions, encoded_spans, entities_from_tags

        config, labels = self._config, self._labels
        rows = []
        for row in batch:
            if not (row["text"] or "").strip():
                yield TaggedOutput(STATS, count("records.rejected.empty_text"))
                yield TaggedOutput(REJECTS, Reject("empty_text", config.input, f"id {row['id']}", "no text", ""))
            else:
                rows.append(row)
        self._progress.add(len(rows))
        if not rows:
            return
        id2label = dict(enumerate(labels))
        out: dict[str, list] = {name: [] for name in KD_TOKEN.schema.names}
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["text"]))
        for start in range(0, len(order), config.teacher_batch_size):
            chunk = [rows[i] for i in order[start:start + config.teacher_batch_size]]
            texts = [r["text"] for r in chunk]
            encoded = self._teacher_tokenizer(texts, truncation=True, max_length=config.teacher_max_length,
                                              padding=True, return_offsets_mapping=True, return_tensors="pt")
            offsets = encoded_spans(self._teacher_tokenizer, texts, encoded)
            encoded.pop("offset_mapping")
            with torch.inference_mode():
                logits = self._model(**{k: v.to(self._device) for k, v in encoded.items()
                                        if k in ("input_ids", "attention_mask")}).logits.float()
            probs = torch.softmax(logits, -1).cpu().numpy()
            student = self._student_tokenizer(texts, truncation=True, max_length=config.max_length,
                                              return_offsets_mapping=True, return_attention_mask=False)
            student_spans = encoded_spans(self._student_tokenizer, texts, student)
            for k, row in enumerate(chunk):
                chars = char_distributions(offsets[k], probs[k], len(row["text"]), labels)
                tags = probs[k].argmax(-1).tolist()
                predicted = []
                for s, e, label in entities_from_tags(offsets[k], tags, id2label):
                    inside = [float(probs[k][t].max()) for t, (a, b) in enumerate(offsets[k]) if a != b and s <= a < e]
                    predicted.append({"start": s, "end": e, "label": label,
                                      "confidence": sum(inside) / max(len(inside), 1)})
                spans = student_spans[k]
                out["id"].append(row["id"])
                out["text"].append(row["text"])
                out["split"].append(row["split"])
                out["input_ids"].append(student["input_ids"][k])
                out["token_starts"].append([s for s, _ in spans])
                out["token_ends"].append([e for _, e in spans])
                out["entities"].append(row["entities"])
                out["teacher_char_probs"].append(chars.astype(np.float16).reshape(-1))
                out["teacher_entities"].append(predicted)
                yield TaggedOutput(STATS, count("records.out"))
                yield TaggedOutput(STATS, count("teacher_entities.predicted", len(predicted)))
        table = pa.table({name: pa.array(values, KD_TOKEN.schema.field(name).type) for name, values in out.items()},
                         schema=KD_TOKEN.schema)
        validate(table, KD_TOKEN, where="an augment batch")
        yield table


def build(pipeline: beam.Pipeline, config: Any, provenance: dict[str, Any]) -> None:
    from beam_jobs.augment import CountTableRowsFn

    tasks = [(path, i) for path in part_files(config.input) for i in range(storage.parquet_file(path).num_row_groups)]
    batches = (pipeline
               | "ListRowGroups" >> beam.Create(tasks)
               | "SpreadRowGroups" >> beam.Reshuffle()
               | "ReadUtterances" >> beam.ParDo(ReadEntityRowsFn(config.batch_size)).with_outputs(STATS, main="batches"))
    taught = batches.batches | "TokenTeacher" >> beam.ParDo(
        TokenTeacherFn(config, provenance["label_names"])).with_outputs(REJECTS, STATS, main="tables")
    tables = taught.tables | "CountRows" >> beam.ParDo(CountTableRowsFn()).with_outputs(STATS, main="tables")
    _ = {
        "tables": tables.tables,
        "rejects": taught[REJECTS],
        "stats": (batches[STATS], taught[STATS], tables[STATS]) | "AllStats" >> beam.Flatten(),
    } | "WriteDataset" >> beam_io.WriteDataset(
        folder=config.output, spec=KD_TOKEN, provenance=provenance, created_by=JOB_NAME, options=config.to_dict(),
        balances=BALANCES, rows_counter="rows.written", codec=config.codec, row_group_rows=config.row_group_rows)
