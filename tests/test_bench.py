"""The real-data benchmark's row selection: what it tests on is never trained or pretrained on."""

from __future__ import annotations

import pytest


def test_extra_test_rows_are_test_only_and_the_pool_is_train():
    # guards against --test-rows rows leaking into training (a pool or train row marked test, or
    # the other way round) and against the labeled rows' split drifting from 80/10/10
    from bench.real_data import with_splits

    labeled = [{"id": f"l{i}", "text": f"t{i}", "label": "0"} for i in range(2000)]
    extra = [{"id": f"x{i}", "text": f"x{i}", "label": "1"} for i in range(30)]
    pool = [{"id": f"p{i}", "text": f"p{i}"} for i in range(40)]
    rows, pool_rows = with_splits(labeled, extra, pool)
    assert [r["split"] for r in rows[len(labeled):]] == ["test"] * 30
    assert {r["split"] for r in pool_rows} == {"train"}
    shares = {s: sum(r["split"] == s for r in rows[:len(labeled)]) / len(labeled) for s in ("train", "valid", "test")}
    assert 0.75 < shares["train"] < 0.85 and 0.07 < shares["valid"] < 0.13 and 0.07 < shares["test"] < 0.13
    assert with_splits(labeled, extra, pool) == (rows, pool_rows)  # stable across runs


def test_the_pretraining_corpus_holds_out_the_extra_test_rows():
    # guards against a masked LM pretrained on the very sentences the benchmark then tests on
    from bench.corpora import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("needs ../shared/data")
    from bench import real_data
    from bench.pretrain_checkpoints import held_out_texts

    held = held_out_texts("small", test_rows=300)
    size = real_data.SIZES["small"]["train_rows"]
    for rows in (real_data.nsmc_rows(300, size), real_data.kor3i4k_rows(300, size)):
        assert rows and all(r["text"] in held for r in rows)
    assert not all(r["text"] in held_out_texts("small") for r in real_data.nsmc_rows(300, size))
