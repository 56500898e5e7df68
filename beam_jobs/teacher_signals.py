"""Teacher signals from outside malmoi — an LLM labelling run, another model's scores — as
ensemble members beside the checkpoint teacher, combined in log-probability space.

A signals file is JSONL or Parquet, one row per utterance, keyed by ``id`` (the utterances
dataset's id) or ``text`` (its normalized text), with exactly one of:

- ``logits``: C numbers (any scale), in the checkpoint teacher's label order;
- ``probs``: C non-negative numbers summing to 1, same order;
- ``label``: one label name (a hard label: label smoothing ``smoothing`` turns it into
  probabilities, so a confident wrong label cannot send a log-probability to −∞).

Members are combined as ``log_softmax(Σ w_i · log p_i)``; the weights (their ratios and their
sum, i.e. the ensemble's sharpness) are fitted on the gold labels of the valid split
(:func:`fit_weights`, negative log-likelihood), and written with every member into the kd
shards' provenance. Pure functions: no Beam, no torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass

import numpy as np

from schemas import storage
from schemas.options import MalmoiError

KEYS = ("id", "text")
KINDS = ("logits", "probs", "label")


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@dataclass
class SignalFile:
    """One member: its path, content hash, what it is keyed by and log-probabilities per key."""

    path: str
    sha256: str
    key: str
    kind: str
    log_probs: dict[str, np.ndarray]

    def describe(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "key": self.key, "kind": self.kind,
                "rows": len(self.log_probs)}


def _rows(path: str) -> list[dict]:
    data = storage.read_bytes(path)
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pylist()
    rows = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise MalmoiError(f"--teacher-signals {path}: line {number} is not JSON ({error.msg}).",
                              "write one JSON object per line.") from error
        if not isinstance(row, dict):
            raise MalmoiError(f"--teacher-signals {path}: line {number} is a {type(row).__name__}, expected an object.",
                              "write one JSON object per line.")
        rows.append(row)
    return rows


def load_signals(path: str, label_names: list[str], key: str = "id", smoothing: float = 0.05) -> SignalFile:
    """Read and validate a signals file (see the module docstring); every problem names the row."""
    if key not in KEYS:
        raise MalmoiError(f"--signals-key: expected one of {KEYS}, found {key!r}.")
    rows = _rows(path)
    if not rows:
        raise MalmoiError(f"--teacher-signals {path}: no rows.", "pass a file with one row per utterance.")
    kinds = [k for k in KINDS if k in rows[0]]
    if len(kinds) != 1:
        raise MalmoiError(f"--teacher-signals {path}: the first row has {sorted(rows[0])}; expected '{key}' and "
                          f"exactly one of {KINDS}.", "keep one kind of signal per file.")
    kind, width = kinds[0], len(label_names)
    out: dict[str, np.ndarray] = {}
    for number, row in enumerate(rows, start=1):
        where = f"--teacher-signals {path}: row {number}"
        name = row.get(key)
        if not isinstance(name, str) or not name:
            raise MalmoiError(f"{where} has no '{key}' (found keys {sorted(row)}).", "key every row by id or text "
                              "(--signals-key).")
        value = row.get(kind)
        if kind == "label":
            if value not in label_names:
                raise MalmoiError(f"{where}: label {value!r} is not one of the teacher's labels {label_names}.",
                                  "use the teacher's label names.")
            probs = np.full(width, smoothing / max(width - 1, 1))
            probs[label_names.index(value)] = 1.0 - smoothing
            scores = np.log(probs)
        else:
            if not isinstance(value, list) or len(value) != width or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise MalmoiError(f"{where}: '{kind}' should be a list of {width} numbers (labels {label_names}), "
                                  f"found {str(value)[:80]}.", "write the scores in the teacher's label order.")
            array = np.asarray(value, np.float64)
            if not np.isfinite(array).all():
                raise MalmoiError(f"{where}: '{kind}' holds NaN or inf.", "drop or fix that row.")
            if kind == "probs":
                if (array < 0).any() or not math.isclose(array.sum(), 1.0, abs_tol=1e-3):
                    raise MalmoiError(f"{where}: probs should be non-negative and sum to 1, found sum {array.sum():.4f}.",
                                      "normalize them, or write logits instead.")
                scores = np.log(np.clip(array, 1e-12, None))
            else:
                scores = array
        if name in out:
            raise MalmoiError(f"{where}: '{key}' {name[:40]!r} appears twice.", "keep one row per utterance.")
        out[name] = log_softmax(scores)
    return SignalFile(path, hashlib.sha256(storage.read_bytes(path)).hexdigest()[:16], key, kind, out)


def combine(members: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """``log_softmax(Σ w_i · log p_i)`` over members of shape (rows, C)."""
    return log_softmax(sum(w * m for w, m in zip(weights, members, strict=True)))


def default_weights(count: int) -> np.ndarray:
    """The weights before any fitting, or without labels to fit on: the geometric mean (1/N each),
    as sharp as one member."""
    return np.full(count, 1.0 / count)


def fit_weights(members: list[np.ndarray], labels: np.ndarray, steps: int = 500) -> np.ndarray:
    """Non-negative weights minimizing the negative log-likelihood of ``labels`` under
    :func:`combine`: their ratios say how much each member counts, their sum is the ensemble's
    sharpness (a product of N members with weight 1 each would be N times as sharp as one; fitted,
    the combination is as confident as the valid split supports, which is what a student learns
    from). Gradient descent on log-weights with a backtracking step, from the geometric mean
    (every weight 1/N), which is also the answer without labels; one member: weight 1."""
    count = len(members)
    if count == 1 or not len(labels):
        return default_weights(count)
    rows = np.arange(len(labels))

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights = np.exp(theta)
        combined = combine(members, weights)
        probs = np.exp(combined)
        # d NLL / d w_i = mean over rows of (E_p[log p_i] - log p_i[label]); d w / d theta = w
        grad_w = np.array([np.mean((probs * m).sum(1) - m[rows, labels]) for m in members])
        return float(-combined[rows, labels].mean()), weights * grad_w

    theta = np.log(default_weights(count))
    loss, grad = loss_and_grad(theta)
    step = 1.0
    for _ in range(steps):
        if float(grad @ grad) < 1e-12:
            break
        candidate = np.clip(theta - step * grad, -20.0, 5.0)
        new_loss, new_grad = loss_and_grad(candidate)
        if new_loss <= loss - 1e-4 * step * float(grad @ grad):
            theta, loss, grad, step = candidate, new_loss, new_grad, step * 1.5
        else:
            step *= 0.5
            if step < 1e-8:
                break
    return np.exp(theta)
