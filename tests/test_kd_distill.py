"""kd.distill on the CPU. Protects against: a loss that does not fall, resume that differs from continuous
training, an unsafe or incomplete checkpoint, refusals that do not refuse, exports that predict differently,
and DDP drift."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kd import distill
from kd.common import Distributed
from kd.data import BucketBatches, kd_chunks, open_kd_dataset
from kd.loop import LoopConfig, train
from kd.models import DistillStudent, bert_student
from kd.objectives import DistillObjective, DistillWeights
from kd.report import read_metrics
from tests.conftest import ROOT
from tests.kd_fixtures import LABELS, make_kd_shards, make_teacher, make_tokenizer

TINY = ["--student-layers", "2", "--student-hidden", "32", "--student-heads", "2", "--student-intermediate", "64",
        "--batch-size", "8", "--no-progress", "--learning-rate", "3e-3"]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    tokenizer = make_tokenizer(root / "tok")
    make_teacher(root / "teacher", len(tokenizer))
    make_kd_shards(root / "kd", root / "tok", rows=160, teacher_dir=root / "teacher")
    return root


def test_training_lowers_the_loss(artifacts, tmp_path):
    out = tmp_path / "student"
    assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"),
                         "--output", str(out), "--max-steps", "60", "--log-every", "10", *TINY]) == 0
    losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert losses[-1] < 0.8 * losses[0]
    assert (out / "report.md").exists() and (out / "metrics.png").exists()


def tiny_run(artifacts, output, evaluate=None, *, resume=False, max_steps=14, eval_every=7, poison_steps=(), ema=0.0):
    opened = open_kd_dataset(str(artifacts / "kd"))
    torch.manual_seed(0)
    model = DistillStudent(bert_student(vocab_size=len(AutoTokenizer.from_pretrained(artifacts / "tok")),
                                        label_names=LABELS, num_layers=2, hidden_size=32, num_heads=2,
                                        intermediate_size=64), 32)
    config = LoopConfig(output=str(output), max_steps=max_steps, batch_size=8, learning_rate=3e-3, log_every=2,
                        eval_every=eval_every, save_every=7, seed=5, device="cpu", resume=resume, progress=False,
                        buckets=(8, 16, 32), ema=ema)
    batches = BucketBatches(lambda e: kd_chunks(opened, "train", config.seed, e), batch_size=8,
                            buckets=config.buckets, pad_id=0, seed=config.seed)
    weights = DistillWeights(kl=1.0, ce=1.0, mse=0.5, cosine=0.5)
    objective = Poisoned(DistillObjective(weights), poison_steps)
    summary = train(model=model, objective=objective, batches=batches, config=config,
                    dist=Distributed(), evaluate=evaluate or (lambda m, s: {}))
    return model, summary


class Poisoned:
    """The objective, with a NaN loss on the given (1-based) steps."""

    def __init__(self, inner, steps) -> None:
        self.inner, self.steps, self.calls = inner, set(steps), 0

    def __call__(self, model, batch):
        self.calls += 1
        loss, parts = self.inner(model, batch)
        return (loss * float("nan"), parts) if self.calls in self.steps else (loss, parts)


def test_a_nonfinite_step_updates_nothing_and_is_counted(artifacts, tmp_path):
    # guards against the NaN/inf guard only zeroing some gradients, or the optimizer still moving
    # (AdamW's moments and step count) on a skipped step
    def stop_after_two(model, step):
        return {"stop": step == 2}

    two, stopped = tiny_run(artifacts, tmp_path / "two", stop_after_two, max_steps=3, eval_every=1)
    assert stopped["status"] == "early_stopped" and stopped["steps"] == 2
    poisoned, summary = tiny_run(artifacts, tmp_path / "poisoned", max_steps=3, poison_steps={3})
    assert summary["skipped_nonfinite"] == 1
    for (name, a), (_, b) in zip(two.state_dict().items(), poisoned.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    last = [r for r in read_metrics(tmp_path / "poisoned" / "metrics.jsonl") if "loss" in r][-1]
    assert last["skipped_nonfinite"] == 1 and all(v == v for v in last.values())  # no NaN logged


def test_a_window_of_only_nonfinite_steps_stops_with_a_clear_error(artifacts, tmp_path):
    with pytest.raises(FloatingPointError, match="non-finite"):
        tiny_run(artifacts, tmp_path / "nan", max_steps=6, poison_steps={3, 4})


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_stop_and_resume_gives_the_same_weights_as_not_stopping(artifacts, tmp_path, ema):
    # with --ema the checkpoint must carry the running average too, or the resumed export differs
    continuous, summary = tiny_run(artifacts, tmp_path / "continuous", ema=ema)
    assert summary["status"] == "finished" and summary["steps"] == 14

    def preempt(model, step):  # a preemptible machine receives SIGTERM after step 7
        if step == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return {}

    _, first = tiny_run(artifacts, tmp_path / "resumed", preempt, ema=ema)
    assert first["status"] == "interrupted by SIGTERM" and first["steps"] == 7
    assert (tmp_path / "resumed" / "checkpoints" / "step-7" / "COMPLETE").exists()
    resumed, second = tiny_run(artifacts, tmp_path / "resumed", resume=True, ema=ema)
    assert second["steps"] == 14
    for (name, a), (_, b) in zip(continuous.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    steps = [r["step"] for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 14  # no duplicated lines after resume


def test_ema_evaluates_and_exports_the_average_of_the_weights_training_took(artifacts, tmp_path):
    # guards against an --ema that does nothing, that averages the wrong weights, that leaves the
    # average in the model after an evaluation (training would then continue from it), or that
    # exports the last step's weights
    def record(into):
        def evaluate(model, step):
            into.append([p.detach().clone().double() for p in model.parameters()])
            return {}
        return evaluate

    raw: list = []
    plain, _ = tiny_run(artifacts, tmp_path / "plain", record(raw), max_steps=9, eval_every=1)
    seen: list = []
    averaged, _ = tiny_run(artifacts, tmp_path / "ema", record(seen), max_steps=9, eval_every=1, ema=0.8)
    torch.manual_seed(0)  # the start both runs share (tiny_run seeds the init with 0)
    start = DistillStudent(bert_student(vocab_size=len(AutoTokenizer.from_pretrained(artifacts / "tok")),
                                        label_names=LABELS, num_layers=2, hidden_size=32, num_heads=2,
                                        intermediate_size=64), 32)
    expected = [p.detach().clone().double() for p in start.parameters()]
    for t, weights in enumerate(raw):
        decay = min(0.8, (1 + t) / (10 + t))
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights, strict=True)]
        for e, s in zip(expected, seen[t], strict=True):  # each evaluation saw the average so far
            assert torch.allclose(e, s, atol=1e-5)
    for e, p in zip(expected, averaged.parameters(), strict=True):
        assert torch.allclose(e, p.detach().double(), atol=1e-5)  # the model handed back holds the average
    assert any(not torch.allclose(p, q) for p, q in zip(averaged.parameters(), plain.parameters(), strict=True))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        tiny_run(artifacts, tmp_path / "bad", max_steps=1, ema=1.0)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_crafted_checkpoint_runs_no_code_on_resume(artifacts, tmp_path, monkeypatch):
    # guards against unpickling checkpoints: --resume must load plain tensors only
    tiny_run(artifacts, tmp_path / "run", max_steps=7)
    state = tmp_path / "run" / "checkpoints" / "step-7" / "state.pt"
    torch.save({"model": _RunsCode()}, state)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="holds something other than tensors and numbers"):
        tiny_run(artifacts, tmp_path / "run", resume=True)
    assert not (tmp_path / "pwned").exists()


def test_the_loop_logs_each_automatic_decision_with_its_reason(artifacts, tmp_path, caplog):
    with caplog.at_level("INFO", logger="kd.loop"):
        _, summary = tiny_run(artifacts, tmp_path / "run", max_steps=2)
    assert summary["decisions"]["cuda_graphs"] == "off (device is cpu)" and summary["cuda_graphs"] is False
    assert "cuda_graphs: off (device is cpu)" in caplog.text and "bf16: off (device is cpu)" in caplog.text


def test_export_round_trip_gives_the_same_predictions(artifacts, tmp_path):
    out = tmp_path / "student"
    distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output", str(out),
                  "--max-steps", "10", "--mse", "1", *TINY])
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert (out / "model.safetensors").exists() and (out / "malmoi_normalizer.json").exists()
    inputs = tokenizer(["이 영화 진짜 너무 재밌어요", "시간 아깝다"], return_tensors="pt", padding=True)
    state = load_file(out / "model.safetensors")
    fresh = AutoModelForSequenceClassification.from_config(model.config).eval()
    fresh.load_state_dict(state, strict=False)
    with torch.no_grad():
        assert torch.allclose(model(**inputs).logits, fresh(**inputs).logits)
    # round trip of the tokenizer keeps Hangul syllables (no jamo decomposition, no [UNK])
    assert "[UNK]" not in tokenizer.tokenize("영화 재밌어요")


def test_wrong_tokenizer_or_teacher_is_refused(artifacts, tmp_path, capsys):
    other = tmp_path / "other_tok"
    from kd.tokenizer import train_tokenizer

    train_tokenizer(["전혀 다른 말뭉치 문장"] * 5, other, vocab_size=60, min_frequency=1)
    code = distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(other), "--output", str(tmp_path / "x"),
                         "--max-steps", "2", *TINY])
    assert code == 2 and "student_tokenizer_hash" in capsys.readouterr().err
    wrong_teacher = tmp_path / "teacher2"
    make_teacher(wrong_teacher, 50)
    code = distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--teacher",
                         str(wrong_teacher), "--output", str(tmp_path / "y"), "--max-steps", "2", *TINY])
    assert code == 2 and "teacher_weights_hash" in capsys.readouterr().err


def test_student_copied_from_teacher_layers(artifacts, tmp_path):
    config = distill.DistillConfig(
        data=str(artifacts / "kd"), tokenizer=str(artifacts / "tok"), teacher=str(artifacts / "teacher"),
        student=distill.StudentConfig(num_layers=1, from_teacher=True),
        loop=replace(LoopConfig(output=str(tmp_path / "s")), max_steps=4, batch_size=8, device="cpu",
                     progress=False), measure_cpu_speed=False)
    result = distill.run(config)
    assert result["training"]["steps"] == 4
    teacher = AutoModelForSequenceClassification.from_pretrained(artifacts / "teacher")
    student = AutoModelForSequenceClassification.from_pretrained(tmp_path / "s")
    assert student.config.num_hidden_layers == 1
    assert student.config.hidden_size == teacher.config.hidden_size


def make_masked_lm(folder, tokenizer_dir, hidden=24):
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(3)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=48))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def test_student_started_from_a_pretrained_masked_lm(artifacts, tmp_path):
    # guards against --student-init silently building a fresh student (the encoder must be the
    # checkpoint's) and against a classifier head that does not match the shards' labels
    mlm = make_masked_lm(tmp_path / "mlm", artifacts / "tok")
    config = distill.DistillConfig(data=str(artifacts / "kd"), tokenizer=str(artifacts / "tok"),
                                   student=distill.StudentConfig(init=str(tmp_path / "mlm")),
                                   loop=LoopConfig(output=str(tmp_path / "s"), seed=1))
    student = distill.build_student(config, len(AutoTokenizer.from_pretrained(artifacts / "tok")), LABELS, 0, 32)
    encoder = {k.removeprefix("bert."): v for k, v in mlm.state_dict().items() if k.startswith("bert.")}
    for name, value in student.model.bert.state_dict().items():
        if name in encoder:
            assert torch.equal(value, encoder[name]), name
    assert student.model.config.id2label == {0: "negative", 1: "positive"}
    out = tmp_path / "trained"
    assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output", str(out),
                         "--student-init", str(tmp_path / "mlm"), "--max-steps", "4", *TINY]) == 0
    assert AutoModelForSequenceClassification.from_pretrained(out).config.hidden_size == 24


def test_student_init_with_another_vocabulary_is_refused(artifacts, tmp_path, capsys):
    from kd.tokenizer import train_tokenizer

    train_tokenizer(["전혀 다른 말뭉치 문장"] * 5, tmp_path / "other_tok", vocab_size=60, min_frequency=1)
    make_masked_lm(tmp_path / "mlm", tmp_path / "other_tok")
    code = distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output",
                         str(tmp_path / "x"), "--student-init", str(tmp_path / "mlm"), "--max-steps", "2", *TINY])
    assert code == 2 and "different vocabulary" in capsys.readouterr().err
    code = distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output",
                         str(tmp_path / "y"), "--student-init", str(tmp_path / "mlm"), "--student-from-teacher",
                         "--teacher", str(artifacts / "teacher"), "--max-steps", "2", *TINY])
    assert code == 2 and "pick one" in capsys.readouterr().err


def test_a_time_budget_stops_training_and_still_exports(artifacts, tmp_path):
    out = tmp_path / "budget"
    assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output", str(out),
                         "--max-steps", "100000", "--max-minutes", "0.0001", "--save-every", "1000", *TINY]) == 0
    summary = json.loads((out / "evaluation.json").read_text())["training"]
    assert summary["status"] == "time_budget" and summary["steps"] < 100000
    assert (out / "model.safetensors").exists()
    assert (out / "checkpoints" / f"step-{summary['steps']}" / "COMPLETE").exists()  # resumable


def test_a_time_budget_fits_the_schedule_to_the_budget(artifacts, tmp_path):
    # guards against a --max-minutes run stopping mid-schedule (at a high learning rate) because the
    # decay still assumed --max-steps: identical flags then trained differently with machine load
    from kd.loop import lr_at, schedule_position

    config = LoopConfig(output="x", max_steps=1000, max_minutes=1.0, learning_rate=1e-3, warmup_ratio=0.0)
    assert schedule_position(10, 30.0, config) == 500.0  # half the budget spent: half-way, whatever the steps
    assert schedule_position(800, 30.0, config) == 800.0  # steps further along: steps lead
    assert schedule_position(10, 30.0, config, world_size=2) == 10.0
    assert lr_at(schedule_position(10, 60.0, config), config) == 0.0
    out = tmp_path / "fit"
    assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output", str(out),
                         "--max-steps", "1000000", "--max-minutes", "0.06", "--log-every", "1", "--no-cpu-speed",
                         *TINY]) == 0
    lrs = [r["lr"] for r in read_metrics(out / "metrics.jsonl") if "lr" in r]
    assert len(lrs) > 3 and lrs[-1] < 0.15 * 3e-3 and max(lrs) > 0.5 * 3e-3


@pytest.mark.slow  # two torchrun processes: ~12 s on 2 cores
def test_ddp_with_two_cpu_processes_on_gloo(artifacts, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "kd.distill", "--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"),
               "--output", str(out), "--max-steps", "6", "--log-every", "3", "--device", "cpu", *TINY]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model.safetensors").exists()
    records = [r for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == [3, 6]


def test_a_stopped_distill_exits_non_zero_and_exports_nothing(artifacts, tmp_path):
    # guards against SIGTERM exiting 0 with a normal-looking model after a fraction of the steps
    import time

    out = tmp_path / "stopped"
    child = subprocess.Popen([sys.executable, "-m", "kd.distill", "--data", str(artifacts / "kd"), "--tokenizer",
                              str(artifacts / "tok"), "--output", str(out), "--max-steps", "1000000", "--log-every", "1",
                              "--device", "cpu", *TINY], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    stdout, _ = child.communicate(timeout=120)
    assert child.returncode == 3, stdout
    assert not (out / "model.safetensors").exists() and not (out / "evaluation.json").exists()
    assert list((out / "checkpoints").glob("step-*/COMPLETE"))


def test_resume_refuses_a_checkpoint_of_another_run_and_a_fresh_run_starts_over(artifacts, tmp_path):
    tiny_run(artifacts, tmp_path / "run", max_steps=7)
    with pytest.raises(ValueError, match="written by another run: .*seed was 5, now 6"):
        opened = open_kd_dataset(str(artifacts / "kd"))
        model = DistillStudent(bert_student(vocab_size=len(AutoTokenizer.from_pretrained(artifacts / "tok")),
                                            label_names=LABELS, num_layers=2, hidden_size=32, num_heads=2,
                                            intermediate_size=64), 32)
        config = LoopConfig(output=str(tmp_path / "run"), max_steps=14, batch_size=8, seed=6, device="cpu",
                            resume=True, progress=False, save_every=7, buckets=(8, 16, 32))
        batches = BucketBatches(lambda e: kd_chunks(opened, "train", 6, e), batch_size=8, buckets=config.buckets,
                                pad_id=0, seed=6)
        train(model=model, objective=DistillObjective(DistillWeights()), batches=batches, config=config,
              dist=Distributed())
    (tmp_path / "run" / "checkpoints" / "step-99.tmp").mkdir()  # what a kill mid-save leaves
    _, summary = tiny_run(artifacts, tmp_path / "run", max_steps=3, eval_every=0)  # fresh: old checkpoints go
    assert summary["steps"] == 3 and sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-3"]


def test_distill_exports_the_best_student_on_valid_and_says_which(artifacts, tmp_path):
    # guards against exporting the last step's weights when an earlier evaluation scored better
    from kd.evaluate import kd_split_metrics, predict_kd_split

    out = tmp_path / "best"
    assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output", str(out),
                         "--max-steps", "24", "--eval-every", "4", "--no-cpu-speed", *TINY]) == 0
    evals = [r for r in read_metrics(out / "metrics.jsonl") if "eval/macro_f1" in r]
    best = max(evals, key=lambda r: (r["eval/macro_f1"], -r["step"]))
    exported = json.loads((out / "evaluation.json").read_text())["training"]["exported"]
    assert f"step {best['step']}," in exported
    model = AutoModelForSequenceClassification.from_pretrained(out)
    again = kd_split_metrics(predict_kd_split(model, open_kd_dataset(str(artifacts / "kd")), "valid", pad_id=0))
    assert again["student"]["macro_f1"] == pytest.approx(best["eval/macro_f1"], abs=1e-6)
    assert "exported: best on valid" in (out / "report.md").read_text()

    last = tmp_path / "last"
    assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output", str(last),
                         "--max-steps", "8", "--eval-every", "4", "--export-last", "--no-cpu-speed", *TINY]) == 0
    assert json.loads((last / "evaluation.json").read_text())["training"]["exported"] == "last step (8)"


def test_a_student_stuck_at_the_majority_class_is_warned_about():
    # guards against a hard-label student sitting at chance for 1,500 steps without a word
    import numpy as np

    from kd.evaluate import stuck_at_majority

    labels = np.array([0, 0, 0, 1, 1])
    stuck = {"probs": np.tile([0.9, 0.1], (5, 1)), "labels": labels}
    learning = {"probs": np.array([[0.9, 0.1]] * 3 + [[0.2, 0.8]] * 2), "labels": labels}
    assert stuck_at_majority([stuck, stuck], 2) is None  # too early to say
    warning = stuck_at_majority([learning, stuck, stuck, stuck], 2)
    assert warning and "majority-class rate 0.600" in warning and "--learning-rate" in warning
    assert stuck_at_majority([stuck, stuck, learning], 2) is None


def test_ce_only_trains_on_labeled_rows_only(artifacts, tmp_path):
    # guards against --kl 0 still filling batches with unlabeled rows that teach nothing
    from kd.data import kd_chunks

    opened = open_kd_dataset(str(artifacts / "kd"))
    rows = sum(len(c) for c in kd_chunks(opened, "train", None, 0))
    labeled = sum(len(c) for c in kd_chunks(opened, "train", None, 0, labeled_only=True))
    assert 0 < labeled < rows
    out = tmp_path / "ce"
    assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output", str(out),
                         "--max-steps", "3", "--kl", "0", "--no-cpu-speed", *TINY]) == 0
    assert json.loads((out / "evaluation.json").read_text())["training"]["labeled_only"] is True


def test_unlabeled_share_thins_the_pool_rows_of_every_epoch(artifacts, tmp_path):
    # guards against --unlabeled-share being parsed and reported but not reaching the batches: with
    # share 0 an epoch holds only the gold rows, so the same steps run through more epochs
    from kd.data import count_labeled, has_label

    labeled, unlabeled = count_labeled(open_kd_dataset(str(artifacts / "kd")), "train", "label", has_label)
    assert labeled and unlabeled
    epochs = {}
    for share in ("1", "0"):
        out = tmp_path / f"share{share}"
        assert distill.main(["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--output",
                             str(out), "--max-steps", "40", "--log-every", "40", "--unlabeled-share", share,
                             "--no-cpu-speed", "--no-baseline", *TINY]) == 0
        rows = json.loads((out / "evaluation.json").read_text())["training"]["train_rows"]
        assert (rows["labeled"], rows["unlabeled"], rows["unlabeled_keep"]) == (labeled, unlabeled, float(share))
        epochs[share] = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["epoch"]
    # 40 batches of 8: about 40 * 8 / (labeled + unlabeled) epochs with every row, more with gold rows only
    assert epochs["0"] > epochs["1"], epochs


def test_a_filter_that_keeps_no_train_row_says_why(artifacts, tmp_path, capsys):
    # guards against --unlabeled-share (or --labeled-only) on shards without any gold label
    # dropping every row and failing later with a generic "no batches", or training on nothing
    shards = make_kd_shards(tmp_path / "kd", artifacts / "tok", rows=64, teacher_dir=artifacts / "teacher",
                            unlabeled_every=1)  # a pseudo-labelled corpus: no gold label at all
    base = ["--data", str(shards), "--tokenizer", str(artifacts / "tok"), "--max-steps", "2", "--no-cpu-speed",
            "--no-baseline", *TINY]
    for flags in (["--unlabeled-share", "0.5"], ["--labeled-only"]):
        assert distill.main([*base, "--output", str(tmp_path / flags[0]), *flags]) == 2
        err = capsys.readouterr().err
        assert "has a gold label" in err and flags[0] in err, err
    assert distill.main([*base, "--output", str(tmp_path / "all")]) == 0  # share 1: the teacher's signals alone


def test_evaluate_groups_seeds_explicitly_and_shows_the_cheap_baseline(artifacts, tmp_path):
    # guards against several --model dirs averaged as if they were seeds, a latency that leaves out
    # normalizing and tokenizing, and a report without the baseline a student must beat
    from kd import evaluate

    shards = make_kd_shards(tmp_path / "kd", artifacts / "tok", rows=160, teacher_dir=artifacts / "teacher",
                            unlabeled_every=0)  # both labels in train
    out = tmp_path / "s"
    assert distill.main(["--data", str(shards), "--tokenizer", str(artifacts / "tok"), "--output", str(out),
                         "--max-steps", "4", "--no-cpu-speed", *TINY]) == 0
    assert "TF-IDF + LR" in (out / "report.md").read_text()
    assert "accuracy gap student − baseline" in (out / "report.md").read_text()
    import shutil

    shutil.copytree(out, tmp_path / "s2")  # a second "seed"
    result_file = tmp_path / "eval.json"
    assert evaluate.main(["--data", str(shards), "--model", f"tiny={out}", "--model", f"tiny={tmp_path / 's2'}",
                          "--model", str(out), "--output", str(result_file)]) in (0, None)
    result = json.loads(result_file.read_text())
    assert [(r["name"], r["seeds"]) for r in result["rows"]] == [("tiny", 2), (str(out), 1)]
    run = result["rows"][0]["runs"][0]
    assert run["latency_ms_batch1_served"] > 0
    baseline = result["baseline"]
    assert baseline["name"].startswith("char 1-3-gram") and 0 <= baseline["accuracy"] <= 1 and baseline["train_rows"] > 0
    gap = result["rows"][0]["vs_baseline"]  # the seeds' mean against the baseline, with the split's noise
    assert gap["accuracy_gap"] == pytest.approx(run["student"]["accuracy"] - baseline["accuracy"])
    assert gap["two_standard_errors"] > 0 and gap["beyond_noise"] == (abs(gap["accuracy_gap"]) >= gap["two_standard_errors"])
    paired = result["rows"][0]["vs_baseline_paired"]  # each seed on the same rows as the baseline
    assert len(paired) == 2 and paired[0]["n"] == baseline["n"] == run["student"]["n"]
    assert paired[0]["accuracy_gap"] == pytest.approx(gap["accuracy_gap"])
    evaluation = json.loads((out / "evaluation.json").read_text())["test"]
    assert evaluation["vs_baseline_paired"]["n"] == baseline["n"]
    assert ", paired (only the student right on" in (out / "report.md").read_text()


def test_the_report_says_when_the_gap_to_the_baseline_is_noise():
    # guards against a report calling a student better on a gap smaller than its test split's
    # sampling noise: 0.830 vs 0.817 on 613 rows looked like a win and was not on 3,629
    from kd.report import comparison_noise

    small = comparison_noise({"n": 613, "accuracy": 0.830}, {"accuracy": 0.817})
    assert "WITHIN the noise" in small and "+1.3 points" in small and "±4.4" in small
    large = comparison_noise({"n": 3629, "accuracy": 0.830}, {"accuracy": 0.790})
    assert "beyond two standard errors" in large and "+4.0 points" in large
    assert "beyond" in comparison_noise({"n": 3629, "accuracy": 0.79}, {"accuracy": 0.83})  # losing is shown too
    assert comparison_noise({"n": 0, "accuracy": 0.5}, {"accuracy": 0.5}) is None


def test_pair_rows_aligns_two_models_rows_whatever_their_order():
    # guards the paired comparison against pairing row i of one model with row i of the other
    # when the two read the split in different orders (bucketed batches vs file order)
    import numpy as np

    from kd.report import pair_rows

    keys_a = np.array([5, 7, 5, 9, 11])  # 5 twice (a duplicated text); 11 only on this side
    keys_b = np.array([9, 5, 7, 5, 3])
    values_a = np.array([10, 20, 30, 40, 50])
    values_b = np.array([400, 100, 200, 300, 999])
    left, right = pair_rows(keys_a, values_a, keys_b, values_b)
    assert left.tolist() == [10, 20, 30, 40] and right.tolist() == [100, 200, 300, 400]


def test_the_paired_gap_is_judged_on_the_rows_the_models_disagree_on():
    # guards against a paired test that ignores which rows each model got right: on 3,600 rows a
    # 1-point gap made of 36 one-sided wins is beyond the noise paired, not unpaired
    import numpy as np

    from kd.report import accuracy_gap, comparison_noise, paired_accuracy_gap

    n = 3600
    baseline = np.zeros(n, bool)
    baseline[:2952] = True  # 0.82
    student = baseline.copy()
    student[2952:2988] = True  # 36 more rows right, none lost: 0.83
    paired = paired_accuracy_gap(student, baseline)
    assert paired["model_only_right"] == 36 and paired["baseline_only_right"] == 0
    assert paired["accuracy_gap"] == pytest.approx(0.01) and paired["beyond_noise"]
    assert not accuracy_gap({"n": n, "accuracy": student.mean()}, {"accuracy": baseline.mean()})["beyond_noise"]
    line = comparison_noise({"n": n, "accuracy": student.mean()}, {"accuracy": baseline.mean()}, paired)
    assert "paired" in line and "beyond two standard errors" in line and "only the student right on 36" in line
    churn = baseline.copy()  # the same 1-point gap made of 236 wins and 200 losses: noise
    churn[2952:3188] = True
    churn[:200] = False
    assert not paired_accuracy_gap(churn, baseline)["beyond_noise"]
    assert not paired_accuracy_gap(baseline, baseline)["beyond_noise"]  # identical models: no gap, never "beyond"


def test_prior_correction_finds_the_rare_class_a_student_never_predicts():
    # guards the logit adjustment's fit: a rare class the model never predicts (macro-F1 lost on it)
    # must get a τ > 0 that recovers it, and a model already right everywhere must keep τ = 0
    import numpy as np

    from kd.evaluate import fit_prior_correction, log_prior

    labels = np.array([0] * 90 + [1] * 10)
    prior = log_prior(labels, 2)
    probs = np.tile([0.7, 0.3], (100, 1))  # the rare class scored lower everywhere…
    probs[90:] = [0.6, 0.4]  # …but a little higher on its own rows
    fit = fit_prior_correction(probs, labels, prior)
    assert fit["tau"] > 0 and fit["macro_f1_after"] == pytest.approx(1.0) and fit["macro_f1_before"] < 0.5
    right = np.where(labels[:, None] == np.arange(2), 0.9, 0.1)
    assert fit_prior_correction(right, labels, prior)["tau"] == 0.0


def test_prior_correction_is_baked_into_the_exported_classifier(artifacts, tmp_path, capsys):
    # guards against a --prior-correction that changes nothing in the export (a documented option
    # that does nothing), one that would need malmoi's code to serve, and a silent no-op on entity shards
    import numpy as np

    from kd.baseline import labeled_rows
    from kd.evaluate import log_prior

    base = ["--data", str(artifacts / "kd"), "--tokenizer", str(artifacts / "tok"), "--max-steps", "4",
            "--no-cpu-speed", "--no-baseline", "--export-last", *TINY]
    assert distill.main([*base, "--output", str(tmp_path / "plain")]) == 0
    assert distill.main([*base, "--output", str(tmp_path / "corrected"), "--prior-correction", "0.5"]) == 0
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "plain").classifier.bias.detach().numpy()
    corrected = AutoModelForSequenceClassification.from_pretrained(tmp_path / "corrected").classifier.bias.detach()
    prior = log_prior(labeled_rows(open_kd_dataset(str(artifacts / "kd")), "train")[1], len(LABELS))
    assert corrected.numpy() == pytest.approx(plain - 0.5 * prior, abs=1e-5)
    assert "prior correction: the classifier's bias minus τ = 0.5" in (tmp_path / "corrected" / "report.md").read_text()
    assert distill.main([*base, "--output", str(tmp_path / "auto"), "--prior-correction", "auto"]) == 0
    summary = json.loads((tmp_path / "auto" / "evaluation.json").read_text())["training"]["prior_correction"]
    assert summary["fitted_on"] == "valid" and summary["macro_f1_after"] >= summary["macro_f1_before"]
    assert 0 <= summary["tau"] <= 1.5 and np.isclose(sum(summary["train_label_share"]), 1, atol=1e-3)
    with pytest.raises(SystemExit):
        distill.main([*base, "--output", str(tmp_path / "bad"), "--prior-correction", "-1"])
    assert "expected a number >= 0" in capsys.readouterr().err
