"""Pluggable objectives for the training loop: ``objective(model, batch) -> (loss, parts)``.

A batch is a dict of fixed-shape tensors from :mod:`kd.data` (``input_ids``,
``attention_mask``, ``weight``, ``label``, and for kd shards ``teacher_logits`` and
``teacher_embedding``). ``parts`` are detached 0-dim tensors, logged every N steps without a
per-step host sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kd.losses import embedding_cosine, embedding_mse, hard_label_ce, soft_label_kl
from schemas.options import option


@dataclass(frozen=True, kw_only=True)
class DistillWeights:
    """Weights of each term of the distillation objective (0 switches a term off)."""

    kl: float = option(1.0, help="weight of the soft-label KL (T^2-scaled)")
    ce: float = option(1.0, help="weight of the hard-label cross-entropy (labeled rows)")
    mse: float = option(0.0, help="weight of the embedding MSE")
    cosine: float = option(0.0, help="weight of the embedding cosine loss")
    temperature: float = option(2.0, help="softmax temperature of the KL term")

    def columns(self) -> dict[str, type]:
        """The kd-shard columns this objective reads (the embedding only with an embedding loss)."""
        import numpy as np

        needed: dict[str, type] = {"label": np.int64, "teacher_logits": np.float32}
        if self.mse or self.cosine:
            needed["teacher_embedding"] = np.float32
        return needed


class DistillObjective:
    """w_kl * KL_T (T^2-scaled) + w_ce * CE(labeled rows) + w_mse * MSE(emb) + w_cos * (1 - cos(emb))."""

    def __init__(self, weights: DistillWeights) -> None:
        self.weights = weights

    def __call__(self, model, batch):
        w = self.weights
        logits, embedding = model(batch["input_ids"], batch["attention_mask"], with_embedding=bool(w.mse or w.cosine))
        weight = batch["weight"]
        parts = {}
        loss = torch.zeros((), device=logits.device, dtype=torch.float32)
        if w.kl:
            parts["kl"] = soft_label_kl(logits, batch["teacher_logits"], w.temperature, weight)
            loss = loss + w.kl * parts["kl"]
        if w.ce:
            parts["ce"] = hard_label_ce(logits, batch["label"], weight)
            loss = loss + w.ce * parts["ce"]
        if w.mse:
            parts["mse"] = embedding_mse(embedding, batch["teacher_embedding"], weight)
            loss = loss + w.mse * parts["mse"]
        if w.cosine:
            parts["cosine"] = embedding_cosine(embedding, batch["teacher_embedding"], weight)
            loss = loss + w.cosine * parts["cosine"]
        return loss, {k: v.detach() for k, v in parts.items()}


class ClassificationObjective:
    """Cross-entropy on labeled rows (teacher fine-tuning)."""

    def __call__(self, model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = hard_label_ce(logits, batch["label"], batch["weight"])
        return loss, {"ce": loss.detach()}


class MaskedLMObjective:
    """BERT masking (15% of real, non-special tokens; 80% [MASK], 10% random, 10% kept), CE on them.

    The vocabulary projection — most of a small model's compute — runs on the masked positions
    only when the model's parts can be called apart (an unwrapped Hugging Face masked LM with a
    ``cls`` or ``lm_head`` head, outside CUDA-graph capture, which needs static shapes); otherwise on
    every position. The loss is the same either way (``masked_only=False`` forces the full path).
    Random draws use the global torch RNG, which the loop saves and restores on resume.
    """

    def __init__(self, mask_token_id: int, vocab_size: int, special_ids: list[int], probability: float = 0.15,
                 masked_only: bool = True) -> None:
        self.mask_token_id = mask_token_id
        self.vocab_size = vocab_size
        self.special_ids = torch.tensor(sorted(set(special_ids)), dtype=torch.int64)
        self.probability = probability
        self.masked_only = masked_only

    def _split_parts(self, model, ids: torch.Tensor):
        """(encoder, head) when the projection can run on masked positions alone, else None."""
        from transformers import PreTrainedModel

        if not self.masked_only or not isinstance(model, PreTrainedModel):
            return None  # DDP / torch.compile wrappers must be called whole
        if ids.is_cuda and torch.cuda.is_current_stream_capturing():
            return None
        head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
        encoder = getattr(model, model.base_model_prefix, None)
        return (encoder, head) if head is not None and encoder is not None else None

    def __call__(self, model, batch):
        ids, attention = batch["input_ids"], batch["attention_mask"]
        if self.special_ids.device != ids.device:  # once, in an eager warm-up step: no host copy inside a CUDA graph
            self.special_ids = self.special_ids.to(ids.device)
        special = torch.isin(ids, self.special_ids)
        eligible = (attention > 0) & ~special & (batch["weight"][:, None] > 0)
        chosen = (torch.rand(ids.shape, device=ids.device) < self.probability) & eligible
        action = torch.rand(ids.shape, device=ids.device)
        random_ids = torch.randint(0, self.vocab_size, ids.shape, device=ids.device)
        inputs = torch.where(chosen & (action < 0.8), torch.full_like(ids, self.mask_token_id), ids)
        inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
        parts = self._split_parts(model, ids)
        if parts is not None:
            encoder, head = parts
            hidden = encoder(input_ids=inputs, attention_mask=attention).last_hidden_state
            logits = head(hidden[chosen])  # (masked positions, vocabulary)
            per_token = F.cross_entropy(logits.float(), ids[chosen], reduction="sum")
        else:
            logits = model(input_ids=inputs, attention_mask=attention).logits
            targets = torch.where(chosen, ids, torch.full_like(ids, -100))
            per_token = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                        ignore_index=-100, reduction="sum")
        loss = per_token / chosen.sum().clamp_min(1)
        return loss, {"mlm": loss.detach()}
