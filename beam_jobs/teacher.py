"""The teacher as used by the augment job: load once, label texts in length-bucketed batches.

Outputs per text: raw logits (temperature 1, float32), the sentence embedding (mean of the
last hidden states over real tokens, float16), argmax, max probability and entropy. CUDA +
bf16 autocast when a GPU is present, CPU otherwise. Imports torch lazily (the text core stays
torch-free).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schemas.kd import POOLINGS, pool_embedding


class TeacherError(ValueError):
    """The teacher cannot be used: missing, unreadable, or not a sequence classifier."""


@dataclass
class TeacherOutputs:
    logits: np.ndarray  # (n, C) float32, raw
    embeddings: np.ndarray  # (n, D) float16
    member_logits: tuple[np.ndarray, ...] = ()  # further checkpoints of an ensemble, same rows and label order

    def derived(self) -> dict[str, np.ndarray]:
        """Predicted label, confidence (max softmax) and entropy (nats) from the raw logits."""
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -(probs * np.where(probs > 0, np.log(probs), 0.0)).sum(axis=1)
        return {"teacher_label": self.logits.argmax(axis=1).astype(np.int32),
                "teacher_confidence": probs.max(axis=1).astype(np.float32),
                "teacher_entropy": entropy.astype(np.float32), "probs": probs}


class Teacher:
    """An ``AutoModelForSequenceClassification`` checkpoint (``trust_remote_code`` off)."""

    def __init__(self, model_dir: str, *, device: str = "auto", batch_size: int = 64, max_length: int = 128,
                 pooling: str = "mean") -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        from beam_jobs.text.subwords import load_subword_tokenizer

        if not Path(model_dir).exists() and "/" not in model_dir:
            raise TeacherError(f"--teacher {model_dir!r}: no such directory. Fix: pass a save_pretrained directory.")
        try:
            self.tokenizer = load_subword_tokenizer(model_dir)
            self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise TeacherError(
                f"--teacher {model_dir!r} is not a loadable sequence classifier with a tokenizer ({error}). "
                "Fix: pass a directory written by kd.finetune or save_pretrained (model + tokenizer)."
            ) from error
        if pooling not in POOLINGS:
            raise TeacherError(f"--embedding-pooling: expected mean or cls, found {pooling!r}")
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                   else ("cpu" if device == "auto" else device))
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.pooling = pooling
        config = self.model.config
        self.label_names = [config.id2label[i] for i in range(config.num_labels)]
        self.embedding_size = int(config.hidden_size)

    def run(self, texts: list[str]) -> TeacherOutputs:
        """Logits and embeddings for ``texts``, in their order (batched by length internally)."""
        import torch

        encoded = self.tokenizer.input_ids(texts, self.max_length)
        order = np.argsort([len(e) for e in encoded], kind="stable")
        logits = np.zeros((len(texts), len(self.label_names)), np.float32)
        embeddings = np.zeros((len(texts), self.embedding_size), np.float16)
        pad = self.tokenizer.pad_token_id or 0
        use_bf16 = self.device.type == "cuda"
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                index = order[start:start + self.batch_size]
                length = max(len(encoded[i]) for i in index)
                if self.device.type == "cuda":
                    length = 8 * math.ceil(length / 8)  # tensor-core friendly shapes; on a CPU it only costs
                ids_np = np.full((len(index), length), pad, dtype=np.int64)
                mask_np = np.zeros((len(index), length), dtype=np.int64)
                for row, i in enumerate(index):  # numpy slices: a torch.tensor per row costs more than the copy
                    ids_np[row, :len(encoded[i])] = encoded[i]
                    mask_np[row, :len(encoded[i])] = 1
                ids, mask = torch.from_numpy(ids_np).to(self.device), torch.from_numpy(mask_np).to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                pooled = pool_embedding(out.hidden_states[-1].float(), mask, self.pooling)
                logits[index] = out.logits.float().cpu().numpy()
                embeddings[index] = pooled.cpu().numpy().astype(np.float16)
        return TeacherOutputs(logits, embeddings)


class TeacherEnsemble:
    """Several checkpoint teachers run on the same texts: the first gives the logits and
    embeddings, the others their logits in the first one's label order (``member_logits``); the
    augment job combines them with the fitted weights. One teacher behaves as that teacher."""

    def __init__(self, teachers: list[Teacher]) -> None:
        self.teachers = teachers
        names = teachers[0].label_names
        self._columns = [[t.label_names.index(name) for name in names] for t in teachers[1:]]

    def run(self, texts: list[str]) -> TeacherOutputs:
        first = self.teachers[0].run(texts)
        members = tuple(t.run(texts).logits[:, columns] for t, columns in zip(self.teachers[1:], self._columns,
                                                                             strict=True))
        return TeacherOutputs(first.logits, first.embeddings, members)


def provenance(teacher_dir: str, teacher: Teacher | Any) -> dict[str, Any]:
    from schemas.provenance import weights_hash

    return {"teacher_id": teacher_dir, "teacher_weights_hash": weights_hash(teacher_dir),
            "label_names": list(teacher.label_names), "embedding_size": teacher.embedding_size}
