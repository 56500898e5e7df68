"""Reading malmoi Parquet datasets for training: validation, streaming, fixed-shape batches.

Two ways in:

* :class:`KDShardDataset` — a ``torch.utils.data.IterableDataset`` over kd shards, one row
  (a dict of numpy arrays) at a time, rank- and worker-aware, plus :func:`collate_kd`, for
  users who feed malmoi shards to their own loops::

      dataset = KDShardDataset("out/kd", split="train", shuffle_seed=0)
      loader = torch.utils.data.DataLoader(dataset, batch_size=64, collate_fn=collate_kd)

* :class:`BucketBatches` — what malmoi's own loop uses: streams row groups, shuffles within a
  buffer, groups rows by length into a few fixed shapes (``buckets``) and a fixed batch size
  (padding rows carry ``weight == 0``), so a CUDA graph per bucket can be replayed; exactly
  resumable from ``(epoch, batches_consumed)``.

:func:`open_kd_dataset` validates schema and provenance when a dataset is opened and says
exactly what does not match.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from schemas import KD, KD_PROVENANCE_KEYS, UTTERANCES, SchemaMismatchError, read_manifest, storage
from schemas.dataset import DatasetSpec, distinct_values, part_files, validate

LOG = logging.getLogger("kd.data")

#: Sequence-length shapes. Finer steps than 16/32/48/64/128 cut padding ~13% and measured
#: 6% faster on an H200 (docs/benchmarks.md) at the same warm-up.
DEFAULT_BUCKETS = (8, 16, 24, 32, 40, 48, 64, 96, 128)


class ProvenanceMismatchError(ValueError):
    """A dataset was made with another teacher, tokenizer, label set or embedding size."""


@dataclass(frozen=True)
class OpenedDataset:
    folder: str
    spec: DatasetSpec
    manifest: dict[str, Any]
    files: tuple[str, ...]
    #: rows the readers left out, by reason (``nonfinite_teacher``: NaN/inf teacher logits or
    #: embedding, counted once per epoch read)
    skipped: Counter = field(default_factory=Counter, compare=False)

    @property
    def provenance(self) -> dict[str, Any]:
        return self.manifest.get("provenance", {})


def open_dataset(folder: str, spec: DatasetSpec) -> OpenedDataset:
    """Open a finished dataset folder and check its manifest and every file's schema."""
    manifest = read_manifest(folder)
    if manifest.get("schema") != spec.name or not spec.reads(manifest.get("schema_version")):
        raise SchemaMismatchError(
            f"'{folder}' holds schema '{manifest.get('schema')}' v{manifest.get('schema_version')}, "
            f"expected '{spec.name}' v{spec.version}. Fix: pass the output of the job that writes "
            f"{spec.name} data ({'beam_jobs.augment' if spec.name == 'kd' else 'beam_jobs.preprocess'})."
        )
    files = tuple(part_files(folder))
    listed = manifest.get("files")
    if listed is not None:
        found = sorted(path.rsplit("/", 1)[-1] for path in files)
        if found != sorted(listed):
            extra, missing = sorted(set(found) - set(listed)), sorted(set(listed) - set(found))
            raise SchemaMismatchError(
                f"'{folder}': its part files are not the ones its manifest lists (extra {extra[:5]}, missing "
                f"{missing[:5]}). Fix: remove files that were added after the job finished, or re-run the job.")
    for path in files:
        validate(storage.read_schema(path).empty_table(), spec, where=f"file '{path}'",
                 version=manifest.get("schema_version"))
    return OpenedDataset(folder, spec, manifest, files)


def open_kd_dataset(folder: str, expect: Mapping[str, Any] | None = None) -> OpenedDataset:
    """Open kd shards; with ``expect``, refuse any provenance value that differs (a frozenset: that is
    not one of its values).

    ``expect`` may hold any of ``label_names``, ``teacher_id``, ``teacher_weights_hash``,
    ``student_tokenizer_hash``, ``normalizer_hash``, ``embedding_size``.
    """
    opened = open_dataset(folder, KD)
    provenance = opened.provenance
    missing = [k for k in KD_PROVENANCE_KEYS if k not in provenance]
    if missing:
        raise ProvenanceMismatchError(
            f"kd dataset '{folder}': its manifest lacks provenance {missing}. Fix: re-run beam_jobs.augment."
        )
    problems = provenance_problems(provenance, expect or {})
    problems += _value_problems(opened, len(provenance["label_names"]), int(provenance["embedding_size"]))
    if problems:
        raise ProvenanceMismatchError(
            f"kd dataset '{folder}' does not match this run: " + "; ".join(problems)
            + ". Fix: re-run beam_jobs.augment with this teacher and student tokenizer, or train a "
            "student that matches the data (same label set and embedding size)."
        )
    return opened


def _value_problems(opened: OpenedDataset, num_labels: int, embedding_size: int) -> list[str]:
    """Values the schema cannot rule out: labels outside -1..C-1, logits or embeddings of another width."""
    problems = []
    for path in opened.files:
        # batch by batch: the embeddings are most of a shard's bytes, so memory stays bounded
        for batch in storage.parquet_file(path).iter_batches(batch_size=65_536,
                                                       columns=["label", "teacher_logits", "teacher_embedding"]):
            low, high = pc.min_max(batch.column("label")).values()
            if low.as_py() < -1 or high.as_py() >= num_labels:
                problems.append(f"file '{path}': labels from {low} to {high}, expected -1 (unlabeled) .. "
                                f"{num_labels - 1}")
            for column, width in (("teacher_logits", num_labels), ("teacher_embedding", embedding_size)):
                lengths = pc.min_max(pc.list_value_length(batch.column(column))).values()
                if {v.as_py() for v in lengths} != {width}:
                    problems.append(f"file '{path}': {column} rows of {lengths[0]}..{lengths[1]} values, "
                                    f"expected {width}")
            if problems:
                return problems
    return problems


def check_token_ids(opened: OpenedDataset, vocab_size: int) -> None:
    """Refuse shards whose ``input_ids`` fall outside ``0 .. vocab_size - 1`` (another tokenizer's
    ids would index past the embedding table: an opaque CUDA/IndexError otherwise)."""
    for path in opened.files:
        ids = pc.list_flatten(storage.read_table(path, columns=["input_ids"]).column("input_ids"))
        if len(ids) == 0:
            continue
        low, high = (v.as_py() for v in pc.min_max(ids).values())
        if low < 0 or high >= vocab_size:
            raise ProvenanceMismatchError(
                f"file '{path}': input_ids from {low} to {high}, but the student tokenizer has {vocab_size} ids. "
                "Fix: pass the --tokenizer the shards were made with, or re-run beam_jobs.augment with this one.")


def _normalized(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def provenance_problems(provenance: Mapping[str, Any], expect: Mapping[str, Any]) -> list[str]:
    """Each ``expect`` value the provenance does not have, in words (None: not checked; a
    frozenset: any of its values will do)."""
    return [f"{key}: the data has {provenance.get(key)!r}, expected {value!r}"
            for key, value in expect.items()
            if value is not None and (provenance.get(key) not in value if isinstance(value, frozenset)
                                      else _normalized(provenance.get(key)) != _normalized(value))]


# --------------------------------------------------------------------------- streaming chunks


@dataclass
class Chunk:
    """Rows of one or more row groups, columnar: ragged ``input_ids`` as values + offsets."""

    values: np.ndarray  # int32, all token ids back to back
    offsets: np.ndarray  # int64, (n + 1,)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # per-row arrays (n, ...) or (n,)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, index: np.ndarray) -> Chunk:
        lengths = self.lengths[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(index):
            gather = (np.repeat(self.offsets[:-1][index] - offsets[:-1], lengths) + np.arange(offsets[-1]))
            values = self.values[gather]
        else:
            values = self.values[:0]
        return Chunk(values, offsets, {k: v[index] for k, v in self.columns.items()})

    @staticmethod
    def from_lists(ids: list[list[int]], columns: dict[str, np.ndarray] | None = None) -> Chunk:
        """A chunk from one token-id list per row."""
        lengths = np.fromiter((len(row) for row in ids), np.int64, len(ids))
        offsets = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.fromiter((t for row in ids for t in row), np.int32, int(offsets[-1]))
        return Chunk(values, offsets, columns or {})

    @staticmethod
    def concat(chunks: list[Chunk]) -> Chunk:
        chunks = [c for c in chunks if len(c)]
        if not chunks:
            return Chunk(np.zeros(0, np.int32), np.zeros(1, np.int64), {})
        if len(chunks) == 1:
            return chunks[0]
        offsets = [chunks[0].offsets]
        base = chunks[0].offsets[-1]
        for c in chunks[1:]:
            offsets.append(c.offsets[1:] + base)
            base += c.offsets[-1]
        return Chunk(np.concatenate([c.values for c in chunks]), np.concatenate(offsets),
                     {k: np.concatenate([c.columns[k] for c in chunks]) for k in chunks[0].columns})


def _list_to_matrix(array: pa.ChunkedArray | pa.Array, dtype: Any) -> np.ndarray:
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    if len(array) == 0:
        return np.zeros((0, 0), dtype=dtype)
    flat = array.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return flat.reshape(len(array), -1)


def table_to_chunk(table: pa.Table, columns: dict[str, Any]) -> Chunk:
    """A table with ``input_ids`` (list<int32>) and per-row columns -> a :class:`Chunk`."""
    ids = table.column("input_ids").combine_chunks()
    values = ids.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    offsets = ids.offsets.to_numpy().astype(np.int64) - ids.offsets[0].as_py()
    out = {}
    for name, dtype in columns.items():
        column = table.column(name)
        if pa.types.is_list(column.type):
            out[name] = _list_to_matrix(column, dtype)
        else:
            out[name] = column.to_numpy().astype(dtype, copy=False)
    return Chunk(values, offsets, out)


def row_keys(chunk: Chunk) -> np.ndarray:
    """A 64-bit key per row from its token ids: the same row read twice, in any order or batch,
    gets the same key, so two models' predictions on a split can be paired row by row."""
    import hashlib

    values, offsets = chunk.values, chunk.offsets
    return np.array([int.from_bytes(hashlib.blake2b(values[a:b].tobytes(), digest_size=8).digest(), "little",
                                    signed=True) for a, b in zip(offsets[:-1], offsets[1:], strict=True)], np.int64)


KD_COLUMNS = {"label": np.int64, "teacher_logits": np.float32, "teacher_embedding": np.float32}


def iter_row_groups(files: tuple[str, ...], seed: int | None, epoch: int) -> Iterator[tuple[str, int]]:
    """(file, row group) pairs, in a permuted order per epoch when ``seed`` is given."""
    groups = [(path, index) for path in files for index in range(storage.parquet_file(path).num_row_groups)]
    if seed is not None:
        order = np.random.default_rng([seed, epoch]).permutation(len(groups))
        groups = [groups[i] for i in order]
    yield from groups


def row_group_tables(files: tuple[str, ...], columns: list[str], split: str | None, seed: int | None, epoch: int,
                     keep: Iterable[Callable[[pa.Table], Any]] = ()) -> Iterator[pa.Table]:
    """Each row group (in :func:`iter_row_groups` order) read with ``columns``, filtered to ``split``
    and by each ``keep`` mask; empty results are skipped."""
    for path, index in iter_row_groups(files, seed, epoch):
        table = storage.parquet_file(path).read_row_group(index, columns=columns)
        if split is not None:
            table = table.filter(pc.equal(table.column("split"), split))
        for mask in keep:
            table = table.filter(mask(table))
        if table.num_rows:
            yield table


def unlabeled_keep_probability(labeled: int, unlabeled: int, share: float) -> float:
    """The chance that an epoch keeps an unlabeled row, so that unlabeled rows make up (in
    expectation) at most ``share`` of the epoch's rows; every labeled row is always kept. A
    pseudo-labelled pool many times the gold set's size would otherwise crowd the gold rows out of
    a step budget. ``share`` 1 keeps every row, 0 none of the unlabeled ones."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"unlabeled share: expected a fraction in [0, 1], found {share!r}")
    if share >= 1.0 or unlabeled == 0:
        return 1.0
    return min(1.0, share / (1.0 - share) * labeled / unlabeled)


def has_label(table: pa.Table) -> Any:
    """Rows of a kd-shard table with a gold class (``label`` ≥ 0)."""
    return pc.greater_equal(table.column("label"), 0)


def count_labeled(opened: OpenedDataset, split: str | None, column: str,
                  is_labeled: Callable[[pa.Table], Any]) -> tuple[int, int]:
    """``(labeled, unlabeled)`` rows of ``split``, reading only ``split`` and ``column``."""
    labeled = total = 0
    for table in row_group_tables(opened.files, ["split", column], split, None, 0):
        total += table.num_rows
        labeled += int(pc.sum(pc.cast(is_labeled(table), pa.int64())).as_py() or 0)
    return labeled, total - labeled


def sample_unlabeled(is_labeled: Callable[[pa.Table], Any], probability: float, seed: int | None,
                     epoch: int) -> list[Callable[[pa.Table], Any]]:
    """A ``keep`` mask for :func:`row_group_tables`: every labeled row, and each unlabeled one
    with ``probability`` — a fresh draw per epoch, the same for a given ``(seed, epoch)`` (so a
    resumed run and every rank see the same rows). No mask at all when everything is kept."""
    if probability >= 1.0:
        return []
    rng = np.random.default_rng([0 if seed is None else seed, epoch, 2])  # not BucketBatches' stream
    return [lambda t: pc.or_(is_labeled(t), pa.array(rng.random(t.num_rows) < probability))]


def kd_chunks(opened: OpenedDataset, split: str | None, seed: int | None, epoch: int,
              columns: Mapping[str, Any] = KD_COLUMNS, originals_only: bool = False,
              labeled_only: bool = False, unlabeled_keep: float = 1.0) -> Iterator[Chunk]:
    """One chunk per row group of kd shards, filtered to ``split``; only ``columns`` are read
    (leave ``teacher_embedding`` out when no embedding loss is on: it is most of the bytes).
    ``originals_only`` drops the paraphrase rows, ``labeled_only`` the rows without a gold label;
    ``unlabeled_keep`` keeps each of those with that chance per epoch (:func:`sample_unlabeled`)."""
    columns = dict(columns)
    if labeled_only or unlabeled_keep < 1.0:
        columns.setdefault("label", np.int64)
    keep = ([lambda t: pc.equal(t.column("origin"), "original")] if originals_only else []) + (
        [has_label] if labeled_only else sample_unlabeled(has_label, unlabeled_keep, seed, epoch))
    for table in row_group_tables(opened.files, ["input_ids", "split", "origin", *columns], split, seed, epoch, keep):
        yield _finite_rows(table_to_chunk(table, columns), opened)


def _finite_rows(chunk: Chunk, opened: OpenedDataset) -> Chunk:
    """The chunk without rows whose teacher outputs are NaN/inf: such a row is left out (and
    counted), instead of voiding every batch it would be in."""
    finite = np.ones(len(chunk), bool)
    for name in ("teacher_logits", "teacher_embedding"):
        if name in chunk.columns:
            finite &= np.isfinite(chunk.columns[name]).reshape(len(chunk), -1).all(axis=1)
    bad = int(len(chunk) - finite.sum())
    if not bad:
        return chunk
    if not opened.skipped["nonfinite_teacher"]:
        LOG.warning("%s: rows with NaN/inf teacher outputs are left out of training (counted in the summary)",
                    opened.folder)
    opened.skipped["nonfinite_teacher"] += bad
    return chunk.take(np.flatnonzero(finite))


def utterance_chunks(opened: OpenedDataset, split: str | None, tokenizer: Any, max_length: int,
                     label_to_id: Mapping[str, int] | None, seed: int | None, epoch: int,
                     labeled_only: bool = False) -> Iterator[Chunk]:
    """Chunks of an utterances dataset, tokenized with a Hugging Face tokenizer.

    ``label`` is the label's id (-1 when unlabeled or unknown to ``label_to_id``).
    """
    keep = [lambda t: pc.is_valid(t.column("label"))] if labeled_only else []
    for table in row_group_tables(opened.files, ["text", "label", "split"], split, seed, epoch, keep):
        encoded = tokenizer(table.column("text").to_pylist(), truncation=True, max_length=max_length,
                            return_attention_mask=False)["input_ids"]
        names = table.column("label").to_pylist()
        labels = np.array([(label_to_id or {}).get(n, -1) if n is not None else -1 for n in names], np.int64)
        yield Chunk.from_lists(encoded, {"label": labels})


# --------------------------------------------------------------------------- fixed-shape batches


def bucket_of(lengths: np.ndarray, buckets: tuple[int, ...]) -> np.ndarray:
    """Index of the smallest bucket that holds each length (longer rows go to the last)."""
    return np.minimum(np.searchsorted(np.asarray(buckets), lengths, side="left"), len(buckets) - 1)


def pad_batch(chunk: Chunk, index: np.ndarray, length: int, batch_size: int, pad_id: int) -> dict[str, np.ndarray]:
    """Rows ``index`` of ``chunk`` as fixed (batch_size, length) arrays; missing rows get weight 0."""
    sub = chunk.take(index)
    lengths = np.minimum(sub.lengths, length)
    positions = np.arange(length)
    mask = positions[None, :] < lengths[:, None]
    gather = np.where(mask, sub.offsets[:-1, None] + positions[None, :], 0)
    ids = np.where(mask, sub.values[gather] if len(sub.values) else 0, pad_id)
    rows = len(index)
    out = {"input_ids": np.full((batch_size, length), pad_id, np.int64),
           "attention_mask": np.zeros((batch_size, length), np.int64),
           "weight": np.zeros(batch_size, np.float32)}
    out["input_ids"][:rows] = ids
    out["attention_mask"][:rows] = mask
    out["weight"][:rows] = 1.0
    # padding rows attend to their first position: a row with nothing to attend to makes CUDA's
    # attention kernels return NaN, which voided each epoch's last (partial) step on a GPU
    # (weight 0 keeps these rows out of every loss and metric)
    out["attention_mask"][rows:, 0] = 1
    for name, values in sub.columns.items():
        if name.startswith("token_"):  # per-token values (classes, targets): cut or padded to this length
            full = np.full((batch_size, length, *values.shape[2:]), -100 if values.dtype.kind == "i" else 0,
                           values.dtype)
            width = min(length, values.shape[1])
            full[:rows, :width] = values[:, :width]
            out[name] = full
            continue
        full = np.zeros((batch_size, *values.shape[1:]), values.dtype)
        if name == "label":
            full[:] = -1
        full[:rows] = values
        out[name] = full
    return out


class BucketBatches:
    """Deterministic, resumable, rank-aware fixed-shape batches from a chunk stream.

    For epoch ``e`` the order depends only on ``(seed, e)``. With ``world_size > 1`` every rank
    reads the same stream and takes every ``world_size``-th batch; the last group is filled
    with weight-0 batches so all ranks run the same number of steps (DDP needs that).
    """

    def __init__(self, chunks: Callable[[int], Iterator[Chunk]], *, batch_size: int, buckets: tuple[int, ...],
                 pad_id: int, seed: int, shuffle_rows: int = 65_536, rank: int = 0, world_size: int = 1) -> None:
        self.chunks = chunks
        self.batch_size = batch_size
        self.buckets = tuple(buckets)
        self.pad_id = pad_id
        self.seed = seed
        self.shuffle_rows = shuffle_rows
        self.rank = rank
        self.world_size = world_size

    def _global_batches(self, epoch: int) -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng([self.seed, epoch, 1])
        pending: list[Chunk] = []
        pending_rows = 0
        leftovers = Chunk.concat([])
        for chunk in self.chunks(epoch):
            pending.append(chunk)
            pending_rows += len(chunk)
            if pending_rows < self.shuffle_rows:
                continue
            leftovers = yield from self._emit(Chunk.concat([leftovers, *pending]), rng, final=False)
            pending, pending_rows = [], 0
        yield from self._emit(Chunk.concat([leftovers, *pending]), rng, final=True)

    def _emit(self, chunk: Chunk, rng: np.random.Generator, final: bool):
        """Yield full batches per bucket in random order; return the rows that wait for more."""
        if not len(chunk):
            return chunk
        order = rng.permutation(len(chunk))
        which = bucket_of(chunk.lengths[order], self.buckets)
        plan: list[tuple[int, np.ndarray]] = []
        keep: list[np.ndarray] = []
        for b in range(len(self.buckets)):
            rows = order[which == b]
            full = len(rows) // self.batch_size * self.batch_size
            plan += [(b, rows[i:i + self.batch_size]) for i in range(0, full, self.batch_size)]
            if full < len(rows):
                if final:
                    plan.append((b, rows[full:]))
                else:
                    keep.append(rows[full:])
        for position in rng.permutation(len(plan)):
            b, rows = plan[position]
            yield pad_batch(chunk, np.sort(rows), self.buckets[b], self.batch_size, self.pad_id)
        return chunk.take(np.concatenate(keep)) if keep else Chunk.concat([])

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """This rank's batches of ``epoch``, after skipping ``skip`` of them (resume)."""
        group: list[dict[str, np.ndarray]] = []
        produced = 0
        for batch in self._global_batches(epoch):
            group.append(batch)
            if len(group) < self.world_size:
                continue
            if produced >= skip:
                yield group[self.rank]
            produced += 1
            group = []
        if group:
            while len(group) < self.world_size:
                empty = {k: v.copy() for k, v in group[-1].items()}
                empty["weight"][:] = 0.0
                group.append(empty)
            if produced >= skip:
                yield group[self.rank]


def to_tensors(batch: dict[str, np.ndarray], device: torch.device, pin: bool) -> dict[str, torch.Tensor]:
    out = {}
    for name, value in batch.items():
        tensor = torch.from_numpy(value)
        if pin:
            tensor = tensor.pin_memory()
        out[name] = tensor.to(device, non_blocking=pin)
    return out


class Prefetcher:
    """Builds the next batches on a background thread; yields CPU tensors, pinned when
    ``device`` is CUDA so the loop's copies to the GPU are asynchronous."""

    def __init__(self, batches: Iterator[dict[str, np.ndarray]], device: torch.device, depth: int = 4) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._pin = device.type == "cuda"
        self._thread = threading.Thread(target=self._fill, args=(batches,), daemon=True)
        self._thread.start()

    def _fill(self, batches) -> None:
        try:
            for batch in batches:
                self._queue.put(("batch", {k: torch.from_numpy(v).pin_memory() if self._pin else torch.from_numpy(v)
                                           for k, v in batch.items()}))
        except BaseException as error:  # surfaced in the training thread
            self._queue.put(("error", error))
            return
        self._queue.put(("end", None))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            kind, item = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item


# --------------------------------------------------------------------------- for users' own loops


class KDShardDataset(torch.utils.data.IterableDataset):
    """kd shards as rows (dicts of numpy arrays), for your own DataLoader.

    Rank-aware (``torch.distributed`` rank / world size when initialized) and worker-aware:
    row groups are dealt round-robin to ``rank * num_workers + worker`` so no two readers
    overlap. Validates schema and provenance when constructed (``expect``: see
    :func:`open_kd_dataset`). With ``shuffle_seed`` the row-group order changes per
    :meth:`set_epoch`.
    """

    def __init__(self, folder: str, split: str | None = "train", *, expect: Mapping[str, Any] | None = None,
                 shuffle_seed: int | None = None) -> None:
        super().__init__()
        self.opened = open_kd_dataset(folder, expect)
        self.split = split
        self.shuffle_seed = shuffle_seed
        self.epoch = 0

    @property
    def label_names(self) -> list[str]:
        return list(self.opened.provenance["label_names"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        reader, readers = rank * workers + worker, world * workers
        columns = ["id", "input_ids", "label", "split", "teacher_logits", "teacher_embedding"]
        for index, (path, group) in enumerate(iter_row_groups(self.opened.files, self.shuffle_seed, self.epoch)):
            if index % readers != reader:
                continue
            table = storage.parquet_file(path).read_row_group(group, columns=columns)
            if self.split is not None:
                table = table.filter(pc.equal(table.column("split"), self.split))
            chunk = table_to_chunk(table, KD_COLUMNS)
            ids = table.column("id").to_pylist()
            for i in range(len(chunk)):
                yield {"id": ids[i], "input_ids": chunk.values[chunk.offsets[i]:chunk.offsets[i + 1]],
                       **{k: v[i] for k, v in chunk.columns.items()}}


def collate_kd(rows: list[dict[str, Any]], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of :class:`KDShardDataset` rows to the longest one; returns tensors.

    Keys: ``input_ids``, ``attention_mask`` (B, L) int64; ``label`` (B,) int64 (-1 unlabeled);
    ``teacher_logits`` (B, C) and ``teacher_embedding`` (B, D) float32; ``weight`` (B,) ones.
    """
    length = max(len(r["input_ids"]) for r in rows)
    ids = np.full((len(rows), length), pad_token_id, np.int64)
    mask = np.zeros((len(rows), length), np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row["input_ids"])] = row["input_ids"]
        mask[i, :len(row["input_ids"])] = 1
    return {
        "input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
        "label": torch.tensor([int(r["label"]) for r in rows], dtype=torch.int64),
        "teacher_logits": torch.from_numpy(np.stack([r["teacher_logits"] for r in rows]).astype(np.float32)),
        "teacher_embedding": torch.from_numpy(np.stack([r["teacher_embedding"] for r in rows]).astype(np.float32)),
        "weight": torch.ones(len(rows)),
    }


def utterance_labels(opened: OpenedDataset) -> list[str]:
    """The sorted label names found in an utterances dataset (labeled rows only)."""
    return distinct_values(opened.files, "label")


__all__ = ["DEFAULT_BUCKETS", "KD", "UTTERANCES", "BucketBatches", "Chunk", "KDShardDataset", "Prefetcher",
           "ProvenanceMismatchError", "collate_kd", "open_dataset", "open_kd_dataset", "to_tensors"]
