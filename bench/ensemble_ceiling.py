"""How much a kept real-data run's teachers still hold for its students: would a stronger n-gram
member, self-training, or a second distillation round give a better ensemble to learn from?

    .venv/bin/python -m bench.ensemble_ceiling DIR [--tasks nsmc] [--variant ens+aug] [--json FILE]
        [--teachers NAME=MLM,... --teacher-seeds 0,1,2,3,4 --teacher-steps 500]

DIR is a ``bench.real_data --keep`` folder of a run with ``ens+aug`` students. On that run's own
rows (the original rows of its ``kd-ens`` shards: gold-labeled train, the pool, valid, test) it
scores, on valid and on test:

- n-gram members other than the char 1–3-gram TF-IDF + LR that the ensemble holds: char 1–5-grams,
  and, on two-label tasks, an LR on binary char 1–5-gram features scaled by their log-count ratio
  (NB-LR, Wang & Manning 2012), a strong linear baseline for sentiment;
- a word-level view: TF-IDF + LR over Kiwi's morphemes with their tags (1–2-grams, typo-tolerant
  analysis), alone and with the ensemble (weights fitted on valid);
- self-training: the char 1–3-gram model refitted on the gold train rows plus every pool row with
  the ensemble's label;
- the ensemble as the shards carry it, each kept student, and the students' mean;
- a second round's teacher: the students' mean and the n-gram model combined in log-probability
  space with weights fitted on valid (``beam_jobs.teacher_signals.fit_weights``, as augment fits
  its ensemble);
- with ``--teachers``: more transformer teachers, fine-tuned from each masked LM with each seed as
  ``bench.real_data`` fine-tunes its one (kd.finetune on the run's utterances, 5e-4, best on valid),
  each alone, their mean, and their mean with the n-gram model (weights fitted on valid).

Every figure is one fit on the run's rows (no seeds of its own), and the weights are fitted on
valid only; the test split is scored, never used to choose.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def original_rows(folder: Path, split: str) -> list[dict]:
    """The original (not paraphrased) rows of one split of the kd shards, in file order."""
    from kd.data import open_kd_dataset
    from schemas import storage

    rows: list[dict] = []
    for path in open_kd_dataset(str(folder)).files:
        table = storage.read_table(path, columns=["text", "input_ids", "label", "split", "origin", "teacher_logits"])
        rows += [r for r in table.to_pylist() if r["split"] == split and r["origin"] == "original"]
    return rows


def student_log_probs(model_dir: Path, rows: list[dict], batch_size: int = 256) -> np.ndarray:
    """The student's log-probabilities on ``rows``' token ids (the shards' student tokenization)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            ids = [r["input_ids"] for r in rows[start:start + batch_size]]
            width = max(map(len, ids))
            batch = torch.tensor([x + [0] * (width - len(x)) for x in ids])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
            out.append(torch.log_softmax(model(input_ids=batch, attention_mask=mask).logits.float(), -1).numpy())
    return np.concatenate(out)


class NaiveBayesLR:
    """Logistic regression on binary n-gram features scaled by their naive-Bayes log-count ratio
    (Wang & Manning 2012) for two labels; ``predict_log_proba`` like sklearn's."""

    def __init__(self, vectorizer, c: float = 0.5) -> None:
        self.vectorizer, self.c = vectorizer, c

    def _features(self, texts: list[str], fit: bool = False):
        counts = self.vectorizer.fit_transform(texts) if fit else self.vectorizer.transform(texts)
        return (counts > 0).astype(np.float64)

    def fit(self, texts: list[str], labels: np.ndarray) -> NaiveBayesLR:
        from sklearn.linear_model import LogisticRegression

        binary = self._features(texts, fit=True)
        self.classes_ = np.unique(labels)
        if len(self.classes_) != 2:
            raise ValueError(f"NB-LR here takes two labels; found {len(self.classes_)}.")
        positive = np.asarray(binary[labels == self.classes_[1]].sum(0)).ravel() + 1
        negative = np.asarray(binary[labels == self.classes_[0]].sum(0)).ravel() + 1
        self.ratio = np.log((positive / positive.sum()) / (negative / negative.sum()))
        self.model = LogisticRegression(max_iter=3000, C=self.c).fit(binary.multiply(self.ratio).tocsr(), labels)
        return self

    def predict_log_proba(self, texts: list[str]) -> np.ndarray:
        return self.model.predict_log_proba(self._features(texts).multiply(self.ratio).tocsr())


def teacher_log_probs(model_dir: Path, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """A fine-tuned teacher's log-probabilities on ``texts`` (its own tokenizer, saved beside it)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            out.append(torch.log_softmax(model(**batch).logits.float(), -1).numpy())
    return np.concatenate(out)


def fine_tuned_teachers(folder: Path, inits: dict[str, str], seeds: list[int], steps: int) -> dict[str, Path]:
    """One teacher per masked LM and seed, fine-tuned on the kept run's utterances as ``bench.real_data``
    fine-tunes its teacher (kept in ``folder/ceiling_teachers``; one already there is reused)."""
    from bench.real_data import SIZES, finetune_teacher

    made = {}
    for name, init in inits.items():
        for seed in seeds:
            out = folder / "ceiling_teachers" / f"{name}-{seed}"
            if not (out / "config.json").exists():
                finetune_teacher(folder / "utterances", init, out, seed, steps, SIZES["small"]["batch"], "cpu")
            made[f"teacher {name}-{seed}"] = out
    return made


def kiwi_morphemes(texts: list[str]) -> list[str]:
    """Each text as its Kiwi morphemes with their tags (``영화/NNG 보/VV ᆫ다/EF``)."""
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    return [" ".join(f"{token.form}/{token.tag}" for token in tokens)
            for tokens in kiwi.tokenize(texts, typos="basic")]


def accuracy(log_probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(log_probs.argmax(1) == labels))


def ceiling(folder: Path, variant: str, teachers: dict[str, str] | None = None, seeds: list[int] | None = None,
            teacher_steps: int = 500) -> dict:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from beam_jobs.teacher_signals import combine, fit_weights
    from kd.baseline import class_log_probs, fit_char_ngrams

    train = original_rows(folder / "kd-ens", "train")
    gold = [r for r in train if r["label"] >= 0]
    pool = [r for r in train if r["label"] < 0]
    held = {split: [r for r in original_rows(folder / "kd-ens", split) if r["label"] >= 0] for split in ("valid", "test")}
    labels = {split: np.array([r["label"] for r in rows]) for split, rows in held.items()}
    num_labels = len(gold[0]["teacher_logits"])
    gold_texts, gold_labels = [r["text"] for r in gold], np.array([r["label"] for r in gold])
    pseudo = np.array([int(np.argmax(r["teacher_logits"])) for r in pool])
    fitted = {
        "char 1-3-gram TF-IDF + LR (the baseline, the ensemble's n-gram member)": fit_char_ngrams(gold_texts, gold_labels),
        "char 1-5-gram TF-IDF + LR": make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True),
            LogisticRegression(max_iter=3000, C=4.0)).fit(gold_texts, gold_labels),
        **({"char 1-5-gram NB-LR": NaiveBayesLR(CountVectorizer(analyzer="char_wb", ngram_range=(1, 5))).fit(
            gold_texts, gold_labels)} if num_labels == 2 else {}),
        "char 1-3-gram TF-IDF + LR, self-trained on the pool's ensemble labels": fit_char_ngrams(
            gold_texts + [r["text"] for r in pool], np.concatenate([gold_labels, pseudo])),
    }
    scores: dict[str, dict[str, np.ndarray]] = {
        name: {split: class_log_probs(model, [r["text"] for r in rows], num_labels) for split, rows in held.items()}
        for name, model in fitted.items()}
    morphemes = make_pipeline(TfidfVectorizer(analyzer="word", token_pattern=r"\S+", ngram_range=(1, 2),
                                              sublinear_tf=True, lowercase=False),
                              LogisticRegression(max_iter=3000, C=4.0)).fit(kiwi_morphemes(gold_texts), gold_labels)
    morpheme_name = "Kiwi morpheme 1-2-gram TF-IDF + LR"
    scores[morpheme_name] = {split: class_log_probs(morphemes, kiwi_morphemes([r["text"] for r in rows]), num_labels)
                             for split, rows in held.items()}
    scores["ensemble (as the shards carry it)"] = {split: np.array([r["teacher_logits"] for r in rows])
                                                   for split, rows in held.items()}
    fitted_weights: dict[str, np.ndarray] = {}
    label = "ensemble + Kiwi morpheme model, weights fitted on valid"
    members = [scores["ensemble (as the shards carry it)"], scores[morpheme_name]]
    fitted_weights[label] = fit_weights([m["valid"] for m in members], labels["valid"])
    scores[label] = {split: combine([m[split] for m in members], fitted_weights[label]) for split in held}
    students = sorted(folder.glob(f"student-{variant}-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    for student in students:
        scores[student.name] = {split: student_log_probs(student, rows) for split, rows in held.items()}
    if students:
        scores["students' mean"] = {split: np.mean([scores[s.name][split] for s in students], 0) for split in held}
        members = ["students' mean", "char 1-3-gram TF-IDF + LR (the baseline, the ensemble's n-gram member)"]
        weights = fit_weights([scores[m]["valid"] for m in members], labels["valid"])
        scores["second round: students' mean + n-gram, weights fitted on valid"] = {
            split: combine([scores[m][split] for m in members], weights) for split in held}
    if students:
        fitted_weights["second round: students' mean + n-gram, weights fitted on valid"] = weights
    made = fine_tuned_teachers(folder, teachers, seeds or [0], teacher_steps) if teachers else {}
    for name, model_dir in made.items():
        scores[name] = {split: teacher_log_probs(model_dir, [r["text"] for r in rows]) for split, rows in held.items()}
    if made:
        mean = {split: np.mean([scores[name][split] for name in made], 0) for split in held}
        scores[f"the {len(made)} teachers' mean"] = mean
        members = [mean, scores["char 1-3-gram TF-IDF + LR (the baseline, the ensemble's n-gram member)"]]
        label = f"the {len(made)} teachers' mean + n-gram, weights fitted on valid"
        fitted_weights[label] = fit_weights([m["valid"] for m in members], labels["valid"])
        scores[label] = {split: combine([m[split] for m in members], fitted_weights[label]) for split in held}
    result = {name: {f"{split}_accuracy": accuracy(value[split], labels[split]) for split in held}
              for name, value in scores.items()}
    for name, value in fitted_weights.items():
        result[name]["weights"] = [float(w) for w in value]
    return {"rows": {"gold_train": len(gold), "pool": len(pool), **{k: len(v) for k, v in held.items()}},
            "accuracy": result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kept", help="a bench.real_data --keep folder")
    parser.add_argument("--tasks", default="nsmc")
    parser.add_argument("--variant", default="ens+aug")
    parser.add_argument("--json", default=None)
    parser.add_argument("--teachers", default="", help="NAME=MASKED_LM_DIR,...: fine-tune more teachers from these")
    parser.add_argument("--teacher-seeds", default="0", help="comma-separated fine-tuning seeds for --teachers")
    parser.add_argument("--teacher-steps", type=int, default=500, help="fine-tuning steps (bench.real_data --small: 500)")
    args = parser.parse_args(argv)
    teachers = dict(item.split("=", 1) for item in args.teachers.split(",") if item)
    seeds = [int(v) for v in args.teacher_seeds.split(",")]
    report = {"kept": args.kept, "variant": args.variant, "teachers": teachers, "teacher_seeds": seeds}
    for task in args.tasks.split(","):
        report[task] = ceiling(Path(args.kept) / task, args.variant, teachers, seeds, args.teacher_steps)
        for name, row in report[task]["accuracy"].items():
            print(f"{task:6s} {name:80s} valid {row['valid_accuracy']:.4f}  test {row['test_accuracy']:.4f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
