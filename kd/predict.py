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

A token-classification model (``kd.finetune --task token-classification``) gives entities
instead (:class:`EntityPredictor`): one line per entity — surface, tag, description (PS →
사람 이름 …), character span in the *raw* input, confidence — or, with ``--json``, one object per
text with an ``entities`` list.
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


#: what each entity type names, for people reading the output (KLUE-NER's six types)
ENTITY_DESCRIPTIONS = {"PS": "사람 이름", "LC": "지역/장소", "OG": "기관/단체", "DT": "날짜", "TI": "시간", "QT": "수량"}


class EntityPredictor:
    """A token-classification model directory (``kd.finetune --task token-classification``):
    raw texts -> named entities, each with its surface, tag, description, confidence and its
    character span **in the raw input** (mapped back through the normalizer's edits)."""

    def __init__(self, model_dir: str, device: str = "cpu", max_length: int = 128, max_chars: int = 2000) -> None:
        from transformers import AutoModelForTokenClassification

        self.model = AutoModelForTokenClassification.from_pretrained(model_dir).to(device).eval()
        self.tokenizer = load_subword_tokenizer(model_dir)
        self.device, self.max_length, self.max_chars = device, max_length, max_chars
        normalizer_file = Path(model_dir) / NORMALIZER_FILE
        self.normalizer = (Normalizer(NormalizerConfig.from_dict(read_json(normalizer_file)))
                           if normalizer_file.exists() else None)
        self.id2label = {int(k): v for k, v in self.model.config.id2label.items()}

    @torch.inference_mode()
    def predict(self, texts: list[str], batch_size: int = 64) -> list[dict]:
        from beam_jobs.text.edits import unmap_span
        from kd.ner import encoded_spans, entities_from_tags

        results = []
        for begin in range(0, len(texts), batch_size):
            raw = [t[:self.max_chars] for t in texts[begin:begin + batch_size]]
            normalized = [self.normalizer.normalize(t) if self.normalizer else (t, []) for t in raw]
            clean = [text for text, _ in normalized]
            encoded = self.tokenizer(clean, return_tensors="pt", padding=True, truncation=True,
                                     max_length=self.max_length, return_offsets_mapping=True)
            offsets = encoded_spans(self.tokenizer, clean, encoded)
            encoded.pop("offset_mapping")
            probs = torch.softmax(self.model(**{k: v.to(self.device) for k, v in encoded.items()
                                                if k in ("input_ids", "attention_mask")}).logits.float(), -1).cpu()
            for row, (original, (text, edits)) in enumerate(zip(texts[begin:begin + batch_size], normalized,
                                                                strict=True)):
                tags = probs[row].argmax(-1).tolist()
                entities = []
                for start, end, label in entities_from_tags(offsets[row], tags, self.id2label):
                    inside = [probs[row, t].max().item() for t, (s, e) in enumerate(offsets[row])
                              if s != e and start <= s < end]
                    raw_start, raw_end = unmap_span(start, end, edits)
                    entities.append({"text": original[raw_start:raw_end], "label": label,
                                     "description": ENTITY_DESCRIPTIONS.get(label, label), "start": raw_start,
                                     "end": raw_end, "normalized": text[start:end],
                                     "confidence": float(sum(inside) / max(len(inside), 1))})
                results.append({"text": original, "normalized": text, "entities": entities,
                                "truncated": len(original) > self.max_chars})
        return results


def is_token_model(model_dir: str) -> bool:
    """Whether a model directory holds a token-classification head (entities, not labels)."""
    config = read_json(Path(model_dir) / "config.json")
    return any(a.endswith("ForTokenClassification") for a in config.get("architectures") or [])


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
            token_model = is_token_model(config.model)
            predictor = EntityPredictor(config.model, config.device) if token_model else Predictor(
                config.model, config.device, torchscript=config.torchscript)
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
            elif token_model:  # one line per entity: surface, tag, description, span in the raw text
                out.write(f"# {result['text']}\n")
                for entity in result["entities"]:
                    out.write(f"{entity['text']}\t{entity['label']}\t{entity['description']}\t"
                              f"{entity['start']}-{entity['end']}\t{entity['confidence']:.4f}\n")
            else:
                out.write(f"{result['label']}\t{result['probability']:.4f}\t{result['text']}\n")

    return config_command(PredictConfig, command, argv, prog="python -m kd.predict", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
