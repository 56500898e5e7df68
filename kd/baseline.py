"""The cheap baseline every report shows: character 1–3-gram TF-IDF + logistic regression.

Trained on the same labeled rows as the student (the original rows of the kd shards' train
split, gold labels only), scored on the same test rows, and timed on the same served path at
batch 1 (normalize + vectorize + predict, one thread). A distilled student that does not beat
it is not worth serving; the reports say so side by side.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from kd.data import OpenedDataset


def labeled_rows(opened: OpenedDataset, split: str) -> tuple[list[str], np.ndarray]:
    """Texts and gold label ids of the original (not paraphrased) labeled rows of ``split``."""
    texts, labels, _ = keyed_labeled_rows(opened, split, keys=False)
    return texts, labels


def keyed_labeled_rows(opened: OpenedDataset, split: str, keys: bool = True
                       ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """:func:`labeled_rows` and each row's :func:`kd.data.row_keys` key (empty when ``keys`` is
    off), which pairs the baseline's predictions with a student's on the same rows."""
    import pyarrow.compute as pc

    from kd.data import row_keys, table_to_chunk
    from schemas import storage

    texts: list[str] = []
    labels: list[int] = []
    found: list[np.ndarray] = []
    for path in opened.files:
        table = storage.read_table(path, columns=["text", "label", "split", "origin", *(["input_ids"] if keys else [])])
        keep = pc.and_(pc.and_(pc.equal(table.column("split"), split), pc.equal(table.column("origin"), "original")),
                       pc.greater_equal(table.column("label"), 0))
        table = table.filter(keep)
        texts += table.column("text").to_pylist()
        labels += table.column("label").to_pylist()
        if keys:
            found.append(row_keys(table_to_chunk(table, {})))
    return texts, np.asarray(labels, np.int64), np.concatenate(found) if found else np.zeros(0, np.int64)


def fit_char_ngrams(texts: list[str], labels: np.ndarray, seed: int = 0):
    """A fitted scikit-learn pipeline: TF-IDF over character 1–3-grams (within word boundaries
    padded by spaces) and a logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1),
                          LogisticRegression(max_iter=2000, C=4.0, random_state=seed))
    model.fit(texts, labels)
    return model


def class_log_probs(model, texts: list[str], num_labels: int) -> np.ndarray:
    """A fitted model's log-probabilities over all ``num_labels`` classes (log 1e-6 for a class it
    never saw in training): the n-gram model as an outside teacher's signal."""
    out = np.full((len(texts), num_labels), np.log(1e-6))
    out[:, model.classes_] = model.predict_log_proba(texts)
    return out


def evaluate_baseline(opened: OpenedDataset, split: str = "test", train_split: str = "train",
                      num_labels: int | None = None, normalizer_config: dict | None = None,
                      rows: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Fit on ``train_split``, score on ``split``; metrics, fit seconds and batch-1 latency. Given
    ``rows`` (a dict), fills it with each scored row's ``keys``, the class the baseline
    ``predicted`` and whether it was ``correct``, for a paired comparison (:func:`kd.report.paired_accuracy_gap`)."""
    from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
    from kd.evaluate import classification_metrics

    train_texts, train_labels = labeled_rows(opened, train_split)
    test_texts, test_labels, test_keys = keyed_labeled_rows(opened, split, keys=rows is not None)
    if len(set(train_labels.tolist())) < 2 or not test_texts:
        return {"name": "char 1-3-gram TF-IDF + LR", "skipped": "needs two labels in train and labeled test rows"}
    num_labels = num_labels or len(opened.provenance.get("label_names", [])) or int(train_labels.max()) + 1
    start = time.perf_counter()
    model = fit_char_ngrams(train_texts, train_labels)
    fit_seconds = time.perf_counter() - start
    probs = np.zeros((len(test_texts), num_labels), np.float64)
    probs[:, model.classes_] = model.predict_proba(test_texts)
    if rows is not None:
        rows.update(keys=test_keys, correct=probs.argmax(1) == test_labels, predicted=probs.argmax(1))
    normalize = Normalizer(NormalizerConfig.from_dict(normalizer_config) if normalizer_config else NormalizerConfig())
    latencies = []
    for text in test_texts[:64]:  # the served path, one request at a time
        begin = time.perf_counter()
        model.predict_proba([normalize(text)])
        latencies.append(1000 * (time.perf_counter() - begin))
    return {"name": "char 1-3-gram TF-IDF + LR", **classification_metrics(test_labels, probs),
            "train_rows": len(train_texts), "fit_seconds": fit_seconds,
            "latency_ms_batch1_served": float(np.median(latencies))}
