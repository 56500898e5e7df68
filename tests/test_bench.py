"""The real-data benchmark's row selection: what it tests on is never trained or pretrained on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


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


def test_shares_text_finds_a_sentence_inside_a_text_and_a_text_inside_a_sentence():
    # guards the hold-out of KLUE-NER dev from the pretraining corpus and the NER benchmark's NSMC
    # pool: a review that quotes a test sentence with other spacing or punctuation must be caught,
    # an unrelated one kept, and a short key (최고) must not match everything
    from bench.corpora import SharesText

    shares = SharesText(["톰 행크스면 믿고 봅니당", "이 영화 진짜 최고의 작품이다"])
    assert shares("아 진짜ㅋㅋ 톰행크스면, 믿고 봅니당!!")  # a sentence inside the text
    assert shares("진짜 최고의 작")  # the text inside a sentence
    assert not shares("배우 연기가 너무 어색해요")
    assert not shares("최고")


@given(st.text(alphabet="가나다라마바사아자차카타파하", min_size=6, max_size=30),
       st.text(alphabet="가나다라 .,!ㅋ", max_size=10), st.text(alphabet="가나다라 .,!ㅋ", max_size=10))
@settings(max_examples=200, deadline=None)
def test_shares_text_catches_every_sentence_whatever_surrounds_it(sentence, before, after):
    # the n-gram index must never miss a containment that a plain pairwise comparison would find
    from bench.corpora import SharesText

    spaced = " ".join(sentence)  # other spacing than the sentence itself
    assert SharesText([sentence])(before + spaced + after)
    assert SharesText([before + sentence + after])(sentence)


def test_klue_ner_sentences_are_plain_text():
    from bench.corpora import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("needs ../shared/data")
    from bench.corpora import klue_ner_sentences

    sentences = klue_ner_sentences()
    assert len(sentences) == 5000 and not any("<" in s and ":" in s and ">" in s for s in sentences[:50])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
@settings(max_examples=100, deadline=None)
def test_the_bootstrap_macro_f1_is_the_reports_macro_f1(pairs):
    # guards bench.kept_students against scoring macro-F1 another way than kd.evaluate does, and a
    # bootstrap that finds a gap between a model and itself
    import numpy as np

    from bench.kept_students import bootstrap_gap, macro_f1
    from kd.evaluate import classification_metrics

    labels, predicted = (np.array(column) for column in zip(*pairs, strict=True))
    probs = np.eye(4)[predicted]
    assert macro_f1(labels, predicted, 4) == pytest.approx(classification_metrics(labels, probs)["macro_f1"])
    same = bootstrap_gap(labels, predicted, predicted, 4, rounds=20)
    assert same["macro_f1_gap"] == 0 and same["ci95"] == [0.0, 0.0]


def test_a_stacked_shape_starts_from_the_shape_it_names(tmp_path):
    # guards bench.pretrain_checkpoints' stacked teacher: "@wide_mlm" must become that run's folder,
    # and a missing one must stop the run before it pretrains from nothing
    from bench.pretrain_checkpoints import SHAPES, shape_arguments

    with pytest.raises(SystemExit, match="train it first"):
        shape_arguments("stacked4_mlm", tmp_path)
    (tmp_path / "wide_mlm").mkdir()
    (tmp_path / "wide_mlm" / "config.json").write_text("{}")
    arguments = shape_arguments("stacked4_mlm", tmp_path)
    assert arguments[arguments.index("--init") + 1] == str(tmp_path / "wide_mlm")
    assert shape_arguments("student_mlm", tmp_path) == SHAPES["student_mlm"]


def test_a_pool_row_with_a_test_rows_text_is_dropped_whatever_its_spacing():
    # guards against the students seeing a test input in the unlabeled pool: short reviews such as
    # "최고" recur in NSMC, and 77 of 11,000 in-domain pool rows had a test row's text
    from bench.real_data import drop_test_texts

    rows = [{"id": "a", "text": "진짜 최고", "split": "test"}, {"id": "b", "text": "별로였다", "split": "train"}]
    pool = [{"id": "p1", "text": "진짜최고"}, {"id": "p2", "text": "별로였다"}, {"id": "p3", "text": "최고"}]
    kept, dropped = drop_test_texts(pool, rows)
    assert [r["id"] for r in kept] == ["p2", "p3"] and dropped == 1


def test_pool_sources_are_checked_before_any_work():
    # guards against a misspelt --pool source silently giving an empty or different pool
    from bench.real_data import pool_sources, task_pool

    assert pool_sources("in-domain, neutral") == ["in-domain", "neutral"]
    for spec in ("in-domian", "", "beep,nsmc"):
        with pytest.raises(SystemExit, match="--pool takes"):
            pool_sources(spec)
    in_domain, beep = [{"id": "i", "text": "t"}], [{"id": "b", "text": "u"}]
    assert task_pool(["beep", "in-domain"], "3i4k", in_domain, beep, 10) == beep + in_domain
    assert task_pool(["neutral"], "3i4k", in_domain, beep, 10) == []  # neutral reviews are NSMC's only


def test_the_neutral_reviews_have_no_label_and_are_not_the_labeled_rows():
    # guards against the neutral pool holding labeled (possibly test) reviews
    from bench.corpora import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip("needs ../shared/data")
    from bench import real_data

    neutral = real_data.nsmc_neutral_rows(10_000)
    labeled = {r["id"] for r in real_data.nsmc_rows(20_000)}
    assert len(neutral) == 5000 and not any("label" in r for r in neutral)
    assert not labeled & {r["id"] for r in neutral}


def test_transfer_variants_come_from_train_and_pool_rows_only_and_are_stable():
    # guards against a test sentence reaching training as a variant, and against variants that
    # differ between runs (the students' rows would then differ for the same flags)
    from bench.real_data import transfer_variants

    rows = [{"id": "a", "text": "이 영화 정말 재밌다", "split": "train", "label": "1"},
            {"id": "t", "text": "배우 연기가 너무 어색해요", "split": "test", "label": "0"},
            {"id": "p", "text": "시간 아까운 영화 였음", "split": "train"}]
    variants = transfer_variants(rows, 2)
    assert variants == transfer_variants(rows, 2)
    assert {v["id"].split("~")[0] for v in variants} == {"a", "p"}
    assert all(v["split"] == "train" and "label" not in v for v in variants)
    assert len({v["id"] for v in variants}) == len(variants)
    assert all(v["text"] not in {r["text"] for r in rows} for v in variants)


def test_transfer_variants_without_test_rows_is_refused(monkeypatch):
    # guards against a flag that would silently do nothing: without --test-rows the splits are only
    # drawn inside preprocess, so no row could be varied safely
    import sys

    from bench import real_data

    monkeypatch.setattr(sys, "argv", ["real_data", "--smoke", "--only", "nsmc", "--transfer-variants", "2"])
    with pytest.raises(SystemExit, match="needs --test-rows"):
        real_data.main()


def test_the_ceiling_scores_students_and_the_ensemble_as_the_evaluation_does(tmp_path):
    # guards bench.ensemble_ceiling against scoring a student on other rows, another padding or
    # another order than kd.evaluate does, and against reading the ensemble from the wrong column
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from bench.ensemble_ceiling import ceiling, original_rows, student_log_probs
    from kd.data import open_kd_dataset
    from kd.evaluate import kd_split_metrics, predict_kd_split
    from tests.kd_fixtures import make_kd_shards, make_teacher, make_tokenizer

    tokenizer = make_tokenizer(tmp_path / "tok")
    task = tmp_path / "kept" / "nsmc"
    torch.manual_seed(3)
    make_teacher(task / "student-ens+aug-0", len(tokenizer))
    make_kd_shards(task / "kd-ens", tmp_path / "tok", rows=160)
    found = ceiling(task, "ens+aug")["accuracy"]
    model = AutoModelForSequenceClassification.from_pretrained(task / "student-ens+aug-0")
    opened = open_kd_dataset(str(task / "kd-ens"))
    for split in ("valid", "test"):
        expected = kd_split_metrics(predict_kd_split(model, opened, split, device=torch.device("cpu")))
        assert found["student-ens+aug-0"][f"{split}_accuracy"] == pytest.approx(expected["student"]["accuracy"])
        assert found["ensemble (as the shards carry it)"][f"{split}_accuracy"] == pytest.approx(
            expected["teacher"]["accuracy"])
        assert found["students' mean"][f"{split}_accuracy"] == found["student-ens+aug-0"][f"{split}_accuracy"]
    # row for row (as multisets: the evaluation reads rows in bucket order), the same probabilities
    ours = np.exp(student_log_probs(task / "student-ens+aug-0", original_rows(task / "kd-ens", "test")))[:, 1]
    theirs = predict_kd_split(model, opened, "test", device=torch.device("cpu"))["probs"][:, 1]
    np.testing.assert_allclose(np.sort(ours), np.sort(theirs), atol=1e-5)


def test_a_ceiling_teacher_scores_a_batch_as_it_scores_each_text_alone(tmp_path):
    # guards bench.ensemble_ceiling's teachers against padding or truncation changing their scores
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bench.ensemble_ceiling import teacher_log_probs
    from tests.kd_fixtures import TEXTS, make_tokenizer_and_teacher

    root = make_tokenizer_and_teacher(tmp_path)
    texts = [t for group in TEXTS.values() for t in group]
    batched = teacher_log_probs(root / "teacher", texts, batch_size=4)
    tokenizer = AutoTokenizer.from_pretrained(root / "teacher")
    model = AutoModelForSequenceClassification.from_pretrained(root / "teacher").eval()
    with torch.no_grad():
        alone = np.concatenate([torch.log_softmax(model(**tokenizer([t], return_tensors="pt")).logits, -1).numpy()
                                for t in texts])
    assert len({len(tokenizer(t)["input_ids"]) for t in texts}) > 1  # the batches are padded
    np.testing.assert_allclose(batched, alone, atol=1e-5)
