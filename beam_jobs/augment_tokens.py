"""The augment job with a token-classification (named-entity) teacher: utterances -> ``kd_token``
shards (wiring; ``python -m beam_jobs.augment`` picks this path when ``--teacher`` is a
``…ForTokenClassification`` checkpoint).

Per utterance: the teacher's class distribution per character of ``text``
(:func:`beam_jobs.text.entities.char_distributions`), its predicted entities with confidence, the
student tokenizer's ``input_ids`` with each token's character span, and the gold entities when the
row has them. No gold entities needed: on a spoken corpus this writes entity pseudo-labels for
every utterance.

``--teacher`` repeated makes an ensemble, whatever each member's tokenizer: the members' per-character
distributions are combined as ``softmax(Σ w_i · log p_i)`` (:func:`combine_chars`), the weights
fitted before the pipeline on the gold character tags of the valid split (:func:`fit_token_ensemble`),
and entities decoded on the first teacher's tokens; members, weights and what they were fitted on go
into the provenance (``ensemble``).
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


def _bio_labels(path: str) -> tuple[str, list[str]]:
    """A token teacher's local folder and its BIO labels (an error naming it when they are not BIO)."""
    from transformers import AutoConfig

    folder = storage.local_folder(path)
    teacher_config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    labels = [teacher_config.id2label[i] for i in range(teacher_config.num_labels)]
    if "O" not in labels or any(not (name == "O" or name[:2] in ("B-", "I-")) for name in labels):
        raise MalmoiError(f"--teacher {path}: its labels {labels[:8]} are not BIO tags (O, B-T, I-T).",
                          "fine-tune it with kd.finetune --task token-classification.")
    return folder, labels


def check_setup(config: Any) -> dict[str, Any]:
    manifest = read_manifest(config.input)
    if manifest.get("schema") != "utterances":
        raise MalmoiError(f"--input {config.input}: holds '{manifest.get('schema')}', expected an utterances dataset.",
                          "pass the output of beam_jobs.preprocess.")
    if config.paraphrase or config.teacher_signals or config.share_teacher:
        raise MalmoiError("--paraphrase, --teacher-signals and --share-teacher are for sentence-label teachers; this "
                          "teacher tags tokens (loaded once per worker process).",
                          "drop them for a token-classification teacher.")
    teachers = [_bio_labels(path) for path in config.teacher]
    labels = teachers[0][1]
    for path, (_, other) in zip(config.teacher[1:], teachers[1:], strict=True):
        if sorted(other) != sorted(labels):
            raise MalmoiError(f"--teacher {path}: its tags {other} differ from the first teacher's {labels}; an "
                              "ensemble's members must tag the same entity types.",
                              "fine-tune every teacher on the same data.")
    hashes = [weights_hash(folder) for folder, _ in teachers]
    source = manifest.get("provenance", {})
    provenance = {"label_names": labels, "teacher_id": config.teacher[0], "teacher_weights_hash": hashes[0],
                  "student_tokenizer_hash": tokenizer_hash(storage.local_folder(config.student_tokenizer)),
                  "normalizer_hash": source.get("normalizer_hash"), "normalizer_config": source.get("normalizer_config"),
                  "char_rule": CHAR_RULE, "source_dataset": config.input, "task": "token-classification"}
    if config.ensemble_from:
        from beam_jobs.augment import ensemble_weights_from

        members = [{"teacher": path, "weights_hash": h} for path, h in zip(config.teacher, hashes, strict=True)]
        provenance["ensemble"] = ensemble_weights_from(config.ensemble_from, members)
    elif len(teachers) > 1:
        provenance["ensemble"] = fit_token_ensemble(config, [folder for folder, _ in teachers], hashes, labels)
    return provenance


class TokenTagger:
    """One token-classification checkpoint: each text's per-character class distribution
    (:func:`char_distributions`, columns in ``labels`` order, whatever the checkpoint's own order)
    and its tokens' character spans."""

    def __init__(self, folder: str, labels: list[str], device: str, batch_size: int, max_length: int) -> None:
        import torch
        from transformers import AutoModelForTokenClassification

        from beam_jobs.text.subwords import load_subword_tokenizer

        device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self._device = torch.device(device)
        self._model = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=False
                                                                      ).to(self._device).eval()
        own = [self._model.config.id2label[i] for i in range(self._model.config.num_labels)]
        self._columns = [own.index(name) for name in labels]
        self._labels, self._batch_size, self._max_length = labels, batch_size, max_length
        self.tokenizer = load_subword_tokenizer(folder)
        require_offsets("teacher", self.tokenizer)

    def run(self, texts: list[str]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """(token spans, (len(text), C) float32 probabilities) per text, in order."""
        import torch

        from beam_jobs.text.entities import char_distributions, encoded_spans

        out: list[Any] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            index = order[start:start + self._batch_size]
            chunk = [texts[i] for i in index]
            encoded = self.tokenizer(chunk, truncation=True, max_length=self._max_length, padding=True,
                                     return_offsets_mapping=True, return_tensors="pt")
            offsets = encoded_spans(self.tokenizer, chunk, encoded)
            with torch.inference_mode():
                logits = self._model(**{k: v.to(self._device) for k, v in encoded.items()
                                        if k in ("input_ids", "attention_mask")}).logits.float()
            probs = torch.softmax(logits, -1).cpu().numpy()[:, :, self._columns]
            for k, i in enumerate(index):
                out[i] = (offsets[k], char_distributions(offsets[k], probs[k], len(texts[i]), self._labels))
        return out


def require_offsets(name: str, tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise MalmoiError(f"the {name} tokenizer gives no character offsets (not a fast tokenizer).",
                          "use a tokenizer.json tokenizer (kd.tokenizer writes one).")


def floored_log(probs: np.ndarray) -> np.ndarray:
    """log of probabilities floored at 1e-6, so one confident member cannot zero a class (the same
    floor where the weights are fitted and where they are applied)."""
    return np.log(np.clip(probs.astype(np.float64), 1e-6, None))


def combine_chars(members: list[np.ndarray], weights: Any) -> np.ndarray:
    """Per-character distributions of several teachers as one: ``softmax(Σ w_i · log p_i)``
    (:func:`floored_log`); one member is returned as it is."""
    if len(members) == 1:
        return members[0]
    from beam_jobs.teacher_signals import combine

    return np.exp(combine([floored_log(m) for m in members], np.asarray(weights, np.float64))).astype(np.float32)


def predicted_entities(offsets: list[tuple[int, int]], chars: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Entities decoded on the first teacher's tokens from the (combined) per-character
    distribution at each token's first character (for one teacher, exactly its token argmax),
    with the mean top probability of their tokens as confidence."""
    from beam_jobs.text.entities import entities_from_tags

    firsts = [chars[a] if a < b else None for a, b in offsets]
    tags = [int(p.argmax()) if p is not None else 0 for p in firsts]
    found = []
    for s, e, label in entities_from_tags(offsets, tags, dict(enumerate(labels))):
        inside = [float(p.max()) for p, (a, b) in zip(firsts, offsets, strict=True) if p is not None and s <= a < e]
        found.append({"start": s, "end": e, "label": label, "confidence": sum(inside) / max(len(inside), 1)})
    return found


def gold_char_tags(text: str, entities: list[dict[str, Any]], labels: list[str]) -> np.ndarray:
    """One class id per character: ``B-T`` where an entity begins, ``I-T`` inside it, ``O``
    elsewhere; -1 for whitespace (every teacher calls it ``O``: nothing to fit there)."""
    from beam_jobs.text.entities import token_tags

    spans = [(int(e["start"]), int(e["end"]), e["label"]) for e in entities]
    tags = np.array(token_tags([(i, i + 1) for i in range(len(text))], spans,
                               {name: i for i, name in enumerate(labels)}), np.int64)
    tags[[i for i, ch in enumerate(text) if ch.isspace()]] = -1
    return tags


def fit_token_ensemble(config: Any, folders: list[str], hashes: list[str], labels: list[str],
                       limit: int = 5_000) -> dict[str, Any]:
    """The members' weights, fitted on the characters of the input's valid rows with gold
    entities (up to ``limit`` rows; whitespace left out): negative log-likelihood of the gold
    character tags under :func:`combine_chars` (:func:`beam_jobs.teacher_signals.fit_weights`).
    The geometric mean (1/N each) when the valid split has no gold entities."""
    import pyarrow.compute as pc

    from beam_jobs.teacher_signals import default_weights, fit_weights
    from schemas import UTTERANCES

    rows: list[dict[str, Any]] = []
    for path in part_files(config.input):
        table = storage.read_table(path)
        validate(table, UTTERANCES, where=f"'{path}'")
        if "entities" not in table.column_names:
            continue
        table = table.filter(pc.and_(pc.equal(table.column("split"), "valid"), pc.is_valid(table.column("entities"))))
        rows += table.select(["text", "entities"]).to_pylist()
        if len(rows) >= limit:
            break
    rows = [r for r in rows[:limit] if r["text"]]
    weights = default_weights(len(folders))
    characters = 0
    if rows:
        texts = [r["text"] for r in rows]
        gold = np.concatenate([gold_char_tags(r["text"], r["entities"], labels) for r in rows])
        keep = gold >= 0
        members = []
        for folder in folders:
            tagger = TokenTagger(folder, labels, config.device, config.teacher_batch_size, config.teacher_max_length)
            chars = np.concatenate([c for _, c in tagger.run(texts)])[keep]
            members.append(floored_log(chars))
        characters = int(keep.sum())
        weights = fit_weights(members, gold[keep])
    return {"members": [{"teacher": path, "weights_hash": h} for path, h in zip(config.teacher, hashes, strict=True)],
            "weights": [float(w) for w in weights], "fitted_on_valid_rows": len(rows),
            "fitted_on_valid_characters": characters,
            "combined": "softmax(sum of weight * log per-character probabilities), decoded on the first teacher's tokens"}


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
    """A batch of utterances -> one kd_token table (the teacher, or the teachers' fitted
    combination, per character; the student's tokens)."""

    def __init__(self, config: Any, labels: list[str], weights: list[float] | None = None) -> None:
        self._config, self._labels = config, labels
        if weights is None:
            from beam_jobs.teacher_signals import default_weights

            weights = list(default_weights(len(config.teacher)))
        self._weights = weights
        self._progress = beam_io.Progress("augment.token_teacher", "rows")

    def setup(self) -> None:
        from beam_jobs.text.subwords import load_subword_tokenizer

        config = self._config
        self._taggers = [TokenTagger(storage.local_folder(path), self._labels, config.device,
                                     config.teacher_batch_size, config.teacher_max_length) for path in config.teacher]
        self._student_tokenizer = load_subword_tokenizer(storage.local_folder(config.student_tokenizer))
        require_offsets("student", self._student_tokenizer)

    def process(self, batch: list[dict[str, Any]]):
        import pyarrow as pa

        from beam_jobs.text.entities import encoded_spans

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
        texts = [r["text"] for r in rows]
        members = [tagger.run(texts) for tagger in self._taggers]
        student = self._student_tokenizer(texts, truncation=True, max_length=config.max_length,
                                          return_offsets_mapping=True, return_attention_mask=False)
        student_spans = encoded_spans(self._student_tokenizer, texts, student)
        out: dict[str, list] = {name: [] for name in KD_TOKEN.schema.names}
        for k, row in enumerate(rows):
            offsets = members[0][k][0]
            chars = combine_chars([m[k][1] for m in members], self._weights)
            predicted = predicted_entities(offsets, chars, labels)
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
    weights = provenance.get("ensemble", {}).get("weights")
    taught = batches.batches | "TokenTeacher" >> beam.ParDo(
        TokenTeacherFn(config, provenance["label_names"], weights)).with_outputs(REJECTS, STATS, main="tables")
    tables = taught.tables | "CountRows" >> beam.ParDo(CountTableRowsFn()).with_outputs(STATS, main="tables")
    _ = {
        "tables": tables.tables,
        "rejects": taught[REJECTS],
        "stats": (batches[STATS], taught[STATS], tables[STATS]) | "AllStats" >> beam.Flatten(),
    } | "WriteDataset" >> beam_io.WriteDataset(
        folder=config.output, spec=KD_TOKEN, provenance=provenance, created_by=JOB_NAME, options=config.to_dict(),
        balances=BALANCES, rows_counter="rows.written", codec=config.codec, row_group_rows=config.row_group_rows)
