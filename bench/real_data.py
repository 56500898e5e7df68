"""The real-data benchmark (issue 6): the whole pipeline on NSMC and 3i4K, plus the StyleKQC gap.

    .venv/bin/python -m bench.real_data --small            # CPU, under an hour on 2 cores
    .venv/bin/python -m bench.real_data --device cuda      # full mode, for a GPU

For each task (NSMC sentiment, 3i4K intent), with the unlabeled BEEP! comments as an extra
pseudo-label pool: one shared tokenizer and masked-LM pretraining on all texts (no pretrained
Korean checkpoint can be downloaded here, so the teacher starts from this small MLM — a real
teacher would start from a checkpoint you provide), a fine-tuned teacher, kd shards with
``colloquial`` paraphrases, then three students over 3 seeds:

* ``kd+aug``  — KL + CE on the shards including vetted paraphrases and the unlabeled pool;
* ``kd``      — KL + CE on the original rows (the unlabeled pool included);
* ``hard``    — CE only on the labeled original rows.

Reports accuracy and macro-F1 (mean ± std over seeds), retention (student / teacher accuracy on
the same test rows), non-embedding parameters and CPU latency at batch 1 (one thread).

StyleKQC (act, 4 classes): a classifier trained on the *formal* half of the training sentences,
tested on formal vs informal test sentences; on raw text, with the normalizer, and with the
normalizer and ``colloquial`` augmentation of the training rows (over the seeds). The gap is
formal − informal accuracy. CPU latency at batch 1 is measured eagerly and as TorchScript.

With ``--mlm DIR`` the teacher starts from a masked LM you provide (its tokenizer is then the
students' too) instead of the small one pretrained here, and with ``--student-init DIR`` every
student starts from a small pretrained checkpoint with the same tokenizer instead of random
weights — how malmoi is meant to be used. ``bench.pretrain_checkpoints`` makes both on a lent GPU
from the real sentences this benchmark does not use.

``--adapt-steps N`` first continues both checkpoints for N masked-LM steps on each task's own
train-split texts (task-adaptive pretraining, as a user would on their own unlabeled text), and
``--pool in-domain,neutral,beep`` combines unlabeled sources. With ``--test-rows``, pool rows whose
text is a test row's are dropped (counted in the report), and ``--transfer-variants K`` adds K
word-swap/deletion variants of every train and pool text to the pool as unlabeled rows, which
every teacher (the n-gram file included) then scores on their own text.

``--test-rows N`` adds N labeled rows to the test split only (taken after the labeled rows and
before the pool, so no system trains on them): ~600 hash-split test rows leave a standard error of
±1.6 points, more than the gaps this benchmark measures. ``--student-shape 4,256,4,1024
--student-lr 5e-4`` trains students of kd.distill's default shape and learning rate instead of
this benchmark's 2 layers / 128 at 2e-3 (4 layers / 256 at 2e-3 fell to the majority class).

Sources (see each SOURCE.md): NSMC sample (CC0), 3i4K (CC BY-SA), BEEP! (CC BY-SA), StyleKQC (CC BY-SA).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.corpora import require_shared_data

SIZES = {
    "smoke": {"train_rows": 400, "pool": 200, "mlm_steps": 20, "teacher_steps": 30, "student_steps": 30,
              "style_rows": 300, "batch": 16, "seeds": 2},
    # students: 1,500 steps (at 500 their training loss was still falling steeply and one seed in
    # three stalled; docs/benchmarks.md)
    "small": {"train_rows": 6000, "pool": 3000, "mlm_steps": 400, "teacher_steps": 500, "student_steps": 1500,
              "style_rows": 4000, "batch": 32, "seeds": 3},
    "full": {"train_rows": 60000, "pool": 30000, "mlm_steps": 10000, "teacher_steps": 6000, "student_steps": 8000,
             "style_rows": 12000, "batch": 64, "seeds": 3},
}
TEACHER = ["--layers", "4", "--hidden", "256", "--heads", "4", "--intermediate", "1024"]
STUDENT = ["--student-layers", "2", "--student-hidden", "128", "--student-heads", "4", "--student-intermediate", "256"]


def student_shape(spec: str) -> list[str]:
    """``"layers,hidden,heads,intermediate"`` as ``kd.distill`` flags."""
    values = [int(v) for v in spec.split(",")]
    if len(values) != 4:
        raise SystemExit(f"--student-shape takes layers,hidden,heads,intermediate; found {spec!r}")
    return [x for flag, v in zip(STUDENT[::2], values, strict=True) for x in (flag, str(v))]


def with_splits(labeled: list[dict], extra_test: list[dict], pool: list[dict]) -> tuple[list[dict], list[dict]]:
    """``--test-rows``: each labeled row's split by a stable hash of its id (80/10/10, as the
    default hash split), the extra rows all test, the pool all train — a test split large enough
    that a point of accuracy is more than its standard error (600 rows give ±1.6 points). Its own
    sha256 bucket, not ``beam_jobs.records.assign_split``: the recorded s12 figures used these rows."""
    def split(row_id: str) -> str:
        bucket = int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 10
        return "train" if bucket < 8 else "valid" if bucket == 8 else "test"

    rows = [dict(r, split=split(r["id"])) for r in labeled] + [dict(r, split="test") for r in extra_test]
    return rows, [dict(r, split="train") for r in pool]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def nsmc_sample() -> list[dict]:
    """The NSMC sample's reviews with text, in file order (``label`` empty for those rated 5–8)."""
    root = require_shared_data()
    with open(root / "nsmc_sample" / "nsmc_raw_sample.tsv", encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if r["document"]]


def nsmc_rows(limit: int, offset: int = 0) -> list[dict]:
    rows = [{"id": f"nsmc-{r['id']}", "text": r["document"], "label": r["label"]} for r in nsmc_sample() if r["label"]]
    return rows[offset:offset + limit]


def nsmc_neutral_rows(limit: int) -> list[dict]:
    """The NSMC sample's reviews rated 5–8 (no label by the NSMC rule): in-domain text with no
    gold label, what a user with a ratings dump has beside the clear-cut reviews."""
    return [{"id": f"nsmc-{r['id']}", "text": r["document"]} for r in nsmc_sample() if not r["label"]][:limit]


POOL_SOURCES = ("in-domain", "beep", "neutral")


def pool_sources(spec: str) -> list[str]:
    """``--pool`` as a list of sources, each known (else a one-line error naming them)."""
    sources = [v.strip() for v in spec.split(",") if v.strip()]
    unknown = [v for v in sources if v not in POOL_SOURCES]
    if unknown or not sources:
        raise SystemExit(f"--pool takes {', '.join(POOL_SOURCES)} (comma-separated); found {spec!r}")
    return sources


def task_pool(sources: list[str], task: str, in_domain: list[dict], beep: list[dict], limit: int) -> list[dict]:
    """The unlabeled pool of ``task`` from ``--pool`` sources, in order: ``in-domain`` (the task's
    own rows beyond the labeled ones, labels dropped), ``beep`` (BEEP! comments), ``neutral``
    (NSMC only: its 5–8-rated reviews; none for other tasks)."""
    parts = {"in-domain": lambda: in_domain, "beep": lambda: beep,
             "neutral": lambda: nsmc_neutral_rows(limit) if task == "nsmc" else []}
    return [row for source in sources for row in parts[source]()]


def transfer_variants(rows: list[dict], per_row: int, seed: int = 0) -> list[dict]:
    """Up to ``per_row`` word-swap/deletion variants (``EdaParaphraser``) of each train-split or
    unlabeled row, as unlabeled pool rows: a larger transfer set (Tang et al. 2019) on which the
    ensemble — the n-gram member included — scores each variant's own text."""
    from beam_jobs.paraphrase import EdaParaphraser

    eda = EdaParaphraser(num_candidates=per_row)
    return [{"id": f"{r['id']}~v{k}", "text": text, "split": "train"}
            for r in rows if r.get("split", "train") == "train" for k, text in enumerate(eda(r["id"], r["text"], seed))]


def drop_test_texts(pool: list[dict], rows: list[dict]) -> tuple[list[dict], int]:
    """The pool without the rows whose text (spacing aside) is a test row's: a short review such
    as "최고" recurs, and a pool copy would show the students a test input. Returns the kept rows
    and how many were dropped."""
    def key(text: str) -> str:
        return "".join(text.split())

    test = {key(r["text"]) for r in rows if r.get("split") == "test"}
    kept = [r for r in pool if key(r["text"]) not in test]
    return kept, len(pool) - len(kept)


def kor3i4k_rows(limit: int, offset: int = 0) -> list[dict]:
    root = require_shared_data()
    rows = []
    for name in ("fci_train_val.txt", "fci_test.txt"):
        with open(root / "kor_3i4k" / name, encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                label, _, text = line.rstrip("\n").partition("\t")
                if text:
                    rows.append({"id": f"3i4k-{name[:8]}-{i}", "text": text, "label": label})
    rng = np.random.default_rng(0)
    return [rows[i] for i in rng.permutation(len(rows))[offset:offset + limit]]


def beep_pool(limit: int) -> list[dict]:
    root = require_shared_data()
    with open(root / "korean_hate_speech_beep" / "unlabeled_comments_5.txt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    return [{"id": f"beep-{i}", "text": t} for i, t in enumerate(lines[:limit])]


def stylekqc_rows(split: str) -> list[dict]:
    root = require_shared_data()
    with open(root / "stylekqc" / f"act__{split}.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    # in every group of 10 sentences, positions 0-4 are formal and 5-9 informal (SOURCE.md)
    out = [{"id": f"skqc-{split}-{i}", "text": r["sentence"], "label": r["act"],
            "style": "formal" if i % 10 < 5 else "informal"} for i, r in enumerate(rows)]
    return [out[i] for i in np.random.default_rng(0).permutation(len(out))]  # the files are grouped by label


def random_masked_lm(tokenizer_dir: Path, out: Path, shape: list[str] = TEACHER) -> None:
    """A masked LM of ``shape`` (``--layers 4 --hidden 256 …``) with random weights and the
    tokenizer saved beside it: a ``--init`` for a teacher trained without pretraining."""
    from transformers import BertConfig, BertForMaskedLM

    from beam_jobs.text.subwords import load_subword_tokenizer

    tokenizer = load_subword_tokenizer(str(tokenizer_dir))
    flags = dict(zip(shape[::2], shape[1::2], strict=True))
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), num_hidden_layers=int(flags["--layers"]),
                               hidden_size=int(flags["--hidden"]), num_attention_heads=int(flags["--heads"]),
                               intermediate_size=int(flags["--intermediate"]))).save_pretrained(out)
    tokenizer.save_pretrained(out)


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}


def char_ngram_signals(utterances: Path, teacher: Path, out: Path) -> Path:
    """The cheap baseline as an outside teacher: a character 1–3-gram TF-IDF + LR fitted on the
    gold labels of the train split, its log-probabilities for every utterance (keyed by id, in
    the checkpoint teacher's label order) as a ``--teacher-signals`` file."""
    from kd.baseline import class_log_probs, fit_char_ngrams
    from schemas import UTTERANCES, read_dataset

    labels = [v for _, v in sorted((int(k), v) for k, v in
                                   json.loads((teacher / "config.json").read_text())["id2label"].items())]
    table = read_dataset(str(utterances), UTTERANCES, columns=["id", "text", "label", "split"]).to_pylist()
    train = [r for r in table if r["split"] == "train" and r["label"] in labels]
    model = fit_char_ngrams([r["text"] for r in train], np.asarray([labels.index(r["label"]) for r in train]))
    log_probs = class_log_probs(model, [r["text"] for r in table], len(labels))
    return write_jsonl(out, [{"id": r["id"], "logits": [float(x) for x in lp]} for r, lp in zip(table, log_probs,
                                                                                                    strict=True)])


def adapt_to_task(checkpoint: Path, utterances: Path, out: Path, steps: int, learning_rate: str, device: str) -> dict:
    """Task-adaptive masked-LM pretraining (Gururangan et al. 2020): ``checkpoint`` continued for
    ``steps`` on the task's own train-split texts (the labeled train rows and the unlabeled pool;
    kd.pretrain never reads the test split); the valid MLM loss at each of its six evaluations."""
    from kd import pretrain

    started = time.perf_counter()
    assert pretrain.main(["--data", str(utterances), "--tokenizer", str(checkpoint), "--init", str(checkpoint),
                          "--output", str(out), "--max-steps", str(steps), "--batch-size", "64",
                          "--learning-rate", learning_rate, "--eval-every", str(max(1, steps // 6)),
                          "--no-progress", "--device", device]) == 0
    losses = [json.loads(line)["eval/mlm_loss"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if "eval/mlm_loss" in line]
    return {"from": str(checkpoint), "steps": steps, "learning_rate": learning_rate, "valid_mlm_loss": losses,
            "minutes": (time.perf_counter() - started) / 60}


def finetune_teacher(utterances: Path, init: str | Path, out: Path, seed: int, steps: int, batch: int,
                     device: str) -> None:
    """A task teacher as the benchmark fine-tunes it: 5e-4, six evaluations, best on valid, patience 3."""
    from kd import finetune

    assert finetune.main(["--data", str(utterances), "--init", str(init), "--output", str(out), "--seed", str(seed),
                          "--max-steps", str(steps), "--learning-rate", "5e-4", "--eval-every",
                          str(max(50, steps // 6)), "--patience", "3", "--no-progress", "--device", device,
                          "--batch-size", str(batch)]) == 0


def run_task(name: str, rows: list[dict], pool: list[dict], work: Path, shared: dict, size: dict, device: str,
             variants: tuple[str, ...] = ("kd+aug", "kd", "hard", "ens+aug")) -> dict:
    from beam_jobs import augment, preprocess
    from kd import distill
    from kd.baseline import evaluate_baseline
    from kd.data import open_kd_dataset
    from kd.evaluate import evaluate_model_dir, interleaved_latency, split_texts
    from kd.report import pair_rows, paired_accuracy_gap

    runner = ["--runner", "FnApiRunner"]
    loop = ["--no-progress", "--device", device, "--batch-size", str(size["batch"])]
    task = work / name
    task.mkdir()
    write_jsonl(task / "labeled.jsonl", rows)
    write_jsonl(task / "pool.jsonl", pool)
    started = time.perf_counter()
    explicit = ["--split-column", "split"] if "split" in rows[0] else []  # --test-rows: splits given per row
    preprocess.run(["--input", str(task / "labeled.jsonl"), "--input", str(task / "pool.jsonl"),
                    "--output", str(task / "utterances"), *explicit] + runner)
    adapted: dict = {}
    if shared.get("adapt_steps"):  # the teacher's and the students' checkpoints, adapted to this task's texts
        adapted["teacher_init"] = adapt_to_task(Path(shared["mlm"]), task / "utterances", task / "adapted_mlm",
                                                shared["adapt_steps"], "5e-4", device)
        shared = dict(shared, mlm=task / "adapted_mlm")
        if shared.get("student_init"):
            adapted["student_init"] = adapt_to_task(Path(shared["student_init"]), task / "utterances",
                                                    task / "adapted_student", shared["adapt_steps"], "1e-3", device)
            shared = dict(shared, student_init=task / "adapted_student")
    finetune_teacher(task / "utterances", shared["mlm"], task / "teacher", shared.get("teacher_seed", 0),
                     size["teacher_steps"], size["batch"], device)
    augment.run(["--input", str(task / "utterances"), "--output", str(task / "kd"), "--teacher", str(task / "teacher"),
                 "--student-tokenizer", str(shared["tokenizer"]), "--paraphrase", "colloquial",
                 "--device", device] + runner)
    if "ens+aug" in variants:  # the transformer teacher and the char n-gram model, weights fitted on valid
        signals = char_ngram_signals(task / "utterances", task / "teacher", task / "char_ngram_signals.jsonl")
        augment.run(["--input", str(task / "utterances"), "--output", str(task / "kd-ens"), "--teacher",
                     str(task / "teacher"), "--teacher-signals", str(signals), "--student-tokenizer",
                     str(shared["tokenizer"]), "--paraphrase", "colloquial", "--device", device] + runner)
    opened = open_kd_dataset(str(task / "kd"))
    texts = split_texts(opened, "test")
    teacher_eval = evaluate_model_dir(str(task / "teacher"), opened, "test", texts)
    baseline_rows: dict = {}
    baseline = evaluate_baseline(opened, "test", rows=baseline_rows)
    flags = {"kd+aug": ("kd", []), "kd": ("kd", ["--originals-only"]), "hard": ("kd", ["--originals-only", "--kl", "0"]),
             "ens+aug": ("kd-ens", [])}
    students: dict[str, list[dict]] = {}
    ensemble = None
    if "ens+aug" in variants:
        opened_ens = open_kd_dataset(str(task / "kd-ens"))
        ensemble = {"members": opened_ens.provenance.get("ensemble"),
                    "test": evaluate_model_dir(str(task / "teacher"), opened_ens, "test", texts)["teacher"]}
    for variant in variants:
        data, extra = flags[variant]
        for seed in range(size["seeds"]):
            out = task / f"student-{variant}-{seed}"
            shape = (["--student-init", str(shared["student_init"])] if shared.get("student_init")
                     else shared.get("student_shape", STUDENT))
            assert distill.main(["--data", str(task / data), "--tokenizer", str(shared["tokenizer"]), "--output", str(out),
                                 "--teacher", str(task / "teacher"), *shape, "--max-steps", str(size["student_steps"]),
                                 # a pretrained student is fine-tuned more gently than one from random weights
                                 "--learning-rate", shared.get("student_lr") or
                                 ("1e-3" if shared.get("student_init") else "2e-3"),
                                 # the best-on-valid student is exported, as kd.distill does by default
                                 "--eval-every", str(max(50, size["student_steps"] // 10)),
                                 "--seed", str(seed), "--prior-correction", shared.get("prior_correction", "0"),
                                 *extra, *loop]) == 0
            rows_of_student: dict = {}
            scores = evaluate_model_dir(str(out), opened, "test", texts, rows=rows_of_student)
            # the student against the n-gram baseline on the same test rows (paired)
            scores["vs_baseline_paired"] = paired_accuracy_gap(*pair_rows(
                rows_of_student["keys"], rows_of_student["correct"], baseline_rows["keys"], baseline_rows["correct"]))
            students.setdefault(variant, []).append(scores)
    conservation = json.loads((task / "kd" / "_stats.json").read_text())["conservation"]
    result = {
        "rows": {"labeled": len(rows), "unlabeled_pool": len(pool), "kd": conservation},
        "adapted": adapted or None,
        "teacher": {"accuracy": teacher_eval["teacher"]["accuracy"], "macro_f1": teacher_eval["teacher"]["macro_f1"],
                    "model_accuracy": teacher_eval["student"]["accuracy"],
                    "non_embedding_params": teacher_eval["parameters"]["non_embedding"],
                    "latency_ms_batch1": teacher_eval["latency_ms_batch1"],
                    "latency_ms_batch1_torchscript": teacher_eval["latency_ms_batch1_torchscript"]},
        "baseline": {k: baseline.get(k) for k in ("name", "accuracy", "macro_f1", "train_rows", "fit_seconds",
                                                  "latency_ms_batch1_served", "skipped")},
        "ensemble_teacher": ensemble,
        "students": {},
        "minutes": (time.perf_counter() - started) / 60,
    }
    for variant, runs in students.items():
        result["students"][variant] = {
            "accuracy": mean_std([r["student"]["accuracy"] for r in runs]),
            "macro_f1": mean_std([r["student"]["macro_f1"] for r in runs]),
            "retention": mean_std([r["retention"] for r in runs]),
            "vs_baseline_paired": [r["vs_baseline_paired"] for r in runs],
            "non_embedding_params": runs[0]["parameters"]["non_embedding"],
            "latency_ms_batch1": mean_std([r["latency_ms_batch1"] for r in runs]),
            "latency_ms_batch1_torchscript": mean_std([r["latency_ms_batch1_torchscript"] for r in runs]),
        }
    # how many times faster than the teacher at batch 1 on the CPU: the teacher and each variant's
    # seed-0 student timed in turn on each sentence (back-to-back figures drift with the machine)
    interleaved = interleaved_latency({"teacher": str(task / "teacher"),
                                       **{v: str(task / f"student-{v}-0") for v in variants}}, texts)
    result["batch1_interleaved"] = {
        "latency": interleaved,
        "speedup_vs_teacher": {v: {kind: interleaved["teacher"][kind] / value for kind, value in interleaved[v].items()}
                               for v in variants}}
    return result


def run_stylekqc(work: Path, shared: dict, size: dict, device: str) -> dict:
    """Formal-trained act classifiers tested on formal vs informal sentences, three training
    variants over ``size["seeds"]`` seeds: raw text; the default normalizer; the default
    normalizer + ``colloquial`` augmentation (which shifts polite endings to casual speech)."""
    from beam_jobs import preprocess
    from beam_jobs.paraphrase import ColloquialParaphraser
    from kd.predict import Predictor

    runner = ["--runner", "FnApiRunner"]
    folder = work / "stylekqc"
    folder.mkdir()
    train = [r for r in stylekqc_rows("train") if r["style"] == "formal"][: size["style_rows"]]
    test = stylekqc_rows("test")
    paraphrase = ColloquialParaphraser(num_candidates=2)
    augmented = train + [dict(r, id=f"{r['id']}-c{k}", text=t) for r in train
                         for k, t in enumerate(paraphrase(r["id"], r["text"]))]
    switched_off = {k: False for k in ("colloquial", "split_glued_laughter", "nikl_markup", "kspon_markup",
                                       "mask_urls", "mask_emails", "mask_mentions", "mask_phone_numbers")}
    (folder / "raw.json").write_text(json.dumps({**switched_off, "max_jamo_run": 1000, "max_punct_run": 1000}),
                                     encoding="utf-8")
    raw = ["--normalizer-config", str(folder / "raw.json")]
    variants = {"raw text, no augmentation": ("raw", train, raw),
                "normalized, no augmentation": ("normalized", train, []),
                "normalized + colloquial augmentation": ("normalized_aug", augmented, [])}
    results = {}
    for variant, (key, rows, normalizer) in variants.items():
        data = write_jsonl(folder / f"{key}.jsonl", rows)
        preprocess.run(["--input", str(data), "--output", str(folder / f"utt-{key}"), "--split-ratios", "0.9,0.1,0.0",
                        *normalizer] + runner)
        runs = []
        for seed in range(size["seeds"]):
            model_dir = folder / f"model-{key}-{seed}"
            finetune_teacher(folder / f"utt-{key}", shared["mlm"], model_dir, seed, size["teacher_steps"], size["batch"],
                             device)
            predictor = Predictor(str(model_dir))
            accuracy = {}
            for style in ("formal", "informal"):
                subset = [r for r in test if r["style"] == style]
                predictions = predictor.predict([r["text"] for r in subset])
                accuracy[style] = float(np.mean([p["label"] == r["label"]
                                                 for p, r in zip(predictions, subset, strict=True)]))
            runs.append({**accuracy, "gap": accuracy["formal"] - accuracy["informal"]})
        results[variant] = {k: mean_std([r[k] for r in runs]) for k in ("formal", "informal", "gap")}
        results[variant]["train_rows"] = len(rows)
        print("StyleKQC", variant, json.dumps(results[variant]), flush=True)
    return results


def provided_checkpoints(mlm: str, student_init: str | None, mode: str) -> dict:
    """What the provided checkpoints are (shape, pretraining record), and a warning when their
    corpus was not made holding out this mode's rows."""
    from transformers import AutoConfig

    out = {}
    for role, folder in (("teacher_init", mlm), ("student_init", student_init)):
        if not folder:
            continue
        config = AutoConfig.from_pretrained(folder)
        entry = {"path": folder, "layers": config.num_hidden_layers, "hidden": config.hidden_size}
        summary = Path(folder) / "training_summary.json"
        if summary.exists():
            entry["pretraining"] = json.loads(summary.read_text())["summary"]
        corpus = Path(folder) / "malmoi_pretrain_corpus.json"
        if corpus.exists():
            entry["corpus"] = json.loads(corpus.read_text())
            if entry["corpus"].get("held_out_for_mode") != mode:
                print(f"warning: {folder} was pretrained holding out the {entry['corpus'].get('held_out_for_mode')} "
                      f"rows, not the {mode} ones: its corpus may contain test sentences", flush=True)
        out[role] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CPU-sized run (under an hour on 2 cores)")
    parser.add_argument("--smoke", action="store_true", help="a few minutes, to check the script runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    parser.add_argument("--only", default="nsmc,3i4k,stylekqc")
    parser.add_argument("--mlm", default=None, help="start the teacher from this masked LM (and use its tokenizer) "
                                                    "instead of pretraining a small one here")
    parser.add_argument("--teacher-seed", type=int, default=0, help="the task teachers' fine-tuning seed")
    parser.add_argument("--no-mlm", action="store_true",
                        help="no masked-LM pretraining here: the teacher starts from random weights of the same "
                             "shape (400 MLM steps on this CPU collapsed the encoder, docs/benchmarks.md)")
    parser.add_argument("--variants", default="kd+aug,kd,hard,ens+aug",
                        help="students to train: kd+aug, kd, hard, ens+aug (distilled from the transformer teacher "
                             "and the char n-gram baseline combined)")
    parser.add_argument("--pool", default="beep",
                        help="the unlabeled pool, comma-separated sources: beep (BEEP! comments, both tasks), "
                             "in-domain (each task's own rows beyond the labeled ones with their labels dropped: "
                             "what a user with few labels and many unlabeled in-domain texts has), neutral (NSMC "
                             "only: the sample's 5,000 reviews rated 5-8, which have no label)")
    parser.add_argument("--pool-rows", type=int, default=None,
                        help="rows taken from each --pool source (default: the mode's)")
    parser.add_argument("--student-steps", type=int, default=None, help="student steps (default: the mode's)")
    parser.add_argument("--test-rows", type=int, default=0,
                        help="labeled rows added to the test split only, beyond the labeled and before the pool rows "
                             "(the splits are then given per row; 0: the preprocess hash split of the labeled rows)")
    parser.add_argument("--student-lr", default=None,
                        help="the students' peak learning rate (default: 2e-3 from random weights, 1e-3 from "
                             "--student-init; 4 layers / 256 from random weights diverge at 2e-3, take 5e-4)")
    parser.add_argument("--keep", default=None, help="work in this (new) folder and keep it: the teachers, kd shards "
                                                     "and students stay for probing")
    parser.add_argument("--student-shape", default=None, help="layers,hidden,heads,intermediate of the random-init "
                                                              "students (default: 2,128,4,256)")
    parser.add_argument("--prior-correction", default="0",
                        help="the students' kd.distill --prior-correction (TAU or auto: rare intents predicted more "
                             "often, macro-F1 for some accuracy; 0: off)")
    parser.add_argument("--adapt-steps", type=int, default=0,
                        help="first continue the teacher's --mlm and the --student-init checkpoint for this many "
                             "masked-LM steps on each task's own train-split texts (task-adaptive pretraining; "
                             "the test rows are never read; 0: off)")
    parser.add_argument("--transfer-variants", type=int, default=0,
                        help="with --test-rows: add up to this many word-swap/deletion variants of every train and "
                             "pool text to the pool, scored on their own text by the teachers (0: off)")
    parser.add_argument("--student-init", default=None, help="start every student from this checkpoint "
                                                             "(same tokenizer as --mlm)")
    args = parser.parse_args()
    import transformers

    transformers.logging.set_verbosity_error()
    from itertools import chain

    from beam_jobs import preprocess
    from kd import pretrain
    from kd.tokenizer import dataset_texts, train_tokenizer

    sources = pool_sources(args.pool)  # an unknown source stops here, before any work
    if args.transfer_variants and not args.test_rows:
        raise SystemExit("--transfer-variants needs --test-rows: only rows whose split is known before preprocess "
                         "can be varied without varying a test row")
    mode = "smoke" if args.smoke else "small" if args.small else "full"
    size = dict(SIZES[mode])
    size.update({k: v for k, v in (("pool", args.pool_rows), ("student_steps", args.student_steps)) if v})
    torch.manual_seed(0)
    report: dict = {"date": time.strftime("%Y-%m-%d"), "mode": mode,
                    "device": torch.cuda.get_device_name() if args.device == "cuda" else
                    f"{platform.machine()} CPU, {torch.get_num_threads()} threads", "sizes": size}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.keep:
            work = Path(args.keep)
            work.mkdir(parents=True)
        nsmc, intents = nsmc_rows(size["train_rows"]), kor3i4k_rows(size["train_rows"])
        pool = beep_pool(size["pool"])
        after = size["train_rows"] + args.test_rows  # the extra test rows come first, so the pool never holds them
        unlabeled = {"nsmc": [{"id": r["id"], "text": r["text"]} for r in nsmc_rows(size["pool"], after)],
                     "3i4k": [{"id": r["id"], "text": r["text"]} for r in kor3i4k_rows(size["pool"], after)]}
        extra_test = {"nsmc": nsmc_rows(args.test_rows, size["train_rows"]),
                      "3i4k": kor3i4k_rows(args.test_rows, size["train_rows"])}
        report["test_rows_extra"] = args.test_rows
        report["pool"] = args.pool
        report["transfer_variants"] = args.transfer_variants
        report["adapt_steps"] = args.adapt_steps
        style = [r for r in stylekqc_rows("train") if r["style"] == "formal"][: size["style_rows"]]
        if args.mlm:
            shared = {"tokenizer": Path(args.mlm), "mlm": Path(args.mlm)}
            report["checkpoints"] = provided_checkpoints(args.mlm, args.student_init, mode)
        else:
            # what this pretraining always read (the labeled rows, the BEEP! comments, StyleKQC), and
            # each task's other --pool sources
            texts = nsmc + intents + pool + style + [
                r for key in ("nsmc", "3i4k")
                for r in task_pool([v for v in sources if v != "beep"], key, unlabeled[key], pool, size["pool"])]
            write_jsonl(work / "all.jsonl", [{"id": r["id"], "text": r["text"]} for r in texts])
            preprocess.run(["--input", str(work / "all.jsonl"), "--output", str(work / "all"), "--runner",
                            "FnApiRunner", "--split-ratios", "0.98,0.02,0.0"])
            shared = {"tokenizer": work / "tokenizer", "mlm": work / "mlm"}
            train_tokenizer(chain(dataset_texts(str(work / "all"), split=None)), shared["tokenizer"], vocab_size=8000)
        if not args.mlm and args.no_mlm:
            random_masked_lm(shared["tokenizer"], shared["mlm"])
            report["teacher_init"] = "random weights (--no-mlm)"
        elif not args.mlm:
            assert pretrain.main(["--data", str(work / "all"), "--tokenizer", str(shared["tokenizer"]), "--output",
                                  str(shared["mlm"]), *TEACHER, "--max-steps", str(size["mlm_steps"]),
                                  "--learning-rate", "1e-3", "--batch-size", str(size["batch"] * 2), "--no-progress",
                                  "--device", args.device]) == 0
            report["pretrain_minutes"] = (time.perf_counter() - started) / 60
            print(f"pretraining done in {report['pretrain_minutes']:.1f} min", flush=True)
        shared.update(student_init=args.student_init, teacher_seed=args.teacher_seed, student_lr=args.student_lr,
                      adapt_steps=args.adapt_steps,
                      prior_correction=args.prior_correction,
                      student_shape=student_shape(args.student_shape) if args.student_shape else STUDENT)
        report["student_shape"] = shared["student_shape"]
        report["teacher_seed"] = args.teacher_seed
        report["prior_correction"] = args.prior_correction
        tasks = {"nsmc": ("NSMC sentiment", nsmc), "3i4k": ("3i4K intent", intents)}
        for key, (title, rows) in tasks.items():
            if key in args.only:
                unlabeled_rows = task_pool(sources, key, unlabeled[key], pool, size["pool"])
                if args.test_rows:
                    rows, unlabeled_rows = with_splits(rows, extra_test[key], unlabeled_rows)
                    if args.transfer_variants:
                        unlabeled_rows += transfer_variants(rows + unlabeled_rows, args.transfer_variants)
                    unlabeled_rows, dropped = drop_test_texts(unlabeled_rows, rows)
                    report.setdefault("pool_rows_dropped_as_test_text", {})[key] = dropped
                report[title] = run_task(key, rows, unlabeled_rows, work, shared, size, args.device,
                                         tuple(v for v in args.variants.split(",") if v))
                print(title, json.dumps(report[title]), flush=True)
        if "stylekqc" in args.only:
            report["StyleKQC act: formal vs informal"] = run_stylekqc(work, shared, size, args.device)
    report["minutes"] = (time.perf_counter() - started) / 60
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
