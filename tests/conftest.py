"""Shared fixtures: paths to the project's samples and the real datasets beside the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def run_preprocess(inputs: list[str], output: Path, *extra: str):
    """Run the preprocess job through its real entry point, on the in-process runner."""
    from beam_jobs import preprocess

    argv = []
    for item in inputs:
        argv += ["--input", str(item)]
    argv += ["--output", str(output), *extra]
    return preprocess.run(argv)
