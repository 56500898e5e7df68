"""Small shared pieces of the kd commands: devices, distributed set-up, hashes, config files."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from schemas.options import MalmoiError

# the provenance hashes live with the contracts; kd code imports them from here too
from schemas.provenance import files_hash as files_hash
from schemas.provenance import tokenizer_hash as tokenizer_hash
from schemas.provenance import tokenizer_hashes as tokenizer_hashes
from schemas.provenance import weights_hash as weights_hash

NORMALIZER_FILE = "malmoi_normalizer.json"
TRAINING_CONFIG_FILE = "malmoi_training_config.json"


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MalmoiError(f"--device {name}: no CUDA device is visible.", "use --device cpu or auto.")
    return device


@dataclasses.dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by ``torchrun`` (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(torch.distributed.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                          encoding="utf-8")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
