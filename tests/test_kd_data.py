"""kd shard reading. Protects against: shapes that vary (breaking CUDA graphs), non-deterministic or non-
resumable order, ranks that overlap or lose rows, and provenance mismatches accepted silently."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from kd.data import (
    BucketBatches,
    KDShardDataset,
    ProvenanceMismatchError,
    collate_kd,
    kd_chunks,
    open_kd_dataset,
    unlabeled_keep_probability,
)
from schemas import SchemaMismatchError
from tests.kd_fixtures import LABELS, make_kd_shards, make_tokenizer


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("kd")
    make_tokenizer(root / "tok")
    make_kd_shards(root / "kd", root / "tok", rows=200)
    return root


def batches(opened, **kwargs):
    defaults = dict(batch_size=8, buckets=(8, 16, 32), pad_id=0, seed=3, shuffle_rows=64)
    defaults.update(kwargs)
    return BucketBatches(lambda epoch: kd_chunks(opened, "train", 3, epoch), **defaults)


def test_batches_have_fixed_shapes_and_keep_every_row(shards):
    opened = open_kd_dataset(str(shards / "kd"))
    seen = 0
    for batch in batches(opened).epoch(0):
        assert batch["input_ids"].shape[0] == 8 and batch["input_ids"].shape[1] in (8, 16, 32)
        assert batch["teacher_logits"].shape == (8, 2) and batch["teacher_embedding"].shape == (8, 32)
        real = batch["weight"] > 0
        # padding rows attend to exactly their first position: never a fully masked row, which
        # gives NaN in CUDA attention and voided every epoch's last step on a GPU
        assert (batch["attention_mask"][~real][:, 0] == 1).all()
        assert (batch["attention_mask"][~real][:, 1:] == 0).all()
        seen += int(real.sum())
    assert seen == opened.manifest["rows_per_split"]["train"]


def test_order_is_deterministic_per_epoch_and_resume_skips_exactly(shards):
    opened = open_kd_dataset(str(shards / "kd"))
    first = [b["input_ids"] for b in batches(opened).epoch(1)]
    again = [b["input_ids"] for b in batches(opened).epoch(1)]
    other = [b["input_ids"] for b in batches(opened).epoch(2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=False))
    resumed = [b["input_ids"] for b in batches(opened).epoch(1, skip=3)]
    assert all(np.array_equal(a, b) for a, b in zip(first[3:], resumed, strict=True))


def test_ranks_get_disjoint_rows_and_the_same_number_of_batches(shards):
    opened = open_kd_dataset(str(shards / "kd"))
    per_rank = [list(batches(opened, rank=r, world_size=2).epoch(0)) for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1])
    # teacher logits carry per-row noise in the fixture, so they identify rows (texts repeat)
    rows = [{tuple(row) for b in bs for row in b["teacher_logits"][b["weight"] > 0].tolist()} for bs in per_rank]
    total = sum(int((b["weight"] > 0).sum()) for bs in per_rank for b in bs)
    assert rows[0] and rows[1] and not rows[0] & rows[1]  # disjoint
    assert len(rows[0] | rows[1]) == total == opened.manifest["rows_per_split"]["train"]  # and nothing lost


def test_provenance_mismatches_are_refused_with_the_reason(shards):
    folder = str(shards / "kd")
    with pytest.raises(ProvenanceMismatchError, match="embedding_size: the data has 32, expected 768"):
        open_kd_dataset(folder, {"embedding_size": 768})
    with pytest.raises(ProvenanceMismatchError, match="teacher_weights_hash"):
        open_kd_dataset(folder, {"teacher_weights_hash": "abc"})
    with pytest.raises(ProvenanceMismatchError, match="label_names"):
        open_kd_dataset(folder, {"label_names": ["neg", "neu", "pos"]})
    open_kd_dataset(folder, {"label_names": LABELS, "embedding_size": 32})


def test_an_utterances_folder_is_not_kd(tmp_path):
    from tests.conftest import ROOT, run_preprocess

    run_preprocess([ROOT / "data" / "samples" / "generic" / "chat.txt"], tmp_path / "utt", "--runner", "FnApiRunner")
    with pytest.raises(SchemaMismatchError, match="holds schema 'utterances' v2, expected 'kd' v1"):
        open_kd_dataset(str(tmp_path / "utt"))


def test_iterable_dataset_with_dataloader_and_collate(shards):
    dataset = KDShardDataset(str(shards / "kd"), split="train", shuffle_seed=0)
    assert dataset.label_names == LABELS
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, collate_fn=collate_kd)
    batch = next(iter(loader))
    assert batch["input_ids"].shape[0] == 16 and batch["attention_mask"].dtype == torch.int64
    assert batch["teacher_logits"].shape == (16, 2) and set(batch["label"].tolist()) <= {-1, 0, 1}
    total = sum(len(b["label"]) for b in loader)
    assert total == dataset.opened.manifest["rows_per_split"]["train"]


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.floats(0, 1))
def test_the_unlabeled_share_is_a_ceiling_and_gold_rows_are_never_thinned(labeled, unlabeled, share):
    # guards against a pool that still crowds out the gold rows, or a share that drops more
    # unlabeled rows than it needs to
    keep = unlabeled_keep_probability(labeled, unlabeled, share)
    assert 0.0 <= keep <= 1.0
    kept = keep * unlabeled
    if labeled + kept:
        assert kept / (labeled + kept) <= share + 1e-9 or keep == 1.0
    if keep < 1.0 and labeled + kept:  # thinned: exactly to the share, not below it
        assert abs(kept / (labeled + kept) - share) < 1e-6
    assert unlabeled_keep_probability(labeled, unlabeled, 1.0) == 1.0


def test_unlabeled_rows_are_sampled_afresh_per_epoch_and_reproducibly(shards):
    # guards against a sampled pool that differs between a run and its resume (or between ranks),
    # never changes across epochs, or loses gold rows
    opened = open_kd_dataset(str(shards / "kd"))

    def rows(epoch, keep):
        chunks = list(kd_chunks(opened, "train", 3, epoch, {"label": np.int64, "teacher_logits": np.float32},
                                unlabeled_keep=keep))
        return [(int(label), tuple(logits)) for c in chunks for label, logits
                in zip(c.columns["label"], c.columns["teacher_logits"].tolist(), strict=True)]

    every = rows(0, 1.0)
    gold = {r for r in every if r[0] >= 0}
    pool = {r for r in every if r[0] < 0}
    assert gold and len(pool) >= 20
    first, again, other = set(rows(1, 0.5)), set(rows(1, 0.5)), set(rows(2, 0.5))
    assert first == again  # the same (seed, epoch): the same rows
    assert gold <= first and gold <= other  # every gold row, every epoch
    assert first - gold != other - gold  # a fresh draw of the pool each epoch
    assert 0 < len(first - gold) < len(pool)
    assert {r for r in rows(1, 0.0) if r[0] < 0} == set()
