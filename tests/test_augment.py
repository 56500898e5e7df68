"""The augment job with tiny models built from configs. Protects against: teacher signals that differ from a
direct forward pass, paraphrases leaking across splits or losing their parent, filters that do not filter, and
silent acceptance of a wrong teacher or NaN outputs."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForMaskedLM,
)

from beam_jobs import augment
from beam_jobs.paraphrase import (
    ColloquialParaphraser,
    EdaParaphraser,
    FilterConfig,
    _distinct,
    filter_candidates,
    speech_level_shift,
)
from kd.data import open_kd_dataset
from tests.conftest import run_preprocess
from tests.kd_fixtures import LABELS, TEXTS, make_teacher, make_tokenizer

RUNNER = ["--runner", "FnApiRunner"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    tokenizer = make_tokenizer(root / "tok")
    teacher = make_teacher(root / "teacher", len(tokenizer))
    tokenizer.save_pretrained(root / "teacher")
    del teacher
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(root / "mlm")
    tokenizer.save_pretrained(root / "mlm")
    BartForConditionalGeneration(BartConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id, forced_eos_token_id=None)).save_pretrained(root / "seq2seq")
    tokenizer.save_pretrained(root / "seq2seq")
    lines = [json.dumps({"id": f"{label}-{i}", "text": text, "label": label}, ensure_ascii=False)
             for label, texts in TEXTS.items() for i, text in enumerate(texts)]
    lines.append(json.dumps({"id": "unlabeled-1", "text": "그냥 그랬어요"}, ensure_ascii=False))
    (root / "reviews.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_preprocess([root / "reviews.jsonl"], root / "utterances", *RUNNER, "--split-ratios", "0.7,0.15,0.15")
    return root


def run_augment(models, out, *extra, teachers=None):
    teachers = teachers or [models / "teacher"]
    return augment.run(["--input", str(models / "utterances"), "--output", str(out),
                        *(arg for t in teachers for arg in ("--teacher", str(t))),
                        "--student-tokenizer", str(models / "tok"), *RUNNER, *extra])


def test_signals_equal_a_direct_forward_pass(models, tmp_path):
    out = tmp_path / "kd"
    run_augment(models, out)
    opened = open_kd_dataset(str(out), {"label_names": ["negative", "positive"], "embedding_size": 32})
    frame = pd.read_parquet(out)
    assert len(frame) == 13 and set(frame["origin"]) == {"original"}
    assert (frame[frame["id"] == "unlabeled-1"]["label"] == -1).all()
    teacher = AutoModelForSequenceClassification.from_pretrained(models / "teacher").eval()
    tokenizer = AutoTokenizer.from_pretrained(models / "teacher")
    with torch.no_grad():
        inputs = tokenizer(list(frame["text"]), return_tensors="pt", padding=True)
        out_ = teacher(**inputs, output_hidden_states=True)
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        pooled = (out_.hidden_states[-1] * mask).sum(1) / mask.sum(1)
    assert np.allclose(np.stack(frame["teacher_logits"]), out_.logits.numpy(), atol=1e-3)
    assert np.allclose(np.stack(frame["teacher_embedding"]).astype(np.float32), pooled.numpy(), atol=1e-2)
    assert (frame["teacher_label"] == out_.logits.argmax(1).numpy()).all()
    student_tok = AutoTokenizer.from_pretrained(models / "tok")
    assert list(frame["input_ids"][0]) == student_tok(frame["text"][0])["input_ids"]
    provenance = opened.provenance
    assert provenance["teacher_weights_hash"] and provenance["student_tokenizer_hash"] and provenance["normalizer_hash"]
    stats = json.loads((out / "_stats.json").read_text())["conservation"]
    assert stats["records_in"] == 13 == stats["rows_written"] == len(frame)


def test_a_teacher_shared_across_processes_gives_the_same_shards(models, tmp_path):
    # guards against --share-teacher (one teacher per worker VM, behind Beam's MultiProcessShared)
    # changing a single value, or not running through RunInference at all
    run_augment(models, tmp_path / "own", "--paraphrase", "colloquial")
    run_augment(models, tmp_path / "shared", "--paraphrase", "colloquial", "--share-teacher")
    own = pd.read_parquet(tmp_path / "own").sort_values("id").reset_index(drop=True)
    shared = pd.read_parquet(tmp_path / "shared").sort_values("id").reset_index(drop=True)
    assert list(own["id"]) == list(shared["id"]) and len(own) > 13
    assert np.array_equal(np.stack(own["teacher_logits"]), np.stack(shared["teacher_logits"]))
    options = json.loads((tmp_path / "shared" / "_manifest.json").read_text())["options"]
    assert options["share_teacher"] is True


def test_paraphrases_inherit_split_and_parent_and_are_counted(models, tmp_path):
    out = tmp_path / "kd"
    run_augment(models, out, "--paraphrase", "colloquial", "--paraphrase", "eda", "--paraphrase", "mlm",
                "--mlm-model", str(models / "mlm"), "--paraphrase", "seq2seq", "--seq2seq-model", str(models / "seq2seq"),
                "--max-kl", "10", "--min-cosine", "-1", "--max-per-source", "8")
    frame = pd.read_parquet(out)
    originals = frame[frame["origin"] == "original"].set_index("id")
    paraphrases = frame[frame["origin"] != "original"]
    assert len(paraphrases) > 0
    assert set(paraphrases["split"]) == {"train"}  # only train rows are paraphrased by default
    for _, row in paraphrases.iterrows():
        parent = originals.loc[row["parent_id"]]
        assert row["split"] == parent["split"] and row["label"] == parent["label"] and row["text"] != parent["text"]
    counts = json.loads((out / "_stats.json").read_text())["counts"]
    for method in ("colloquial", "eda", "mlm", "seq2seq"):
        assert counts.get(f"paraphrases.generated.{method}", 0) > 0, method
    conservation = json.loads((out / "_stats.json").read_text())["conservation"]
    assert conservation["paraphrases_kept"] == len(paraphrases) and conservation["rows_written"] == len(frame)


def test_filters_do_what_they_say():
    source_logits = np.array([2.0, -2.0])
    source_embedding = np.array([1.0, 0.0, 0.0])
    logits = np.array([[2.1, -2.0], [-2.0, 2.0], [0.2, 0.0], [2.0, -2.0], [2.2, -2.1]])
    embeddings = np.array([[1.0, 0.1, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.9, 0.2, 0.0]])
    keep, reasons = filter_candidates(source_logits, source_embedding, logits, embeddings,
                                      FilterConfig(max_kl=0.5, min_cosine=0.8, max_per_source=1))
    assert reasons == ["kept", "label_changed", "kl_too_high", "cosine_too_low", "over_cap"]
    assert keep == [0]  # the best cosine of the two that passed


def test_rule_paraphrasers_are_deterministic_and_more_spoken():
    colloquial = ColloquialParaphraser(num_candidates=3)
    first = colloquial("id-1", "너무 재밌어요 그냥 최고예요", seed=0)
    assert first == colloquial("id-1", "너무 재밌어요 그냥 최고예요", seed=0)
    assert first
    assert any("넘" in c or "걍" in c or "용" in c for c in first)
    words = "오늘 날씨 정말 좋다".split()
    for candidate in EdaParaphraser(num_candidates=4)("x", " ".join(words)):  # a swap of neighbours or deletions
        edited = candidate.split()
        swapped = sorted(edited) == sorted(words) and sum(a != b for a, b in zip(edited, words, strict=True)) == 2
        deleted = len(edited) < len(words) and all(w in words for w in edited)
        assert swapped or deleted, candidate
    assert EdaParaphraser()("x", "단어") == []


def test_distinct_drops_the_source_duplicates_and_blanks_in_order():
    assert _distinct("a b", ["a  b", "c", " c ", "", "d", "e"], limit=2) == ["c", "d"]


# polite (존댓말) -> casual (반말); each case exercises one lexicon row or rule
SPEECH_LEVEL_CASES = [
    ("노트북이 삼성인지 엘지인지 알려주세요", "노트북이 삼성인지 엘지인지 알려줘"),  # 시+어요, 주다 conjugation
    ("확인 부탁드립니다.", "확인 부탁해."),  # 드리다 after a noun -> 하다, ᆸ니다, punctuation kept
    ("싱글 사이즈의 침대를 주문했나요", "싱글 사이즈의 침대를 주문했어"),  # question after 었 -> 어
    ("어디가 더 잡화가 많나요", "어디가 더 잡화가 많아"),  # after a consonant-final stem -> 어
    ("저는 학생이에요!", "나는 학생이야!"),  # 저 -> 나, 에요 -> 야
    ("선생님께서 오셨어요", "선생님이 왔어"),  # 께서 -> 이/가, honorific 시 dropped
    ("말씀해 주세요", "말해 줘"),  # spacing follows the original
    ("알려주시겠습니까", "알려주겠어"),
]


@pytest.mark.parametrize(("polite", "casual"), SPEECH_LEVEL_CASES)
def test_speech_level_shift_makes_polite_text_casual(polite, casual):
    shift = speech_level_shift()
    assert shift(shift.tokenize(polite), random.Random(0)) == casual


def test_speech_level_shift_leaves_casual_text_alone_and_feeds_colloquial():
    shift = speech_level_shift()
    assert shift(shift.tokenize("ㅋㅋ 오늘 날씨 좋다"), random.Random(0)) is None
    candidates = ColloquialParaphraser(num_candidates=4, speech_level=1.0)("q1", "이거 얼마예요?")
    assert candidates and all("예요" not in c for c in candidates)
    assert all("예" in c for c in ColloquialParaphraser(4, speech_level=0.0)("q1", "이거 얼마예요?"))  # 예요 or 예용


def test_mismatched_labels_missing_teacher_and_nan_logits(models, tmp_path):
    other = tmp_path / "teacher3"
    teacher = AutoModelForSequenceClassification.from_pretrained(models / "teacher")
    teacher.config.id2label, teacher.config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    teacher.save_pretrained(other)
    with pytest.raises(augment.AugmentError, match=r"labels \['negative', 'positive'\] of --input are not among"):
        run_augment(models, tmp_path / "a", teachers=[other])
    with pytest.raises(augment.AugmentError, match=r"its labels \['neg', 'pos'\] differ from the first teacher's"):
        run_augment(models, tmp_path / "a2", teachers=[models / "teacher", other])
    with pytest.raises(augment.AugmentError, match="cannot read it"):
        run_augment(models, tmp_path / "b", teachers=[tmp_path / "nowhere"])
    broken = tmp_path / "nan_teacher"
    teacher = AutoModelForSequenceClassification.from_pretrained(models / "teacher")
    with torch.no_grad():
        teacher.classifier.bias.fill_(float("nan"))
    teacher.save_pretrained(broken)
    AutoTokenizer.from_pretrained(models / "teacher").save_pretrained(broken)
    for name, teachers in (("c", [broken]), ("d", [models / "teacher", broken])):  # alone, or a second member
        out = tmp_path / name
        run_augment(models, out, teachers=teachers)
        stats = json.loads((out / "_stats.json").read_text())
        assert stats["counts"]["records.rejected.nan_logits"] == 13 == stats["conservation"]["records_rejected"]
        rejects = [json.loads(line) for f in (out / "_rejects").glob("*.jsonl") for line in f.open()]
        assert {r["reason"] for r in rejects} == {"nan_logits"}


def test_the_batched_mlm_paraphraser_gives_what_one_text_at_a_time_gives(models):
    # guards against batching the masked-LM forward passes (the augment speed-up) changing which
    # paraphrases a source gets: each text keeps its own random stream
    from beam_jobs.paraphrase import MlmParaphraser

    paraphraser = MlmParaphraser(str(models / "mlm"), num_candidates=2)
    items = [(f"id-{i}", text) for i, texts in enumerate(TEXTS.values()) for text in texts]
    batched = paraphraser.many(items, seed=3, batch_size=4)
    one_by_one = [paraphraser(source_id, text, 3) for source_id, text in items]
    assert batched == one_by_one and any(batched)


def test_the_mlm_paraphraser_runs_only_the_positions_it_needs_and_gives_what_running_all_gives(models):
    # guards against the round-by-round masking (positions a text never needs are never run)
    # changing any candidate: the reference masks every drawn position of every text, one text at
    # a time, and keeps the first distinct ones; and against the saving being imaginary
    import torch

    from beam_jobs.paraphrase import MlmParaphraser, _distinct, rng_for

    paraphraser = MlmParaphraser(str(models / "mlm"), num_candidates=2, top_k=1)
    tokenizer, model = paraphraser.tokenizer, paraphraser.model
    items = [(f"id-{i}", text) for i, texts in enumerate(TEXTS.values()) for text in texts]

    def every_position(source_id: str, text: str) -> list[str]:
        rng, words = rng_for(source_id, "mlm", 3), text.split()
        found = []
        for p in rng.sample(range(len(words)), min(len(words), 4)):
            inputs = tokenizer(" ".join(words[:p] + [tokenizer.mask_token] + words[p + 1:]), return_tensors="pt")
            with torch.inference_mode():
                logits = model(**inputs).logits[0]
            where = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
            tokens = [tokenizer.convert_ids_to_tokens(t) for t in logits[where].topk(3).indices.tolist()]
            tokens = [t for t in tokens if t and not t.startswith(("##", "[", "<", "▁▁")) and t != words[p]
                      and t not in tokenizer.all_special_tokens][:1]
            if tokens:
                found.append(" ".join(words[:p] + [rng.choice(tokens).lstrip("▁")] + words[p + 1:]))
        return _distinct(text, found, 2)

    rows = []
    hook = model.base_model.embeddings.register_forward_hook(lambda _m, _i, out: rows.append(out.shape[0]))
    try:
        lazy = paraphraser.many(items, seed=3, batch_size=5)
    finally:
        hook.remove()
    assert lazy == [every_position(source_id, text) for source_id, text in items] and any(lazy)
    drawn = sum(min(len(text.split()), 4) for _id, text in items)
    assert sum(rows) < drawn, (sum(rows), drawn)


def test_mlm_precision_bfloat16_runs_the_masked_lm_in_bf16_and_reaches_the_job(models):
    # guards against --mlm-precision being a documented option that does nothing (the forward
    # stays float32), against bf16 candidates that are not one-word replacements of the source,
    # and against the job's config not reaching the paraphraser its workers build
    from beam_jobs.augment import AugmentConfig, _Paraphrasers
    from beam_jobs.paraphrase import MlmParaphraser
    from schemas.options import MalmoiError

    items = [(f"id-{i}", text) for i, texts in enumerate(TEXTS.values()) for text in texts]
    seen = {}
    for precision in ("float32", "bfloat16"):
        paraphraser = MlmParaphraser(str(models / "mlm"), num_candidates=2, precision=precision)
        dtypes: set = set()
        linear = next(m for m in paraphraser.model.modules() if isinstance(m, torch.nn.Linear))
        handle = linear.register_forward_hook(lambda _m, _i, output, seen_dtypes=dtypes: seen_dtypes.add(output.dtype))
        seen[precision] = (paraphraser.many(items, seed=3), dtypes)
        handle.remove()
    assert seen["float32"][1] == {torch.float32} and seen["bfloat16"][1] == {torch.bfloat16}
    candidates = seen["bfloat16"][0]
    assert any(candidates)
    for (_id, text), found in zip(items, candidates, strict=True):
        for candidate in found:
            before, after = text.split(), candidate.split()
            assert len(before) == len(after) and sum(a != b for a, b in zip(before, after, strict=True)) == 1
    with pytest.raises(MalmoiError, match="bfloat16"):
        MlmParaphraser(str(models / "mlm"), precision="float16")
    config = AugmentConfig(input="in", output="out", teacher=("t",), student_tokenizer="s", paraphrase=("mlm",),
                           mlm_model=str(models / "mlm"), mlm_precision="bfloat16", device="cpu")
    assert _Paraphrasers(config).paraphrasers["mlm"].precision == "bfloat16"


def test_mlm_joint_masks_runs_a_round_of_masks_in_one_row_and_reaches_the_job(models):
    # guards against --mlm-joint-masks doing nothing (as many forward rows as without it), against
    # a joint-mask prediction landing on the wrong word (every candidate must replace exactly one
    # drawn word), against a text that already holds the mask token being paraphrased at the wrong
    # mask, and against the job's config not reaching the paraphraser its workers build
    from beam_jobs.augment import AugmentConfig, _Paraphrasers
    from beam_jobs.paraphrase import MlmParaphraser, rng_for

    items = [(f"id-{i}", text) for i, texts in enumerate(TEXTS.values()) for text in texts]
    found, rows = {}, {}
    for joint in (False, True):
        paraphraser = MlmParaphraser(str(models / "mlm"), num_candidates=2, joint_masks=joint)
        shapes: list = []
        hook = paraphraser.model.base_model.embeddings.register_forward_hook(
            lambda _m, _i, out, seen=shapes: seen.append(out.shape[0]))
        found[joint] = paraphraser.many(items, seed=3)
        hook.remove()
        rows[joint] = sum(shapes)
    assert rows[True] < rows[False] and any(found[True])
    for (source_id, text), candidates in zip(items, found[True], strict=True):
        words = text.split()
        drawn = set(rng_for(source_id, "mlm", 3).sample(range(len(words)), min(len(words), 4)))
        for candidate in candidates:
            changed = [j for j, (a, b) in enumerate(zip(words, candidate.split(), strict=True)) if a != b]
            assert len(changed) == 1 and changed[0] in drawn, (text, candidate)
    # the first round by hand: the first two drawn words masked together, each prediction read at
    # its own mask; texts that needed a second round are left out
    tokenizer, model, mask = paraphraser.tokenizer, paraphraser.model, paraphraser.tokenizer.mask_token
    compared = 0
    for (source_id, text), candidates in zip(items, found[True], strict=True):
        rng, words = rng_for(source_id, "mlm", 3), text.split()
        first = rng.sample(range(len(words)), min(len(words), 4))[:2]
        inputs = tokenizer(" ".join(mask if j in first else w for j, w in enumerate(words)), return_tensors="pt")
        with torch.inference_mode():
            logits = model(**inputs).logits[0]
        at = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero()[:, 0].tolist()
        expected = []
        for p in first:
            tokens = [tokenizer.convert_ids_to_tokens(t) for t in logits[at[sorted(first).index(p)]].topk(15).indices.tolist()]
            tokens = [t for t in tokens if t and not t.startswith(("##", "[", "<", "▁▁")) and t != words[p]
                      and t not in tokenizer.all_special_tokens][:5]
            if tokens:
                expected.append(" ".join(words[:p] + [rng.choice(tokens).lstrip("▁")] + words[p + 1:]))
        if len(set(expected)) == 2 == len(candidates):
            assert candidates == expected, text
            compared += 1
    assert compared >= len(items) // 2, compared
    assert paraphraser.many([("m", f"이 영화 {mask} 진짜 재밌어요")]) == [[]]
    config = AugmentConfig(input="in", output="out", teacher=("t",), student_tokenizer="s", paraphrase=("mlm",),
                           mlm_model=str(models / "mlm"), mlm_joint_masks=True, device="cpu")
    assert _Paraphrasers(config).paraphrasers["mlm"].joint_masks is True


def test_outside_teacher_signals_join_the_teacher_in_a_fitted_ensemble(models, tmp_path):
    # guards against outside signals (an LLM labelling run) that cannot be used, are used without
    # validation, or are mixed in with weights nobody fitted or recorded
    from schemas import UTTERANCES, read_dataset
    from schemas.options import MalmoiError

    rows = read_dataset(str(models / "utterances"), UTTERANCES, columns=["id", "label"]).to_pylist()
    signals = tmp_path / "llm.jsonl"  # a perfect outside labeller for every labeled row
    signals.write_text("".join(json.dumps({"id": r["id"], "label": r["label"]}) + "\n" for r in rows if r["label"]),
                       encoding="utf-8")
    out = tmp_path / "kd"
    run_augment(models, out, "--teacher-signals", str(signals))
    provenance = json.loads((out / "_manifest.json").read_text())["provenance"]
    ensemble = provenance["ensemble"]
    assert [m.get("kind") for m in ensemble["members"]] == [None, "label"]
    assert ensemble["fitted_on_valid_rows"] > 0 and ensemble["weights"][1] > ensemble["weights"][0]
    frame = pd.read_parquet(out)
    labeled = frame[frame["label"] >= 0]
    assert (labeled["teacher_label"] == labeled["label"]).mean() == 1.0  # the fitted ensemble follows the labeller
    stats = json.loads((out / "_stats.json").read_text())["counts"]
    assert stats.get("teacher_signals.missing_member", 0) == 1  # the unlabeled row has no outside signal

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": rows[0]["id"], "probs": [0.9, 0.3]}) + "\n", encoding="utf-8")
    with pytest.raises(MalmoiError, match="sum to 1"):
        run_augment(models, tmp_path / "kd_bad", "--teacher-signals", str(bad))


def test_a_paraphrase_takes_its_parents_outside_signal_in_the_ensemble():
    # guards against a paraphrase's target being the checkpoint alone, rescaled to the fitted weights'
    # sum: with a weak checkpoint (weight 0.1) beside a strong outside member (1.0), that target was
    # the checkpoint's log-probabilities times 11, a near-hard copy of the weakest member
    from beam_jobs.augment import AugmentConfig, KeepWithTeacherFn
    from beam_jobs.teacher import TeacherOutputs
    from beam_jobs.teacher_signals import SignalFile, combine, log_softmax

    config = AugmentConfig(input="in", output="out", teacher=("t",), student_tokenizer="s", device="cpu")
    keep = KeepWithTeacherFn(config, {"neg": 0, "pos": 1}, {"weights": [0.1, 1.0]})
    outside = {"a": np.log([0.1, 0.9]), "b": np.log([0.8, 0.2])}
    keep._signals = [SignalFile(path="llm.jsonl", sha256="", key="id", kind="probs", log_probs=outside)]
    sources = [{"id": "a", "text": "좋다"}, {"id": "b", "text": "별로"}, {"id": "c", "text": "글쎄"}]
    candidates = [(0, "colloquial", "좋당"), (1, "colloquial", "별루")]  # (source index, method, text)
    logits = np.array([[0.5, 0.2], [0.3, 0.1], [0.0, 0.4], [2.0, -1.0], [0.1, 0.0]], np.float32)
    stored, missing = keep._ensemble_logits(sources, candidates, TeacherOutputs(logits, np.zeros((5, 4), np.float16)))
    own = log_softmax(logits.astype(np.float64))
    for row, source in ((0, "a"), (1, "b"), (3, "a"), (4, "b")):  # originals and paraphrases alike
        np.testing.assert_allclose(stored[row], combine([own[row], outside[source]], np.array([0.1, 1.0])), atol=1e-6)
    np.testing.assert_allclose(stored[2], combine([own[2]], np.array([1.1])), atol=1e-6)  # no outside row for "c"
    assert missing == 1  # only originals are counted
    assert stored[3].argmax() == 1  # the paraphrase of "a" follows the outside member, not the checkpoint


def test_several_checkpoint_teachers_are_combined_on_every_row_with_fitted_weights(models, tmp_path):
    # guards against a second --teacher silently replacing the first (argparse's last-one-wins),
    # members whose label order differs being mixed column by column, paraphrases left with one
    # member's logits, and an ensemble whose members and weights are not in the provenance
    from beam_jobs.teacher_signals import combine, log_softmax

    tokenizer = AutoTokenizer.from_pretrained(models / "teacher")
    first, other = tmp_path / "teacher_a", tmp_path / "teacher_b"  # b stores its labels in the other order
    texts = [t for group in TEXTS.values() for t in group]
    targets = torch.tensor([LABELS.index(label) for label, group in TEXTS.items() for _ in group])
    for seed, folder, steps in ((3, first, 40), (7, other, 15)):  # two members that learned the task, unequally
        torch.manual_seed(seed)
        model = make_teacher(folder, len(tokenizer))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            optimizer.zero_grad()
            model(**tokenizer(texts, return_tensors="pt", padding=True), labels=targets).loss.backward()
            optimizer.step()
        if folder == other:
            with torch.no_grad():
                model.classifier.weight.copy_(model.classifier.weight.flip(0))
                model.classifier.bias.copy_(model.classifier.bias.flip(0))
            model.config.id2label, model.config.label2id = {0: "positive", 1: "negative"}, {"positive": 0, "negative": 1}
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    out = tmp_path / "kd"
    run_augment(models, out, "--paraphrase", "colloquial", teachers=[first, other])
    ensemble = json.loads((out / "_manifest.json").read_text())["provenance"]["ensemble"]
    assert [m["teacher"] for m in ensemble["members"]] == [str(first), str(other)]
    assert all(m["weights_hash"] for m in ensemble["members"]) and ensemble["fitted_on_valid_rows"] > 0
    weights = np.asarray(ensemble["weights"])
    assert (weights > 0).all()
    frame = pd.read_parquet(out)
    assert (frame["origin"] != "original").any()  # paraphrases carry the ensemble too
    logits = []
    for folder, columns in ((first, [0, 1]), (other, [1, 0])):
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        with torch.no_grad():
            logits.append(model(**tokenizer(list(frame["text"]), return_tensors="pt", padding=True)
                                ).logits.numpy()[:, columns].astype(np.float64))
    expected = combine([log_softmax(m) for m in logits], weights)
    assert np.allclose(log_softmax(np.stack(frame["teacher_logits"]).astype(np.float64)), expected, atol=1e-3)
    for alone in logits:  # neither member alone (nor the pair mixed column by column) gives this
        assert not np.allclose(expected, log_softmax(weights.sum() * log_softmax(alone)), atol=1e-2), weights


def test_fitted_ensemble_weights_undo_overconfidence_and_never_lose_to_fixed_ones():
    # guards against ensemble weights that only share out a fixed total (a product of N members at
    # weight 1 is N times sharper than one, and the student then learns that false confidence)
    from beam_jobs.teacher_signals import combine, fit_weights, log_softmax

    rng = np.random.default_rng(0)
    calibrated = log_softmax(rng.normal(0, 1.5, (20_000, 3)))
    labels = np.array([rng.choice(3, p=np.exp(row)) for row in calibrated])
    overconfident = log_softmax(3.0 * calibrated)
    weights = fit_weights([overconfident, overconfident], labels)
    assert abs(weights.sum() - 1 / 3) < 0.03, weights  # the pair's sharpness brought back to the truth
    noise = log_softmax(rng.normal(0, 1.5, (20_000, 3)))
    weights = fit_weights([overconfident, noise], labels)
    assert weights[0] > 5 * weights[1], weights

    def nll(w):
        return -combine([overconfident, noise], np.asarray(w))[np.arange(len(labels)), labels].mean()

    assert nll(weights) <= min(nll([1.0, 1.0]), nll([0.5, 0.5]), nll([1.0, 0.0])) + 1e-9
    assert fit_weights([overconfident, noise], np.array([], int)).tolist() == [0.5, 0.5]  # nothing to fit: as sharp as one
