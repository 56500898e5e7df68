"""kd.tokenizer -> kd.pretrain -> kd.finetune -> kd.predict. Protects against: a vocabulary that breaks Hangul or
placeholders, a recorded --pre-split that training and serving apply differently, and commands that accept
unusable data."""

from __future__ import annotations

import io
import json

import pytest
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from kd import evaluate, finetune, predict, pretrain
from kd import tokenizer as kd_tokenizer
from tests.conftest import run_preprocess
from tests.kd_fixtures import TEXTS

TINY = ["--batch-size", "8", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmds")
    lines = [json.dumps({"id": f"{label}-{i}-{k}", "text": text + (" ㅋㅋㅋㅋ" if k else ""), "label": label},
                        ensure_ascii=False)
             for label, texts in TEXTS.items() for i, text in enumerate(texts) for k in range(4)]
    (root / "reviews.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_preprocess([root / "reviews.jsonl"], root / "utterances", "--runner", "FnApiRunner",
                   "--split-ratios", "0.6,0.2,0.2")
    return root


def test_tokenizer_keeps_hangul_and_placeholders_and_round_trips(utterances):
    out = utterances / "tok"
    assert kd_tokenizer.main(["--data", str(utterances / "utterances"), "--output", str(out), "--vocab-size", "300",
                              "--min-frequency", "1"]) == 0
    loaded = AutoTokenizer.from_pretrained(out)
    tokens = loaded.tokenize("영화 진짜 재밌어요 &name& 최고")  # characters the corpus has
    assert "[UNK]" not in tokens and "&name&" in tokens
    assert not any("\u1100" <= ch <= "\u11ff" for t in tokens for ch in t)  # no decomposed jamo
    ids = loaded("영화 재밌어요")["input_ids"]
    assert loaded.decode(ids, skip_special_tokens=True).replace(" ", "") == "영화재밌어요"


def test_pretrain_finetune_predict(utterances, tmp_path, capsys):
    tok = utterances / "tok_full"
    kd_tokenizer.main(["--data", str(utterances / "utterances"), "--output", str(tok), "--vocab-size", "300",
                       "--min-frequency", "1", "--kind", "unigram"])
    mlm = tmp_path / "mlm"
    assert pretrain.main(["--data", str(utterances / "utterances"), "--tokenizer", str(tok), "--output", str(mlm),
                          "--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64",
                          "--max-steps", "6", "--eval-every", "3", *TINY]) == 0
    assert AutoModelForMaskedLM.from_pretrained(mlm).config.num_hidden_layers == 1
    # six steps cannot leave the unigram plateau: the run says so (stderr) and records it
    summary = json.loads((mlm / "training_summary.json").read_text())["summary"]
    assert summary["left_unigram_plateau"] is False and summary["unigram_loss"] > 0
    assert summary["final_eval_mlm_loss"] > summary["unigram_loss"] - 1
    # the final loss is the step-6 evaluation's (dropout off), not a noisier one taken in train mode
    last_eval = [json.loads(line) for line in (mlm / "metrics.jsonl").read_text().splitlines()
                 if "eval/mlm_loss" in line][-1]
    assert last_eval["step"] == 6 and summary["final_eval_mlm_loss"] == pytest.approx(last_eval["eval/mlm_loss"])

    # a teacher that cannot move (learning rate ~0) on that plateau encoder gives every sentence one
    # class: the run says so once, however few evaluations ran, and records it
    frozen = tmp_path / "frozen"
    assert finetune.main(["--data", str(utterances / "utterances"), "--init", str(mlm), "--output", str(frozen),
                          "--max-steps", "2", "--learning-rate", "1e-12", *TINY]) == 0
    warnings = json.loads((frozen / "evaluation.json").read_text())["training"]["warnings"]
    assert len(warnings) == 1 and "the teacher has predicted one class" in warnings[0] and "as exported" in warnings[0]
    assert "warning: the teacher" in capsys.readouterr().err

    teacher = tmp_path / "teacher"
    assert finetune.main(["--data", str(utterances / "utterances"), "--init", str(mlm), "--output", str(teacher),
                          "--max-steps", "30", "--eval-every", "10", "--patience", "5", "--learning-rate", "3e-3",
                          *TINY]) == 0
    model = AutoModelForSequenceClassification.from_pretrained(teacher)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    evaluation = json.loads((teacher / "evaluation.json").read_text())
    assert evaluation["best_valid"]["step"] in (10, 20, 30) and evaluation["test"]["n"] > 0
    assert isinstance(evaluation["training"]["warnings"], list)
    assert (teacher / "malmoi_normalizer.json").exists()

    out = io.StringIO()
    assert predict.main(["--model", str(teacher), "--json"], stdin=io.StringIO("넘 재밌어용ㅋㅋㅋㅋ\n걍 별로\n"),
                        stdout=out) == 0
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["text"] for r in results] == ["너무 재밌어요ㅋㅋ", "그냥 별로"]  # the saved normalizer ran
    assert all(r["label"] in ("negative", "positive") for r in results)
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-5 for r in results)

    # the TorchScript serving path gives the eager path's probabilities, texts of any length
    texts = ["넘 재밌어용ㅋㅋㅋㅋ", "걍 별로", "진짜 최고의 영화 또 보고 싶어요 배우들 연기도 좋고"]
    eager = predict.Predictor(str(teacher)).predict(texts)
    served = predict.Predictor(str(teacher), torchscript=True).predict(texts)
    for a, b in zip(eager, served, strict=True):
        assert a["label"] == b["label"] and a["probs"] == pytest.approx(b["probs"], abs=1e-4)
    speed = evaluate.cpu_speed(model, AutoTokenizer.from_pretrained(teacher), texts * 4, repeats=6)
    assert speed["latency_ms_batch1"] > 0 and speed["latency_ms_batch1_torchscript"] > 0
    both = evaluate.interleaved_latency({"a": str(teacher), "b": str(teacher)}, texts, repeats=3, passes=2)
    assert set(both) == {"a", "b"} and all(v > 0 for row in both.values() for v in row.values())


def test_finetune_refuses_unlabeled_data(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("하나\n둘\n", encoding="utf-8")
    run_preprocess([tmp_path / "a.txt"], tmp_path / "utt", "--runner", "FnApiRunner")
    assert finetune.main(["--data", str(tmp_path / "utt"), "--init", str(tmp_path), "--output",
                          str(tmp_path / "t"), *TINY]) == 2
    assert "needs at least 2" in capsys.readouterr().err


def test_pre_split_tokens_is_applied_alike_by_augment_distill_and_predict(tmp_path):
    # guards against a vocabulary trained on word tokens but fed raw text later: augment, the
    # exported student and the Predictor must all produce the ids of the pre-split text
    from beam_jobs import augment
    from kd import distill
    from tests.kd_fixtures import make_teacher

    glued = {"positive": ["영화 재밌어요ㅋㅋ", "배우 연기 최고ㅎㅎ", "또 보고 싶다ㅋㅋ"],
             "negative": ["시간 아깝다ㅡㅡ", "너무 지루하다ㅠㅠ", "돈 아까워요ㅠㅠ"]}
    lines = [json.dumps({"id": f"{label}-{i}-{k}", "text": text, "label": label}, ensure_ascii=False)
             for label, texts in glued.items() for i, text in enumerate(texts) for k in range(3)]
    (tmp_path / "reviews.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_preprocess([tmp_path / "reviews.jsonl"], tmp_path / "utt", "--runner", "FnApiRunner",
                   "--split-ratios", "0.6,0.2,0.2")
    tok = tmp_path / "tok"
    assert kd_tokenizer.main(["--data", str(tmp_path / "utt"), "--output", str(tok), "--vocab-size", "120",
                              "--min-frequency", "1", "--pre-split", "tokens", "--all-splits"]) == 0
    recorded = json.loads((tok / "malmoi_tokenizer.json").read_text(encoding="utf-8"))
    assert recorded["pre_split"] == "tokens" and recorded["word_tokenizer"]["method"] == "whitespace"
    teacher = tmp_path / "teacher"
    make_teacher(teacher, len(AutoTokenizer.from_pretrained(tok)))
    AutoTokenizer.from_pretrained(tok).save_pretrained(teacher)
    augment.run(["--input", str(tmp_path / "utt"), "--output", str(tmp_path / "kd"), "--teacher", str(teacher),
                 "--student-tokenizer", str(tok), "--runner", "FnApiRunner"])
    import pandas as pd

    shards = pd.read_parquet(tmp_path / "kd")
    student = tmp_path / "student"
    assert distill.main(["--data", str(tmp_path / "kd"), "--tokenizer", str(tok), "--output", str(student),
                         "--student-layers", "1", "--student-hidden", "16", "--student-heads", "2",
                         "--student-intermediate", "32", "--max-steps", "2", "--no-cpu-speed", *TINY]) == 0
    predictor = predict.Predictor(str(student))
    plain = AutoTokenizer.from_pretrained(tok)
    differs = 0
    for text, ids in zip(shards["text"], shards["input_ids"], strict=True):
        assert predictor.tokenizer(text)["input_ids"] == list(ids), text
        differs += plain(text)["input_ids"] != list(ids)
    assert differs >= len(shards) // 2  # the raw text would have given other ids: the pre-split matters here
    long_text = predictor.predict(["영화 재밌어요 " * 2000])[0]  # bounded work per request
    assert long_text["truncated"] and len(long_text["text"]) <= predictor.max_chars


def test_a_stopped_finetune_exports_nothing_and_its_resume_keeps_the_best(utterances, tmp_path, monkeypatch):
    # guards against an interrupted finetune leaving its best-so-far model in OUTPUT, where it
    # looks like a finished teacher, and against a resume forgetting the best before the stop
    import os
    import signal

    tok = tmp_path / "tok"
    kd_tokenizer.main(["--data", str(utterances / "utterances"), "--output", str(tok), "--vocab-size", "300",
                       "--min-frequency", "1"])
    mlm = tmp_path / "mlm"
    assert pretrain.main(["--data", str(utterances / "utterances"), "--tokenizer", str(tok), "--output", str(mlm),
                          "--layers", "1", "--hidden", "32", "--heads", "2", "--intermediate", "64",
                          "--max-steps", "4", *TINY]) == 0
    real, valid_calls = finetune.split_metrics, []

    def preempted_after_first_evaluation(model, opened, split, *args):
        metrics = real(model, opened, split, *args)
        valid_calls.append(split)
        if valid_calls == ["valid"]:
            os.kill(os.getpid(), signal.SIGTERM)
        return metrics

    monkeypatch.setattr(finetune, "split_metrics", preempted_after_first_evaluation)
    teacher = tmp_path / "teacher"
    command = ["--data", str(utterances / "utterances"), "--init", str(mlm), "--output", str(teacher),
               "--max-steps", "12", "--eval-every", "4", "--save-every", "4", "--patience", "9", *TINY]
    assert finetune.main(command) == 3
    assert not (teacher / "config.json").exists() and not (teacher / "evaluation.json").exists()
    kept = json.loads((teacher / "checkpoints" / "best" / "best.json").read_text())
    assert kept["step"] == 4
    assert finetune.main([*command, "--resume"]) == 0
    evaluation = json.loads((teacher / "evaluation.json").read_text())
    assert evaluation["best_valid"]["step"] in (4, 8, 12) and evaluation["best_valid"]["macro_f1"] >= kept["score"]
    assert AutoModelForSequenceClassification.from_pretrained(teacher).config.num_labels == 2


def test_the_unigram_loss_is_what_frequencies_alone_score():
    # guards the plateau check's reference: a model predicting every token by its train frequency
    import numpy as np

    from kd.pretrain import plateau_warning, unigram_loss

    train = [np.array([5, 5, 5, 6, 0, 1])]  # 0 and 1 special: left out
    valid = [np.array([5, 6, 1])]
    expected = -(np.log(4 / 11) + np.log(2 / 11)) / 2  # add-one over a vocabulary of 7, 4 real train tokens
    assert unigram_loss(train, valid, 7, [0, 1]) == pytest.approx(expected)
    assert unigram_loss([], valid, 7, [0, 1]) is None
    assert plateau_warning(7.1, 7.5, 4800) and "7.10" in plateau_warning(7.1, 7.5, 4800)
    assert plateau_warning(5.4, 7.5, 6000) is None  # a model that uses the sentence: no warning
    assert plateau_warning(None, 7.5, 10) is None


def test_stacking_grows_a_checkpoint_that_starts_from_its_layers():
    # guards --stack-layers: every new layer is a copy of layer i mod L (not a fresh random one, which
    # would put the deep model back on the plateau), embeddings and the tied head carry over, and a
    # request that cannot grow the model is refused rather than ignored
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from kd.pretrain import stack_encoder_layers

    torch.manual_seed(0)
    small = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=32)).eval()
    deep = stack_encoder_layers(small, 5).eval()
    assert deep.config.num_hidden_layers == 5 and small.config.num_hidden_layers == 2
    layers_small, layers_deep = small.bert.encoder.layer, deep.bert.encoder.layer
    for i in range(5):
        for (name, a), (_, b) in zip(layers_small[i % 2].named_parameters(), layers_deep[i].named_parameters(),
                                     strict=True):
            assert torch.equal(a, b), (i, name)
    assert torch.equal(small.bert.embeddings.word_embeddings.weight, deep.bert.embeddings.word_embeddings.weight)
    assert deep.cls.predictions.decoder.weight.data_ptr() == deep.bert.embeddings.word_embeddings.weight.data_ptr()
    # the grown encoder is a different function (four layers deep), and trains on its own copy
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    assert not torch.allclose(small(input_ids=ids).logits, deep(input_ids=ids).logits)
    deep.bert.encoder.layer[2].output.dense.weight.data.add_(1.0)
    assert not torch.equal(layers_deep[2].output.dense.weight, layers_deep[0].output.dense.weight)
    with pytest.raises(ValueError, match="must be more than the checkpoint's 2 layers"):
        stack_encoder_layers(small, 2)


def test_pretrain_stack_layers_continues_a_deeper_model(utterances, tmp_path):
    # guards the command: --init DIR --stack-layers N writes an N-layer masked LM, records the option,
    # and --stack-layers without --init is an error, not a silently shallow model
    tok = utterances / "tok_stack"
    kd_tokenizer.main(["--data", str(utterances / "utterances"), "--output", str(tok), "--vocab-size", "300",
                       "--min-frequency", "1"])
    common = ["--data", str(utterances / "utterances"), "--tokenizer", str(tok), "--max-steps", "3", *TINY]
    assert pretrain.main([*common, "--output", str(tmp_path / "a"), "--layers", "1", "--hidden", "32", "--heads", "2",
                          "--intermediate", "64"]) == 0
    assert pretrain.main([*common, "--output", str(tmp_path / "b"), "--init", str(tmp_path / "a"),
                          "--stack-layers", "3"]) == 0
    assert AutoModelForMaskedLM.from_pretrained(tmp_path / "b").config.num_hidden_layers == 3
    assert json.loads((tmp_path / "b" / "training_summary.json").read_text())["config"]["stack_layers"] == 3
    # a usage error (exit 2, one line naming the fix), raised before any output is written
    assert pretrain.main([*common, "--output", str(tmp_path / "c"), "--stack-layers", "3"]) == 2
    assert not (tmp_path / "c").exists()
