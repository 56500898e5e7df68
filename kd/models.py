"""Students, the embedding projection, parameter counts and the Hugging Face export."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

from kd.common import NORMALIZER_FILE, TRAINING_CONFIG_FILE, write_json
from kd.losses import mean_pool
from schemas.options import MalmoiError


def label_maps(label_names: list[str]) -> tuple[dict[int, str], dict[str, int]]:
    return {i: n for i, n in enumerate(label_names)}, {n: i for i, n in enumerate(label_names)}


def bert_student(*, vocab_size: int, label_names: list[str], num_layers: int = 4, hidden_size: int = 312,
                 num_heads: int = 12, intermediate_size: int = 1200, max_positions: int = 512,
                 pad_token_id: int = 0, dropout: float = 0.1) -> BertForSequenceClassification:
    """A small BERT-style classifier from a config (TinyBERT-4's shape by default)."""
    if hidden_size % num_heads:
        raise MalmoiError(f"student: hidden size {hidden_size} must be divisible by the {num_heads} heads.",
                          "pick --student-heads dividing --student-hidden (a head size that is a multiple of 8 "
                          "gets the fused attention kernels).")
    id2label, label2id = label_maps(label_names)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                        num_attention_heads=num_heads, intermediate_size=intermediate_size,
                        max_position_embeddings=max_positions, pad_token_id=pad_token_id,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                        num_labels=len(label_names), id2label=id2label, label2id=label2id)
    return BertForSequenceClassification(config)


def student_from_teacher(teacher_dir: str, num_layers: int, label_names: list[str]) -> nn.Module:
    """A shallower copy of the teacher: embeddings, head and every k-th layer (DistilBERT-style init)."""
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    config = teacher.config.__class__.from_dict(teacher.config.to_dict())
    total = config.num_hidden_layers
    if not 1 <= num_layers <= total:
        raise MalmoiError(f"--student-layers {num_layers}: the teacher has {total} layers.", f"pick 1..{total}.")
    config.num_hidden_layers = num_layers
    id2label, label2id = label_maps(label_names)
    config.id2label, config.label2id, config.num_labels = id2label, label2id, len(label_names)
    student = AutoModelForSequenceClassification.from_config(config)
    keep = [round(i * (total - 1) / max(1, num_layers - 1)) for i in range(num_layers)] if num_layers > 1 else [0]
    source = teacher.state_dict()
    target = student.state_dict()
    layer_key = ".layer."
    for name in target:
        if layer_key in name:
            prefix, rest = name.split(layer_key, 1)
            index, suffix = rest.split(".", 1)
            name_in_teacher = f"{prefix}{layer_key}{keep[int(index)]}.{suffix}"
        else:
            name_in_teacher = name
        if name_in_teacher in source and source[name_in_teacher].shape == target[name].shape:
            target[name] = source[name_in_teacher].clone()
    student.load_state_dict(target)
    return student


def student_from_checkpoint(checkpoint: str, tokenizer_dir: str, label_names: list[str]) -> nn.Module:
    """A classifier started from a pretrained checkpoint (typically a small masked-LM: its encoder
    is kept, the pooler and the classification head start fresh). Refused when the checkpoint's
    own tokenizer has another vocabulary than ``tokenizer_dir`` (the ids in the kd shards), or,
    without tokenizer files, when it embeds fewer ids than that tokenizer has."""
    from transformers import AutoTokenizer

    folder = Path(checkpoint)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"--student-init '{checkpoint}' has no config.json. Fix: pass a folder written by "
                                "save_pretrained (e.g. kd.pretrain's output)")
    expected = AutoTokenizer.from_pretrained(tokenizer_dir).get_vocab()
    if any((folder / name).exists() for name in ("tokenizer.json", "vocab.txt")):
        found = AutoTokenizer.from_pretrained(checkpoint).get_vocab()
        if found != expected:
            raise MalmoiError(f"--student-init '{checkpoint}' has a different vocabulary ({len(found)} tokens) than "
                              f"--tokenizer '{tokenizer_dir}' ({len(expected)}): the kd shards' ids would mean other "
                              "words.", "pretrain the student with the same tokenizer the shards were made with.")
    id2label, label2id = label_maps(label_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some weights were newly initialized": the head, by design
        model = AutoModelForSequenceClassification.from_pretrained(
            checkpoint, num_labels=len(label_names), id2label=id2label, label2id=label2id)
    if model.get_input_embeddings().num_embeddings < len(expected):
        raise MalmoiError(f"--student-init '{checkpoint}' embeds {model.get_input_embeddings().num_embeddings} "
                          f"ids but the tokenizer has {len(expected)}.", "use the checkpoint's own tokenizer.")
    return model


class EmbeddingProjection(nn.Module):
    """Student pooled hidden state -> teacher embedding size (identity when they match)."""

    def __init__(self, student_size: int, teacher_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(student_size, teacher_size) if student_size != teacher_size else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.linear is None else self.linear(x)


class DistillStudent(nn.Module):
    """A sequence classifier plus the projection used by the embedding losses.

    ``forward`` returns ``(logits, projected_embedding)``; the embedding is the mean of the
    last hidden states over real tokens, as the teacher's is. With ``with_embedding=False``
    (no embedding loss) it is ``None`` and its kernels are not run.
    """

    def __init__(self, model: nn.Module, teacher_embedding_size: int | None) -> None:
        super().__init__()
        self.model = model
        hidden = model.config.hidden_size
        self.projection = EmbeddingProjection(hidden, teacher_embedding_size or hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                with_embedding: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=with_embedding)
        if not with_embedding:
            return out.logits, None
        embedding = self.projection(mean_pool(out.hidden_states[-1], attention_mask))
        return out.logits, embedding


class _Logits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def torchscript_for_cpu(model: nn.Module, input_ids: torch.Tensor) -> torch.jit.ScriptModule:
    """A traced and frozen TorchScript copy of a sequence classifier, for batch-1 CPU serving:
    ``scripted(input_ids, attention_mask) -> logits``, without the per-module Python of the eager
    forward. Traced on one unpadded row (HF drops an all-ones mask while tracing), so it is
    only valid for single, unpadded rows of any length; checked against the eager model on the
    example and on a shorter prefix of it."""
    wrapped = _Logits(model.to("cpu").eval()).eval()
    mask = torch.ones_like(input_ids)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape branches: checked below instead
        scripted = torch.jit.freeze(torch.jit.trace(wrapped, (input_ids, mask), check_trace=False).eval())
        for ids in (input_ids, input_ids[:, : max(2, input_ids.shape[1] // 2)]):
            expected, got = wrapped(ids, torch.ones_like(ids)), scripted(ids, torch.ones_like(ids))
            if not torch.allclose(expected, got, rtol=1e-4, atol=1e-4):
                raise ValueError(f"the traced model disagrees with the eager one (max difference "
                                 f"{(expected - got).abs().max().item():.2e}); serve it eagerly instead")
    return scripted


def count_parameters(model: nn.Module) -> dict[str, int]:
    """All parameters, and those outside the embedding tables (word, position, type)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding))
    return {"total": total, "non_embedding": total - embedding}


def export_pretrained(model: nn.Module, tokenizer: Any, output: str | Path, *, normalizer_config: dict | None,
                      training_config: Any = None) -> None:
    """``save_pretrained`` (safetensors) + tokenizer + the normalizer config it was trained with."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(output)
    if normalizer_config is not None:
        write_json(output / NORMALIZER_FILE, normalizer_config)
    if training_config is not None:
        write_json(output / TRAINING_CONFIG_FILE, training_config)
