"""Every stage on gs:// against a local GCS emulator, and on s3:// against a local S3 endpoint.
Protects against: a remote path that works for
one stage and not the next (the scheme stripped, part files opened without their filesystem,
side-cars or ``_SUCCESS`` written to the local disk), and outputs pandas cannot open in a bucket."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from schemas import SUCCESS_NAME, UTTERANCES, read_dataset, read_manifest, storage
from tests.conftest import SAMPLES, upload


def task_lines() -> list[str]:
    """The labeled task rows as JSON lines (each text three times, so every split has some)."""
    from tests.kd_fixtures import TEXTS

    return [json.dumps({"id": f"{label}-{i}-{k}", "text": text, "label": label}, ensure_ascii=False)
            for label, texts in TEXTS.items() for i, text in enumerate(texts) for k in range(3)]


def tiny_distill(shards: str, tokenizer, out, steps: int) -> int:
    """kd.distill with a one-layer student for a few steps on ``shards`` (any storage)."""
    from kd import distill

    return distill.main(["--data", shards, "--tokenizer", str(tokenizer), "--output", str(out),
                         "--student-layers", "1", "--student-hidden", "32", "--student-heads", "2",
                         "--student-intermediate", "64", "--max-steps", str(steps), "--batch-size", "8",
                         "--no-progress", "--device", "cpu", "--no-cpu-speed"])


@pytest.fixture(scope="module")
def remote_corpus(gcs):
    upload(SAMPLES, f"{gcs}/samples")
    return f"{gcs}/samples"


def test_preprocess_reads_and_writes_gs(gcs, remote_corpus):
    from beam_jobs import preprocess

    out = f"{gcs}/out/utterances"
    preprocess.run(["--input", remote_corpus, "--output", out, "--runner", "FnApiRunner"])
    assert storage.is_file(storage.join(out, SUCCESS_NAME))
    manifest = read_manifest(out)
    table = read_dataset(out, UTTERANCES)
    assert table.num_rows == manifest["num_rows"] > 0
    stats = storage.read_json(storage.join(out, "_stats.json"))
    assert stats["conservation"]["balanced"]
    frame = pd.read_parquet(out, storage_options={"token": "anon"})
    assert len(frame) == table.num_rows and set(frame.columns) >= {"id", "text", "split"}
    assert sorted(frame["id"]) == sorted(table.column("id").to_pylist())
    print(json.dumps(manifest["rows_per_split"]))


@pytest.fixture(scope="module")
def remote_models(gcs, tmp_path_factory):
    """A tiny teacher and student tokenizer, uploaded as a Dataflow job would find them."""
    from tests.kd_fixtures import make_tokenizer_and_teacher

    root = make_tokenizer_and_teacher(tmp_path_factory.mktemp("remote_models"))
    upload(root / "tok", f"{gcs}/models/tok")
    upload(root / "teacher", f"{gcs}/models/teacher")
    return root


def test_learn_words_augment_distill_and_inspect_on_gs(gcs, remote_corpus, remote_models, tmp_path, capsys):
    from beam_jobs import augment, learn_words, preprocess
    from schemas import inspect

    lines = task_lines()
    storage.write_text(f"{gcs}/task/reviews.jsonl", "\n".join(lines) + "\n")
    runner = ["--runner", "FnApiRunner"]
    preprocess.run(["--input", f"{gcs}/task", "--output", f"{gcs}/out/task", "--split-ratios", "0.6,0.2,0.2", *runner])

    scores = f"{gcs}/out/word_scores"
    learn_words.run(["--input", remote_corpus, "--output", scores, "--min-count", "2", *runner])
    assert storage.is_file(storage.join(scores, SUCCESS_NAME))
    assert storage.read_json(storage.join(scores, "_stats.json"))["conservation"]["balanced"]

    shards = f"{gcs}/out/kd"
    augment.run(["--input", f"{gcs}/out/task", "--output", shards, "--teacher", f"{gcs}/models/teacher",
                 "--student-tokenizer", f"{gcs}/models/tok", "--paraphrase", "colloquial", *runner])
    assert storage.is_file(storage.join(shards, SUCCESS_NAME))
    assert len(pd.read_parquet(shards, storage_options={"token": "anon"})) == read_manifest(shards)["num_rows"]

    student = tmp_path / "student"
    assert tiny_distill(shards, remote_models / "tok", student, steps=4) == 0
    assert (student / "model.safetensors").exists()

    assert inspect.main([shards, "--rows", "2"]) == 0
    assert "schema kd" in capsys.readouterr().out


def test_preprocess_augment_distill_and_inspect_on_s3(s3, remote_models, tmp_path, capsys):
    # guards against s3:// paths that only gs:// was ever run with: Beam's S3 filesystem needs the
    # run's options outside the pipeline too (input listing, _SUCCESS), and takes no zero-byte object
    # (an empty _SUCCESS or an empty rejects shard failed the whole job at its last step)
    from beam_jobs import augment, preprocess
    from schemas import inspect

    bucket, beam_args = s3
    upload(remote_models / "tok", f"{bucket}/models/tok")
    upload(remote_models / "teacher", f"{bucket}/models/teacher")
    lines = task_lines()
    storage.write_text(f"{bucket}/task/reviews.jsonl", "\n".join(lines) + "\n")
    runner = ["--runner", "FnApiRunner", *beam_args]
    out = f"{bucket}/out/task"
    preprocess.run(["--input", f"{bucket}/task", "--output", out, "--split-ratios", "0.6,0.2,0.2", *runner])
    assert storage.is_file(storage.join(out, SUCCESS_NAME))
    assert read_dataset(out, UTTERANCES).num_rows == read_manifest(out)["num_rows"] == len(lines)
    assert storage.read_json(storage.join(out, "_stats.json"))["conservation"]["balanced"]

    shards = f"{bucket}/out/kd"
    augment.run(["--input", out, "--output", shards, "--teacher", f"{bucket}/models/teacher",
                 "--student-tokenizer", f"{bucket}/models/tok", *runner])
    assert storage.is_file(storage.join(shards, SUCCESS_NAME))
    student = tmp_path / "student"
    assert tiny_distill(shards, remote_models / "tok", student, steps=2) == 0
    assert (student / "model.safetensors").exists()
    assert inspect.main([shards, "--rows", "1"]) == 0
    assert "schema kd" in capsys.readouterr().out
