"""Distillation losses, each a documented pure tensor function (docs/design.md, habit 9).

All functions take a per-row ``weight`` (B,) float tensor: 1 for real rows, 0 for the padding
rows that keep batch shapes fixed (and for rows a term does not apply to), and return the
weighted mean over rows as a 0-dim fp32 tensor. Nothing here synchronizes with the host, so
the losses can be captured in a CUDA graph.

Which loss for which kd-shard column:

| loss | student side | teacher column | rows |
|---|---|---|---|
| :func:`soft_label_kl` | logits | ``teacher_logits`` | all |
| :func:`hard_label_ce` | logits | ``label`` | labeled (label >= 0) |
| :func:`embedding_mse` | pooled hidden state (projected) | ``teacher_embedding`` | all |
| :func:`embedding_cosine` | pooled hidden state (projected) | ``teacher_embedding`` | all |
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from schemas.kd import pool_embedding


def _weighted_mean(per_row: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    weight = weight.float()
    return (per_row.float() * weight).sum() / weight.sum().clamp_min(1.0)


def soft_label_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                  weight: torch.Tensor) -> torch.Tensor:
    r"""Soft-label distillation loss (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

    .. math::
        \mathcal{L}_{KD} = T^2 \cdot \frac{1}{\sum_i w_i} \sum_i w_i \,
            \mathrm{KL}\big(\mathrm{softmax}(z^t_i / T) \,\|\, \mathrm{softmax}(z^s_i / T)\big)

    The :math:`T^2` factor keeps the gradient scale independent of the temperature (the soft
    targets' gradients scale as :math:`1/T^2`), so the term can be mixed with the hard-label
    loss without retuning weights. Computed in fp32 from **raw** logits: the kd shards store
    teacher logits at temperature 1 and the temperature is applied here.

    Shapes: ``student_logits`` (B, C), ``teacher_logits`` (B, C), ``weight`` (B,).

    Example: equal logits give 0; ``soft_label_kl(zeros(1,2), tensor([[2., 0.]]), 1., ones(1))``
    is KL([0.881, 0.119] || [0.5, 0.5]) = 0.3278.
    """
    t = float(temperature)
    student_log_probs = F.log_softmax(student_logits.float() / t, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.float() / t, dim=-1)
    per_row = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(dim=-1)
    return (t * t) * _weighted_mean(per_row, weight)


def hard_label_ce(student_logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""Task loss: cross-entropy on labeled rows only.

    .. math:: \mathcal{L}_{CE} = \frac{1}{\sum_i w_i [y_i \ge 0]} \sum_i w_i [y_i \ge 0] \, (-\log \mathrm{softmax}(z^s_i)_{y_i})

    Rows with ``label == -1`` (unlabeled, e.g. the teacher's pseudo-label pool) contribute
    nothing, so they feed only the distillation terms. Shapes: logits (B, C), labels (B,) int.
    """
    labeled = (labels >= 0).float() * weight.float()
    per_row = F.cross_entropy(student_logits.float(), labels.clamp_min(0), reduction="none")
    return _weighted_mean(per_row, labeled)


def embedding_mse(student_embedding: torch.Tensor, teacher_embedding: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""Embedding distillation (Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings
    Multilingual using Knowledge Distillation"): mean squared error between the student's
    (projected) sentence embedding and the teacher's.

    .. math:: \mathcal{L}_{MSE} = \frac{1}{\sum_i w_i} \sum_i w_i \frac{1}{D} \lVert e^s_i - e^t_i \rVert^2

    When the student's hidden size differs from the teacher's embedding size, the student side
    goes through a learned linear projection first (:class:`kd.models.EmbeddingProjection`).
    Shapes: (B, D), (B, D), (B,).
    """
    per_row = (student_embedding.float() - teacher_embedding.float()).pow(2).mean(dim=-1)
    return _weighted_mean(per_row, weight)


def embedding_cosine(student_embedding: torch.Tensor, teacher_embedding: torch.Tensor,
                     weight: torch.Tensor) -> torch.Tensor:
    r"""Direction-only embedding loss: :math:`1 - \cos(e^s_i, e^t_i)`, weighted mean over rows.

    Shapes: (B, D), (B, D), (B,). Identical directions give 0, opposite ones 2.
    """
    per_row = 1.0 - F.cosine_similarity(student_embedding.float(), teacher_embedding.float(), dim=-1, eps=1e-6)
    return _weighted_mean(per_row, weight)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden states over real tokens: (B, L, H), (B, L) -> (B, H).

    The pooling of the kd contract's ``teacher_embedding`` (:func:`schemas.kd.pool_embedding`).
    """
    return pool_embedding(hidden, attention_mask, "mean")
