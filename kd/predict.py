"""``python -m kd.predict``: raw text -> the model's normalizer -> tokenizer -> model -> labels.

    echo '넘 재밌어용ㅋㅋㅋ' | python -m kd.predict --model out/student
    python -m kd.predict --model out/student --input comments.txt --json > predictions.jsonl

From Python::

    from kd.predict import Predictor
    Predictor("out/student").predict(["넘 재밌어용"])  # [{"label": ..., "probs": {...}, "text": ...}]

The normalizer configuration saved with the model (``malmoi_normalizer.json``) is applied
first, so serving text is cleaned exactly as the training text was. ``--torchscript`` (CPU)
runs each text on its own through a traced, frozen copy of the model — the fast path for
single requests (see ``latency_ms_batch1_torchscript`` in ``kd.evaluate``).
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from beam_jobs.text.subwords import load_subword_tokenizer
from kd.common import NORMALIZER_FILE, read_json
from kd.models import torchscript_for_cpu
from schemas.options import MalmoiError, config_command, option


class Predictor:
    """Loads a model directory once; :meth:`predict` takes raw texts."""

    def __init__(self, model_dir: str, device: str = "cpu", max_length: int = 128, torchscript: bool = False,
                 max_chars: int = 2000) -> None:
        if torchscript and device != "cpu":
            raise MalmoiError(f"torchscript=True serves on the CPU, not on {device!r}.", "drop one of the two.")
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
        self.tokenizer = load_subword_tokenizer(model_dir)
        self.device = device
        self.max_length = max_length
        normalizer_file = Path(model_dir) / NORMALIZER_FILE
        self.normalizer = (Normalizer(NormalizerConfig.from_dict(read_json(normalizer_file)))
                           if normalizer_file.exists() else None)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.torchscript = torchscript
        self.max_chars = max_chars
        self._scripted: torch.jit.ScriptModule | None = None

    def _probs(self, clean: list[str]) -> torch.Tensor:
        if not self.torchscript:
            inputs = self.tokenizer(clean, return_tensors="pt", padding=True, truncation=True,
                                    max_length=self.max_length).to(self.device)
            return torch.softmax(self.model(**inputs).logits.float(), -1).cpu()
        rows = []
        for text in clean:  # one unpadded row at a time: what the traced copy is valid for
            ids = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_length)["input_ids"]
            if self._scripted is None:
                self._scripted = torchscript_for_cpu(self.model, ids)
            rows.append(torch.softmax(self._scripted(ids, torch.ones_like(ids)).float(), -1)[0])
        return torch.stack(rows) if rows else torch.zeros(0, len(self.labels))

    @torch.inference_mode()
    def predict(self, texts: list[str], batch_size: int = 64) -> list[dict]:
        results = []
        for start in range(0, len(texts), batch_size):
            raw = texts[start:start + batch_size]
            cut = [t[:self.max_chars] for t in raw]  # bounded work per request (the model reads max_length tokens)
            clean = [self.normalizer(t) if self.normalizer else t for t in cut]
            probs = self._probs(clean)
            for original, text, row in zip(raw, clean, probs, strict=True):
                best = int(row.argmax())
                results.append({"label": self.labels[best], "probability": float(row[best]), "text": text,
                                "truncated": len(original) > self.max_chars,
                                "probs": {name: float(p) for name, p in zip(self.labels, row, strict=True)}})
        return results


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    model: str = option(help="model directory (kd.distill or kd.finetune output)", metavar="DIR", required=True)
    input: str | None = option(None, help="a text file, one utterance per line (default: stdin)", metavar="FILE")
    json: bool = option(False, help="JSON lines with all probabilities")
    device: str = option("cpu", help="cpu, cuda, cuda:N")
    torchscript: bool = option(False, help="CPU: one text at a time through a traced copy")


def main(argv: list[str] | None = None, stdin=None, stdout=None) -> int:
    def command(config: PredictConfig) -> None:
        try:
            predictor = Predictor(config.model, config.device, torchscript=config.torchscript)
        except OSError as error:
            raise MalmoiError(f"cannot load --model {config.model}: {error}",
                              "pass a directory written by kd.distill or kd.finetune.") from error
        source = open(config.input, encoding="utf-8") if config.input else (
            stdin or io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
        out = stdout or sys.stdout
        lines = [line.rstrip("\n") for line in source]
        for result in predictor.predict(lines):
            if config.json:
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
            else:
                out.write(f"{result['label']}\t{result['probability']:.4f}\t{result['text']}\n")

    return config_command(PredictConfig, command, argv, prog="python -m kd.predict", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
