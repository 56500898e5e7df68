"""GPU checks (`pytest -m gpu` on a CUDA machine). Protects against: a CUDA-graph step that differs from the
eager step, and NaN batches handled differently in graphs."""

from __future__ import annotations

import json

import pytest
import torch

from kd import distill
from kd.common import Distributed
from kd.data import BucketBatches, kd_chunks, open_kd_dataset
from kd.loop import LoopConfig, train
from kd.models import DistillStudent, bert_student
from kd.objectives import DistillObjective, DistillWeights
from tests.kd_fixtures import LABELS, make_kd_shards, make_tokenizer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu")
    make_tokenizer(root / "tok")
    make_kd_shards(root / "kd", root / "tok", rows=400)
    return root


class PoisonSomeBatches:
    """NaN loss on the batches whose id sum is divisible by 4: data-dependent, so a graph can capture it."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __call__(self, model, batch):
        loss, parts = self.inner(model, batch)
        poison = torch.where(batch["input_ids"].sum() % 4 == 0, float("nan"), 1.0)
        return loss * poison, parts


def run(shards, output, graphs: bool, bf16: bool, poison: bool = False, ema: float = 0.0):
    opened = open_kd_dataset(str(shards / "kd"))
    torch.manual_seed(0)
    model = DistillStudent(bert_student(vocab_size=300, label_names=LABELS, num_layers=2, hidden_size=64,
                                        num_heads=4, intermediate_size=128, dropout=0.0), 32)
    config = LoopConfig(output=str(output), max_steps=40, batch_size=16, learning_rate=2e-3, log_every=5,
                        device="cuda", cuda_graphs=graphs, bf16=bf16, progress=False, buckets=(8, 16, 32), ema=ema)
    batches = BucketBatches(lambda e: kd_chunks(opened, "train", 0, e), batch_size=16, buckets=config.buckets,
                            pad_id=0, seed=0)
    objective = DistillObjective(DistillWeights(mse=1.0, cosine=1.0))
    summary = train(model=model, objective=PoisonSomeBatches(objective) if poison else objective, batches=batches,
                    config=config, dist=Distributed())
    losses = [json.loads(line)["loss"] for line in (output / "metrics.jsonl").read_text().splitlines()]
    return model, summary, losses


def test_cuda_graph_step_matches_eager_in_fp32(shards, tmp_path):
    eager_model, eager, eager_losses = run(shards, tmp_path / "eager", graphs=False, bf16=False)
    graph_model, graphed, graph_losses = run(shards, tmp_path / "graphs", graphs=True, bf16=False)
    assert graphed["cuda_graphs"] and not eager["cuda_graphs"]
    assert graph_losses == pytest.approx(eager_losses, rel=1e-3)
    for (name, a), (_, b) in zip(eager_model.state_dict().items(), graph_model.state_dict().items(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4), name


def test_nonfinite_steps_are_skipped_the_same_way_in_graphs(shards, tmp_path):
    # guards the found_inf path of the fused optimizer inside a captured graph
    eager_model, eager, _ = run(shards, tmp_path / "eager", graphs=False, bf16=False, poison=True)
    graph_model, graphed, _ = run(shards, tmp_path / "graphs", graphs=True, bf16=False, poison=True)
    assert 0 < eager["skipped_nonfinite"] < 40 and graphed["skipped_nonfinite"] == eager["skipped_nonfinite"]
    for (name, a), (_, b) in zip(eager_model.state_dict().items(), graph_model.state_dict().items(), strict=True):
        assert torch.isfinite(b).all() and torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4), name


def test_the_weight_average_is_the_same_under_graphs(shards, tmp_path):
    # guards --ema against averaging stale weights when the step is a replayed CUDA graph
    eager_model, _, _ = run(shards, tmp_path / "eager", graphs=False, bf16=False, ema=0.9)
    graph_model, graphed, _ = run(shards, tmp_path / "graphs", graphs=True, bf16=False, ema=0.9)
    assert graphed["cuda_graphs"]
    for (name, a), (_, b) in zip(eager_model.state_dict().items(), graph_model.state_dict().items(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4), name


def test_bf16_graphs_train(shards, tmp_path):
    _, summary, losses = run(shards, tmp_path / "bf16", graphs=True, bf16=True)
    assert summary["bf16"] and summary["cuda_graphs"]
    assert losses[-1] < losses[0]


def test_distill_command_on_cuda(shards, tmp_path):
    out = tmp_path / "student"
    assert distill.main(["--data", str(shards / "kd"), "--tokenizer", str(shards / "tok"), "--output", str(out),
                         "--max-steps", "30", "--batch-size", "16", "--student-layers", "2", "--student-hidden", "64",
                         "--student-heads", "4", "--student-intermediate", "128", "--no-progress",
                         "--eval-every", "10"]) == 0
    result = json.loads((out / "evaluation.json").read_text())
    assert result["training"]["device"].startswith("cuda") and result["training"]["cuda_graphs"]
