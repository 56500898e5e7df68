"""Tiny real artifacts for the kd tests: a trained tokenizer, kd shards written through schemas/,
and a tiny teacher built from a config (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from kd.common import tokenizer_hash, weights_hash
from kd.models import bert_student
from kd.tokenizer import train_tokenizer
from schemas import KD
from schemas.dataset import write_local_dataset

TEXTS = {
    "positive": ["이 영화 진짜 너무 재밌어요", "배우 연기가 정말 좋았다", "최고의 영화 강추", "또 보고 싶다 ㅋㅋ",
                 "음악도 좋고 스토리도 좋다", "감동적인 영화였어요"],
    "negative": ["시간 아깝다 보지 마세요", "너무 지루하고 재미없다", "연기가 어색하고 별로", "돈 아까운 영화",
                 "스토리가 엉망이다 ㅡㅡ", "최악의 영화였다"],
}
LABELS = ["negative", "positive"]


def make_tokenizer(folder: Path):
    texts = [t for group in TEXTS.values() for t in group] * 3
    return train_tokenizer(texts, folder, kind="wordpiece", vocab_size=200, min_frequency=1)


def make_teacher(folder: Path, vocab_size: int, embedding_size: int = 32):
    teacher = bert_student(vocab_size=vocab_size, label_names=LABELS, num_layers=2, hidden_size=embedding_size,
                           num_heads=2, intermediate_size=64)
    teacher.save_pretrained(folder)
    return teacher


def make_tokenizer_and_teacher(root: Path) -> Path:
    """``root/tok`` (a student tokenizer) and ``root/teacher`` (a tiny teacher with that tokenizer
    saved beside it), as a job finds them; returns ``root``."""
    tokenizer = make_tokenizer(root / "tok")
    make_teacher(root / "teacher", len(tokenizer))
    tokenizer.save_pretrained(root / "teacher")
    return root


def make_kd_shards(folder: Path, tokenizer_dir: Path, *, rows: int = 96, embedding_size: int = 32, seed: int = 0,
                   teacher_dir: Path | None = None, unlabeled_every: int = 4) -> Path:
    """kd shards with teacher logits that separate the two classes, written through schemas/."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(rows):
        label_name = LABELS[i % 2]
        text = TEXTS[label_name][(i // 2) % len(TEXTS[label_name])]
        label = LABELS.index(label_name)
        logits = np.array([2.5, -2.5] if label == 0 else [-2.5, 2.5], np.float32) + rng.normal(0, 0.3, 2).astype(np.float32)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        records.append({
            "id": f"r{i}", "parent_id": f"r{i}", "origin": "original", "text": text,
            "input_ids": tokenizer(text)["input_ids"],
            # every unlabeled_every-th row has no gold label (1: none has; 0: all have)
            "label": -1 if unlabeled_every and i % unlabeled_every == min(3, unlabeled_every - 1) else label,
            # both classes in every split (a pair of rows shares one), unlabeled rows too
            "split": "test" if (i // 2) % 8 in (0, 5) else "valid" if (i // 2) % 8 in (1, 6) else "train",
            "teacher_logits": logits.tolist(),
            "teacher_embedding": (rng.normal(0, 1, embedding_size) + (1 if label else -1)).astype(np.float16).tolist(),
            "teacher_label": int(logits.argmax()), "teacher_confidence": float(probs.max()),
            "teacher_entropy": float(-(probs * np.log(probs)).sum()),
        })
    provenance = {"label_names": LABELS, "teacher_id": "tiny-test-teacher",
                  "teacher_weights_hash": weights_hash(str(teacher_dir)) if teacher_dir else "none",
                  "student_tokenizer_hash": tokenizer_hash(str(tokenizer_dir)), "normalizer_hash": "test",
                  "normalizer_config": {"max_jamo_run": 2}, "embedding_size": embedding_size}
    table = pa.Table.from_pylist(records, schema=KD.schema)
    write_local_dataset(str(folder), table, KD, created_by="tests", provenance=provenance, row_group_rows=32)
    return folder
