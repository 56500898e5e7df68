"""Each loss against a hand-computed reference. Protects against: a missing T^2 factor, a temperature applied
twice, and padding or unlabeled rows leaking into a term."""

from __future__ import annotations

import math

import pytest
import torch

from kd.losses import embedding_cosine, embedding_mse, hard_label_ce, mean_pool, soft_label_kl


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def softmax(z, t=1.0):
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def test_soft_label_kl_matches_hand_computation_at_t1():
    value = soft_label_kl(torch.zeros(1, 2), torch.tensor([[2.0, 0.0]]), 1.0, torch.ones(1))
    assert value.item() == pytest.approx(kl(softmax([2, 0]), [0.5, 0.5]), abs=1e-6)
    assert value.item() == pytest.approx(0.3278, abs=1e-4)  # the docstring example


def test_temperature_is_applied_to_raw_logits_and_scaled_by_t_squared():
    student, teacher, t = [0.5, -1.0, 2.0], [3.0, 0.0, -1.0], 4.0
    expected = t * t * kl(softmax(teacher, t), softmax(student, t))
    value = soft_label_kl(torch.tensor([student]), torch.tensor([teacher]), t, torch.ones(1))
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # without the T^2 factor the value would be 16x smaller
    assert value.item() > 10 * kl(softmax(teacher, t), softmax(student, t))


def test_padding_rows_do_not_count():
    logits = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    teacher = torch.tensor([[2.0, 0.0], [-5.0, 5.0]])
    only_first = soft_label_kl(logits, teacher, 1.0, torch.tensor([1.0, 0.0]))
    assert only_first.item() == pytest.approx(kl(softmax([2, 0]), [0.5, 0.5]), abs=1e-6)


def test_kl_is_fp32_under_bf16_inputs():
    value = soft_label_kl(torch.zeros(2, 3, dtype=torch.bfloat16), torch.ones(2, 3, dtype=torch.bfloat16), 2.0,
                          torch.ones(2))
    assert value.dtype == torch.float32 and value.item() == pytest.approx(0.0, abs=1e-6)


def test_hard_label_ce_ignores_unlabeled_rows():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [9.0, -9.0]])
    labels = torch.tensor([0, 1, -1])
    expected = (-math.log(softmax([2, 0])[0]) - math.log(0.5)) / 2
    assert hard_label_ce(logits, labels, torch.ones(3)).item() == pytest.approx(expected, rel=1e-6)
    assert hard_label_ce(logits, torch.tensor([-1, -1, -1]), torch.ones(3)).item() == 0.0


def test_embedding_mse_and_cosine():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert embedding_mse(a, b, torch.ones(1)).item() == pytest.approx(1.0)
    assert embedding_cosine(a, b, torch.ones(1)).item() == pytest.approx(1.0)
    assert embedding_cosine(a, -a, torch.ones(1)).item() == pytest.approx(2.0)
    assert embedding_cosine(a, 3 * a, torch.ones(1)).item() == pytest.approx(0.0, abs=1e-6)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).item() == pytest.approx(2.0)


def test_masked_lm_projects_masked_positions_only_with_the_same_loss_and_gradients():
    # guards against the masked-only vocabulary projection (the CPU pretraining speed-up) changing
    # what is learned: same masks, same loss, same gradients as projecting every position
    from transformers import BertConfig, BertForMaskedLM

    from kd.objectives import MaskedLMObjective

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32))
    ids = torch.randint(5, 50, (4, 12))
    ids[:, 0] = 2
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "weight": torch.ones(4)}
    results = []
    for masked_only in (True, False):
        objective = MaskedLMObjective(mask_token_id=4, vocab_size=50, special_ids=[0, 1, 2, 3, 4],
                                      masked_only=masked_only)
        model.zero_grad()
        torch.manual_seed(7)
        loss, _ = objective(model, batch)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (fast, fast_grads), (full, full_grads) = results
    assert fast == pytest.approx(full, rel=1e-5) and fast > 0
    assert len(fast_grads) == len(full_grads)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(fast_grads, full_grads, strict=True))
    wrapped = MaskedLMObjective(4, 50, [0, 1, 2, 3, 4])._split_parts(torch.nn.Sequential(model), ids)
    assert wrapped is None  # a wrapper (DDP, compile) is called whole
