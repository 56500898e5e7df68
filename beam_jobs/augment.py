"""``python -m beam_jobs.augment``: utterances -> kd shards with teacher signals and vetted paraphrases.

    python -m beam_jobs.augment --input out/utterances --output out/kd --teacher out/teacher \\
        --student-tokenizer out/tokenizer [--paraphrase colloquial --paraphrase eda …] [Beam options]

For every utterance: the teacher's raw logits (temperature 1), its mean-pooled sentence
embedding (float16), predicted label, confidence and entropy, and the student's ``input_ids``.
Paraphrases (of the ``--paraphrase-splits`` rows, train by default) are kept only when the
teacher agrees with itself: same argmax, KL below ``--max-kl``, embedding cosine above
``--min-cosine``, at most ``--max-per-source``; they inherit ``split``, ``label`` and
``parent_id`` from their source, so nothing derived from a test item reaches training.

``--teacher`` repeated (and ``--teacher-signals`` files) make an ensemble: every row's logits become
``log_softmax(Σ w_i · log p_i)`` over the members, the weights fitted on the valid split's gold
labels before the pipeline and written into the provenance; the first teacher gives the embeddings
and vets the paraphrases.

The teacher and paraphrase models are loaded once per worker process; on Dataflow GPU workers
the teacher runs on CUDA with bf16 (``--dataflow_service_options=worker_accelerator=…``).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, replace
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.shared import Shared

from beam_jobs import beam_io
from beam_jobs.beam_io import REJECTS, STATS, Balance, count
from beam_jobs.paraphrase import METHODS, MLM_PRECISIONS, FilterConfig, filter_candidates
from beam_jobs.readers import Reject
from schemas import KD, UTTERANCES, read_manifest, storage
from schemas.dataset import distinct_values, part_files, validate
from schemas.kd import POOLINGS
from schemas.options import MalmoiError, cli_main, option, str_tuple
from schemas.provenance import stable_id, tokenizer_hash, weights_hash

LOG = logging.getLogger(__name__)
JOB_NAME = "beam_jobs.augment"


class AugmentError(MalmoiError):
    """The job cannot start: bad teacher, tokenizer, labels or options."""


#: rows in = out + rejected; paraphrases generated = kept + filtered; rows written = originals + kept
BALANCES = (
    Balance(("records_in", "records.in"), (("records_out", "records.out"), ("records_rejected", "records.rejected."))),
    Balance(("paraphrases_generated", "paraphrases.generated."), (("paraphrases_kept", "paraphrases.kept."),
                                                                  ("paraphrases_filtered", "paraphrases.filtered."))),
    Balance(("rows_written", "rows.written"), (("records_out", "records.out"), ("paraphrases_kept", "paraphrases.kept."))),
)


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """Everything that decides the kd shards; saved into the manifest."""

    input: str = option(help="utterances dataset (beam_jobs.preprocess output)", metavar="DIR", required=True)
    output: str = option(help="kd dataset folder to write", metavar="DIR", required=True)
    teacher: tuple[str, ...] = option(help="teacher checkpoint dir (with its tokenizer): a sequence or token "
                                      "classifier; repeat for an ensemble, combined in log-probability space with "
                                      "weights fitted on the valid split (the first one also gives embeddings and "
                                      "vets paraphrases)", metavar="DIR", repeat=True, required=True)
    student_tokenizer: str = option(help="tokenizer dir the student will use (kd.tokenizer output)", metavar="DIR",
                                    required=True)
    paraphrase: tuple[str, ...] = option((), help="paraphrase method; repeat for several", repeat=True,
                                         choices=METHODS)
    paraphrase_splits: tuple[str, ...] = option(("train",), help="comma-separated splits to paraphrase",
                                                parse=str_tuple)
    num_candidates: int = option(2, help="candidates per source and method")
    filters: FilterConfig = FilterConfig()
    mlm_model: str | None = option(None, help="masked-LM checkpoint for --paraphrase mlm", metavar="DIR")
    mlm_precision: str = option("float32", help="mlm paraphraser forward: float32, or bfloat16 autocast (1.6-2.4x "
                                "faster on CPUs with bf16 units; candidates may differ where scores tie)",
                                choices=MLM_PRECISIONS)
    mlm_joint_masks: bool = option(False, help="mlm paraphraser: mask a text's words of one round together in one "
                                   "forward row (about half the rows; each word is then predicted without the "
                                   "other masked ones, so candidates can differ)")
    seq2seq_model: str | None = option(None, help="seq2seq checkpoint for --paraphrase seq2seq", metavar="DIR")
    seq2seq_prefix: str = option("", help="text put before each seq2seq input (e.g. 'paraphrase: ')")
    max_length: int = option(128, help="student input_ids are truncated to this")
    teacher_max_length: int = option(128, help="teacher inputs are truncated to this many tokens")
    teacher_batch_size: int = option(64, help="rows per teacher forward pass")
    embedding_pooling: str = option("mean", help="how teacher_embedding is pooled", choices=POOLINGS)
    max_chars: int = option(2000, help="longer utterances are rejected")
    batch_size: int = option(8192, help="utterances per pipeline element; the teacher sorts each by length, so a "
                             "larger element pads less (8192: ~3% padding on NSMC, 2048: ~9%)")
    seed: int = option(0, help="seeds the paraphrasers (per source id)")
    device: str = option("auto", help="teacher device: auto (CUDA when present), cpu, cuda")
    teacher_signals: tuple[str, ...] = option((), help="a JSONL/Parquet file of outside teacher signals (logits, "
                                              "probs or a label per id or text), an ensemble member beside --teacher; "
                                              "repeat for several", flag="--teacher-signals", repeat=True,
                                              metavar="FILE")
    signals_key: str = option("id", help="what --teacher-signals rows are keyed by", choices=("id", "text"))
    ensemble_from: str | None = option(None, help="an ensemble's weights from this kd / kd_token dataset (fitted on "
                                       "its valid split, same members in the same order) instead of fitting them "
                                       "here: for a corpus without gold labels", metavar="DIR")
    share_teacher: bool = option(False, help="load the teacher once per worker VM and share it across its SDK "
                                 "processes (Beam RunInference large_model; for Dataflow GPU workers)",
                                 flag="--share-teacher")
    row_group_rows: int = option(50_000, help="rows per Parquet row group")
    codec: str = option("zstd", help="Parquet compression", choices=("zstd", "snappy", "gzip", "none"))
    overwrite: bool = option(False, help="replace an existing dataset in --output")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


# --------------------------------------------------------------------------- models, once per process


class _Paraphrasers:
    """The paraphrasers of one worker process (shared by its threads)."""

    def __init__(self, config: AugmentConfig) -> None:
        from beam_jobs.paraphrase import (
            ColloquialParaphraser,
            EdaParaphraser,
            MlmParaphraser,
            Seq2SeqParaphraser,
        )

        local = storage.local_folder  # a gs:// or s3:// model folder is copied to the worker once
        device = _device(config.device)
        makers = {
            "colloquial": lambda: ColloquialParaphraser(config.num_candidates),
            "eda": lambda: EdaParaphraser(config.num_candidates),
            "mlm": lambda: MlmParaphraser(local(config.mlm_model), config.num_candidates, device=device,
                                          precision=config.mlm_precision, joint_masks=config.mlm_joint_masks),
            "seq2seq": lambda: Seq2SeqParaphraser(local(config.seq2seq_model), config.num_candidates,
                                                  prefix=config.seq2seq_prefix, device=device),
        }
        self.paraphrasers = {name: makers[name]() for name in config.paraphrase}


def _device(device: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


class TeacherHandler(ModelHandler):
    """The teacher as a Beam ML ``ModelHandler``, used through ``RunInference``.

    An element is one prepared malmoi batch (originals + paraphrase candidates), so Beam's own
    batching is off (one element per call) and the teacher keeps its length-sorted batches inside
    :meth:`Teacher.run`. With ``share`` the model is loaded once per worker VM and shared by its SDK
    processes (Beam's ``MultiProcessShared``: one copy in GPU memory instead of one per process);
    without it, once per process."""

    def __init__(self, config: AugmentConfig, share: bool) -> None:
        super().__init__(min_batch_size=1, max_batch_size=1, large_model=share)
        self._config = config
        self._share_across_processes = share

    def load_model(self):
        from beam_jobs.teacher import Teacher, TeacherEnsemble

        config = self._config
        return TeacherEnsemble([Teacher(storage.local_folder(path), device=config.device,
                                        batch_size=config.teacher_batch_size, max_length=config.teacher_max_length,
                                        pooling=config.embedding_pooling) for path in config.teacher])

    def run_inference(self, batch, model, inference_args=None):
        return [(prepared, model.run(prepared["texts"])) for prepared in batch]

    def get_metrics_namespace(self) -> str:
        return "malmoi_teacher"


def paraphrase_id(parent_id: str, method: str, text: str) -> str:
    return stable_id(parent_id, method, text)


class ReadRowGroupFn(beam.DoFn):
    """(file, row group) -> batches of utterance rows (id, text, label, split), validated."""

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size

    def process(self, element: tuple[str, int]):
        path, index = element
        table = storage.parquet_file(path).read_row_group(index)
        validate(table, UTTERANCES, where=f"'{path}' row group {index}")
        rows = table.select(["id", "text", "label", "split"]).to_pylist()
        for start in range(0, len(rows), self._batch_size):
            batch = rows[start:start + self._batch_size]
            yield TaggedOutput(STATS, count("records.in", len(batch)))
            yield batch


class _Rejecting:
    def _reject(self, row: dict[str, Any], reason: str, detail: str):
        yield TaggedOutput(STATS, count(f"records.rejected.{reason}"))
        yield TaggedOutput(REJECTS, Reject(reason, self._config.input, f"id {row['id']}", detail,
                                           (row.get("text") or "")[:200]))


class PrepareBatchFn(_Rejecting, beam.DoFn):
    """A batch of utterances -> the texts the teacher must see: the usable originals, then their
    paraphrase candidates (rejects for empty or over-long rows)."""

    def __init__(self, config: AugmentConfig, shared: Shared) -> None:
        self._config = config
        self._shared = shared
        self._paraphrasers: _Paraphrasers | None = None
        self._progress = beam_io.Progress("augment.paraphrase", "utterances")

    def setup(self) -> None:
        config = self._config
        self._paraphrasers = self._shared.acquire(lambda: _Paraphrasers(config),
                                                  tag=json.dumps(config.to_dict(), sort_keys=True))

    def process(self, batch: list[dict[str, Any]]):
        config = self._config
        assert self._paraphrasers is not None
        self._progress.add(len(batch))
        sources = []
        for row in batch:
            text = row["text"] or ""
            if not text.strip():
                yield from self._reject(row, "empty_text", "no text")
            elif len(text) > config.max_chars:
                yield from self._reject(row, "too_long", f"{len(text)} characters > --max-chars {config.max_chars}")
            else:
                sources.append(row)
        candidates: list[tuple[int, str, str]] = []  # (source index, method, text)
        chosen = [i for i, row in enumerate(sources) if row["split"] in config.paraphrase_splits]
        generated: dict[str, dict[int, list[str]]] = {}
        for method, paraphraser in self._paraphrasers.paraphrasers.items():
            items = [(sources[i]["id"], sources[i]["text"]) for i in chosen]
            if hasattr(paraphraser, "many"):  # model-based: the whole batch in batched forward passes
                outputs = paraphraser.many(items, config.seed)
            else:
                outputs = [paraphraser(source_id, text, config.seed) for source_id, text in items]
            generated[method] = dict(zip(chosen, outputs, strict=True))
        for index in chosen:
            row = sources[index]
            seen = {row["text"].strip()}
            for method in self._paraphrasers.paraphrasers:
                for text in generated[method][index]:
                    yield TaggedOutput(STATS, count(f"paraphrases.generated.{method}"))
                    if text in seen:
                        yield TaggedOutput(STATS, count("paraphrases.filtered.duplicate"))
                        continue
                    seen.add(text)
                    candidates.append((index, method, text))
        if sources:
            yield {"sources": sources, "candidates": candidates,
                   "texts": [r["text"] for r in sources] + [c[2] for c in candidates]}


class KeepWithTeacherFn(_Rejecting, beam.DoFn):
    """(prepared batch, teacher outputs) -> kd rows: originals plus the paraphrases that pass the filters."""

    def __init__(self, config: AugmentConfig, label_to_id: dict[str, int], ensemble: dict | None = None) -> None:
        self._config = config
        self._label_to_id = label_to_id
        self._ensemble = ensemble
        self._signals: list = []
        self._student_tokenizer: Any = None
        self._progress = beam_io.Progress("augment.teacher", "rows")

    def setup(self) -> None:
        from beam_jobs.text.subwords import load_subword_tokenizer

        self._student_tokenizer = load_subword_tokenizer(storage.local_folder(self._config.student_tokenizer))
        if self._ensemble:
            from beam_jobs.teacher_signals import load_signals

            names = sorted(self._label_to_id, key=self._label_to_id.get)
            self._signals = [load_signals(path, names, self._config.signals_key) for path in self._config.teacher_signals]

    def _ensemble_logits(self, sources: list[dict[str, Any]], candidates: list[tuple[int, str, str]],
                         outputs) -> tuple[np.ndarray, int]:
        """Every row's logits combined over the ensemble (log-probabilities, fitted weights): the
        checkpoint teachers on every row; the outside members on the originals and, for a
        paraphrase, its parent's row (a kept paraphrase keeps its parent's label, the premise of
        the agreement filter, so the outside member's view of the parent is its best estimate; left
        out, a paraphrase's target would be the checkpoints alone rescaled to the fitted sum, a
        sharpened copy of what may be the weakest member). A member without a row for an
        utterance is left out of that row, the weights of the members present scaled back to the
        fitted weights' sum. Also returns how many originals missed an outside member."""
        from beam_jobs.teacher_signals import combine, log_softmax

        weights = np.asarray(self._ensemble["weights"])
        checkpoints = [log_softmax(m.astype(np.float64)) for m in (outputs.logits, *outputs.member_logits)]
        stored, missing = outputs.logits.copy(), 0
        for i in range(len(outputs.logits)):
            members = [m[i] for m in checkpoints]
            used = list(weights[:len(checkpoints)])
            source = i if i < len(sources) else candidates[i - len(sources)][0]
            key = sources[source][self._config.signals_key]
            for w, signals in zip(weights[len(checkpoints):], self._signals, strict=True):
                if key in signals.log_probs:
                    members.append(signals.log_probs[key])
                    used.append(w)
            if i < len(sources):
                missing += len(members) < len(weights)
            stored[i] = combine(members, np.asarray(used) * weights.sum() / max(sum(used), 1e-12))
        return stored, missing

    def process(self, element):
        config = self._config
        prepared, outputs = element
        sources, candidates = prepared["sources"], prepared["candidates"]
        self._progress.add(len(sources) + len(candidates))
        finite = np.isfinite(outputs.logits).all(axis=1) & np.isfinite(outputs.embeddings.astype(np.float32)).all(axis=1)
        for member in outputs.member_logits:
            finite &= np.isfinite(member).all(axis=1)
        kept: list[tuple[int, str, dict[str, Any], str, str]] = []  # (output row, id, parent, origin, text)
        usable = [False] * len(sources)
        for i, row in enumerate(sources):
            if not finite[i]:
                yield from self._reject(row, "nan_logits", "a teacher returned NaN/inf logits or embedding")
                continue
            usable[i] = True
            kept.append((i, row["id"], row, "original", row["text"]))
            yield TaggedOutput(STATS, count("records.out"))
        by_source: dict[int, list[int]] = {}
        for k, (index, _method, _text) in enumerate(candidates):
            by_source.setdefault(index, []).append(k)
        offset = len(sources)
        for index, ks in by_source.items():
            if not usable[index]:
                for _ in ks:
                    yield TaggedOutput(STATS, count("paraphrases.filtered.source_rejected"))
                continue
            rows = [offset + k for k in ks]
            ok = [r for r in rows if finite[r]]
            for _ in range(len(rows) - len(ok)):
                yield TaggedOutput(STATS, count("paraphrases.filtered.nan_logits"))
            if not ok:
                continue
            _, reasons = filter_candidates(outputs.logits[index], outputs.embeddings[index], outputs.logits[ok],
                                           outputs.embeddings[ok], config.filters)
            for position, reason in enumerate(reasons):
                _, method, text = candidates[ok[position] - offset]
                if reason != "kept":
                    yield TaggedOutput(STATS, count(f"paraphrases.filtered.{reason}"))
                    continue
                yield TaggedOutput(STATS, count(f"paraphrases.kept.{method}"))
                parent = sources[index]
                kept.append((ok[position], paraphrase_id(parent["id"], method, text), parent,
                             f"paraphrase:{method}", text))
        if kept:
            if self._ensemble:  # the filters above used the first teacher; the rows carry the ensemble
                stored, missing = self._ensemble_logits(sources, candidates, outputs)
                if missing:
                    yield TaggedOutput(STATS, count("teacher_signals.missing_member", missing))
                outputs = type(outputs)(stored.astype(np.float32), outputs.embeddings)
            yield self._table(kept, outputs)

    def _table(self, kept, outputs):
        """The kept rows as one Arrow table, built column by column (no per-float Python objects)."""
        import pyarrow as pa

        index = np.array([k[0] for k in kept])
        texts = [k[4] for k in kept]
        encoded = self._student_tokenizer.input_ids(texts, self._config.max_length)
        derived = outputs.derived()

        def matrix_column(matrix: np.ndarray, kind: pa.DataType) -> pa.ListArray:
            width = matrix.shape[1]
            offsets = pa.array(np.arange(0, len(matrix) * width + 1, width, dtype=np.int32))
            return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(matrix).reshape(-1), kind))

        labels = [k[2]["label"] for k in kept]
        table = pa.table({
            "id": [k[1] for k in kept], "parent_id": [k[2]["id"] for k in kept], "origin": [k[3] for k in kept],
            "text": texts, "input_ids": pa.array(encoded, pa.list_(pa.int32())),
            "label": pa.array([self._label_to_id.get(v, -1) if v is not None else -1 for v in labels], pa.int32()),
            "split": [k[2]["split"] for k in kept],
            "teacher_logits": matrix_column(outputs.logits[index], pa.float32()),
            "teacher_embedding": matrix_column(outputs.embeddings[index], pa.float16()),
            "teacher_label": pa.array(derived["teacher_label"][index], pa.int32()),
            "teacher_confidence": pa.array(derived["teacher_confidence"][index], pa.float32()),
            "teacher_entropy": pa.array(derived["teacher_entropy"][index], pa.float32()),
        }).cast(KD.schema)
        validate(table, KD, where="an augment batch")
        return table


class CountTableRowsFn(beam.DoFn):
    """Counts written rows (total and per split) and passes the table on."""

    def process(self, table):
        import pyarrow.compute as pc

        yield TaggedOutput(STATS, count("rows.written", table.num_rows))
        for item in pc.value_counts(table.column("split")).to_pylist():
            yield TaggedOutput(STATS, count(f"rows.written.{item['values']}", item["counts"]))
        yield table


# --------------------------------------------------------------------------- set-up checks


def check_setup(config: AugmentConfig) -> dict[str, Any]:
    """Everything that can be checked before the pipeline starts; returns the provenance."""
    manifest = read_manifest(config.input)
    if manifest.get("schema") != UTTERANCES.name:
        raise AugmentError(f"--input {config.input}: holds '{manifest.get('schema')}', expected an utterances "
                           "dataset. Fix: pass the output of beam_jobs.preprocess.")
    unknown = sorted(set(config.paraphrase) - set(METHODS))
    if unknown:
        raise AugmentError(f"--paraphrase {unknown}: expected some of {list(METHODS)}")
    if "mlm" in config.paraphrase and not config.mlm_model:
        raise AugmentError("--paraphrase mlm needs --mlm-model DIR (a masked-LM checkpoint)")
    if "seq2seq" in config.paraphrase and not config.seq2seq_model:
        raise AugmentError("--paraphrase seq2seq needs --seq2seq-model DIR (a seq2seq checkpoint)")
    teachers = [_read_teacher(path) for path in config.teacher]
    _, teacher_config, teacher_hash = teachers[0]
    label_names = [teacher_config.id2label[i] for i in range(teacher_config.num_labels)]
    for path, (_, other, _) in zip(config.teacher[1:], teachers[1:], strict=True):
        names = [other.id2label[i] for i in range(other.num_labels)]
        if sorted(names) != sorted(label_names):
            raise AugmentError(f"--teacher {path}: its labels {names} differ from the first teacher's {label_names}; "
                               "an ensemble's members must predict the same labels. Fix: fine-tune every teacher on "
                               "the same task.")
    data_labels = distinct_values(part_files(config.input), "label")
    missing = [name for name in data_labels if name not in label_names]
    if missing:
        raise AugmentError(
            f"labels {missing} of --input are not among the teacher's labels {label_names} (config.id2label). "
            "Fix: fine-tune the teacher on these labels (kd.finetune), or preprocess with the teacher's label names."
        )
    try:
        student_hash = tokenizer_hash(storage.local_folder(config.student_tokenizer))
    except FileNotFoundError as error:
        raise AugmentError(str(error)) from error
    source = manifest.get("provenance", {})
    several = config.teacher_signals or len(config.teacher) > 1
    if config.ensemble_from:
        from beam_jobs.teacher_signals import load_signals

        members = [{"teacher": path, "weights_hash": t[2]} for path, t in zip(config.teacher, teachers, strict=True)]
        members += [load_signals(path, label_names, config.signals_key).describe() for path in config.teacher_signals]
        ensemble = ensemble_weights_from(config.ensemble_from, members)
    else:
        ensemble = fit_ensemble(config, [t[0] for t in teachers], [t[2] for t in teachers], label_names) if several else None
    return {**({"ensemble": ensemble} if ensemble else {}), "teacher_id": config.teacher[0],
            "teacher_weights_hash": teacher_hash, "label_names": label_names,
            "embedding_size": int(teacher_config.hidden_size), "student_tokenizer_hash": student_hash,
            "normalizer_hash": source.get("normalizer_hash"), "normalizer_config": source.get("normalizer_config"),
            "embedding_pooling": config.embedding_pooling, "source_dataset": config.input,
            "paraphrase": list(config.paraphrase), "filters": asdict(config.filters)}


def _read_teacher(path: str) -> tuple[str, Any, str]:
    """A ``--teacher``'s local folder, config and weights hash (an error that names it if unreadable)."""
    from transformers import AutoConfig

    try:
        folder = storage.local_folder(path)
        return folder, AutoConfig.from_pretrained(folder, trust_remote_code=False), weights_hash(folder)
    except (OSError, ValueError) as error:
        raise AugmentError(f"--teacher {path!r}: cannot read it ({error}). Fix: pass a local "
                           "save_pretrained directory of a sequence classifier.") from error


def ensemble_weights_from(dataset: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``ensemble`` of another kd / kd_token dataset's provenance, for these ``members``: the
    same checkpoints (weights hashes) and signal files (content hashes) in the same order, or an
    error saying which differ."""
    def fingerprint(member: dict[str, Any]) -> str:
        return member.get("weights_hash") or member.get("sha256") or "?"

    source = read_manifest(dataset).get("provenance", {}).get("ensemble")
    if not source:
        raise AugmentError(f"--ensemble-from {dataset}: its provenance has no ensemble. Fix: pass a dataset that "
                           "augment wrote with the same --teacher (and --teacher-signals) members.")
    theirs, ours = [fingerprint(m) for m in source["members"]], [fingerprint(m) for m in members]
    if theirs != ours:
        raise AugmentError(f"--ensemble-from {dataset}: its members {theirs} are not this run's {ours} (weights or "
                           "content hashes, in order). Fix: pass the same teachers and signal files in the same order.")
    return {**source, "members": members, "weights_from": dataset}


def fit_ensemble(config: AugmentConfig, teacher_dirs: list[str], hashes: list[str], label_names: list[str],
                 limit: int = 20_000) -> dict:
    """Validate every --teacher-signals file and fit the weights of all members (the checkpoint
    teachers, then the signal files) on the gold labels of the input's valid split (up to
    ``limit`` rows; the geometric mean, 1/N each, when it has none): the checkpoints run on those rows here,
    before the pipeline."""
    import pyarrow.compute as pc

    from beam_jobs.teacher import Teacher, TeacherEnsemble
    from beam_jobs.teacher_signals import default_weights, fit_weights, load_signals, log_softmax

    signals = [load_signals(path, label_names, config.signals_key) for path in config.teacher_signals]
    rows: list[dict[str, Any]] = []
    for path in part_files(config.input):
        table = storage.read_table(path, columns=["id", "text", "label", "split"])
        table = table.filter(pc.and_(pc.equal(table.column("split"), "valid"), pc.is_valid(table.column("label"))))
        rows += [r for r in table.to_pylist() if r["label"] in label_names]
        if len(rows) >= limit:
            break
    rows = [r for r in rows[:limit] if all(r[config.signals_key] in s.log_probs for s in signals)]
    weights = default_weights(len(teacher_dirs) + len(signals))
    if rows:
        teachers = TeacherEnsemble([Teacher(folder, device=config.device, batch_size=config.teacher_batch_size,
                                            max_length=config.teacher_max_length, pooling=config.embedding_pooling)
                                    for folder in teacher_dirs])
        outputs = teachers.run([r["text"] for r in rows])
        members = [log_softmax(m.astype(np.float64)) for m in (outputs.logits, *outputs.member_logits)]
        members += [np.stack([s.log_probs[r[config.signals_key]] for r in rows]) for s in signals]
        weights = fit_weights(members, np.array([label_names.index(r["label"]) for r in rows]))
    checkpoints = [{"teacher": path, "weights_hash": h} for path, h in zip(config.teacher, hashes, strict=True)]
    return {"members": checkpoints + [s.describe() for s in signals],
            "weights": [float(w) for w in weights], "fitted_on_valid_rows": len(rows),
            "combined": "log_softmax(sum of weight * log-probabilities)"}


def build(pipeline: beam.Pipeline, config: AugmentConfig, provenance: dict[str, Any]) -> None:
    tasks = [(path, i) for path in part_files(config.input) for i in range(storage.parquet_file(path).num_row_groups)]
    label_to_id = {name: i for i, name in enumerate(provenance["label_names"])}
    batches = (
        pipeline
        | "ListRowGroups" >> beam.Create(tasks)
        | "SpreadRowGroups" >> beam.Reshuffle()
        | "ReadUtterances" >> beam.ParDo(ReadRowGroupFn(config.batch_size)).with_outputs(STATS, main="batches")
    )
    prepared = batches.batches | "Paraphrase" >> beam.ParDo(PrepareBatchFn(config, Shared())).with_outputs(
        REJECTS, STATS, main="prepared")
    taught = prepared.prepared | "Teacher" >> RunInference(TeacherHandler(config, config.share_teacher))
    labeled = taught | "KeepAndFilter" >> beam.ParDo(KeepWithTeacherFn(config, label_to_id, provenance.get("ensemble"))).with_outputs(
        REJECTS, STATS, main="rows")
    tables = labeled.rows | "CountRows" >> beam.ParDo(CountTableRowsFn()).with_outputs(STATS, main="tables")
    _ = {
        "tables": tables.tables,
        "rejects": (prepared[REJECTS], labeled[REJECTS]) | "AllRejects" >> beam.Flatten(),
        "stats": (batches[STATS], prepared[STATS], labeled[STATS], tables[STATS]) | "AllStats" >> beam.Flatten(),
    } | "WriteDataset" >> beam_io.WriteDataset(
        folder=config.output, spec=KD, provenance=provenance, created_by=JOB_NAME, options=config.to_dict(),
        balances=BALANCES, rows_counter="rows.written", codec=config.codec, row_group_rows=config.row_group_rows)


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None):
    """Parse ``argv``, check the teacher and data, build the pipeline and run it to completion."""
    config, beam_args = beam_io.parse_job(AugmentConfig, argv, prog="python -m beam_jobs.augment", description=__doc__)
    config = replace(config, input=config.input.rstrip("/"), output=config.output.rstrip("/"))
    from beam_jobs import augment_tokens

    kinds = [augment_tokens.is_token_teacher(path) for path in config.teacher]
    if len(set(kinds)) > 1:
        raise AugmentError(f"--teacher: {[p for p, k in zip(config.teacher, kinds, strict=True) if k]} tag tokens, "
                           f"{[p for p, k in zip(config.teacher, kinds, strict=True) if not k]} do not; an ensemble's "
                           "members must do the same task. Fix: pass only token classifiers or only sentence ones.")
    token_teacher = kinds[0]
    provenance = augment_tokens.check_setup(config) if token_teacher else check_setup(config)
    beam_io.prepare_output(config.output, config.overwrite)
    builder = augment_tokens.build if token_teacher else build
    return beam_io.run_job(lambda pipeline: builder(pipeline, config, provenance), beam_args, test_pipeline)


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
