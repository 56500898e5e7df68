"""Each job translated into a Dataflow job offline (``--dry_run``), against the local GCS emulator.
Protects against: a job that works on the local runner but cannot be submitted to Dataflow
(unpicklable steps, options Dataflow rejects, a missing setup file), and set-up work outside the
pipeline (input listing, output checks, side-cars) touching the local disk instead of the bucket."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

from schemas import storage
from tests.conftest import ROOT, SAMPLES, upload


def dataflow_args(gcs: str) -> list[str]:
    return ["--runner", "DataflowRunner", "--dry_run=True", "--no_auth", "--project", "test-project",
            "--region", "asia-northeast3", "--temp_location", f"{gcs}/tmp", "--sdk_location", "container",
            "--setup_file", str(ROOT / "setup.py")]


def translate(run, argv: list[str], gcs: str) -> beam_runner_api_pb2.Pipeline:
    """Run a job's entry point with the Dataflow runner in dry-run mode; the translated pipeline."""
    runner = DataflowRunner()
    args = [*argv, *dataflow_args(gcs)]
    run(args, test_pipeline=beam.Pipeline(runner=runner, options=PipelineOptions(args)))
    return runner.proto_pipeline


def top_level_steps(proto: beam_runner_api_pb2.Pipeline) -> set[str]:
    return {t.unique_name for t in proto.components.transforms.values() if "/" not in t.unique_name}


def assert_every_dofn_unpickles(proto: beam_runner_api_pb2.Pipeline) -> int:
    count = 0
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            if payload.do_fn.urn == python_urns.PICKLED_DOFN_INFO:
                pickler.loads(payload.do_fn.payload)  # what the Dataflow worker does first
                count += 1
    return count


def assert_workers_get_the_package(proto: beam_runner_api_pb2.Pipeline) -> None:
    """The job stages malmoi's own package (built from --setup_file), lexicons included."""
    import tarfile

    staged = {}
    for environment in proto.components.environments.values():
        for dependency in environment.dependencies:
            name = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dependency.role_payload).staged_name
            staged[name] = beam_runner_api_pb2.ArtifactFilePayload.FromString(dependency.type_payload).path
    assert "workflow.tar.gz" in staged, staged
    with tarfile.open(staged["workflow.tar.gz"]) as package:
        names = package.getnames()
    assert any(n.endswith("beam_jobs/text/lexicons/contractions.tsv") for n in names)
    assert any(n.endswith("beam_jobs/readers/aihub.py") for n in names)


@pytest.fixture(scope="module")
def bucket(gcs, tmp_path_factory):
    upload(SAMPLES, f"{gcs}/df/samples")
    from tests.kd_fixtures import TEXTS, make_tokenizer_and_teacher

    root = make_tokenizer_and_teacher(tmp_path_factory.mktemp("df_models"))
    upload(root / "tok", f"{gcs}/df/tok")
    upload(root / "teacher", f"{gcs}/df/teacher")
    lines = [json.dumps({"id": f"{label}-{i}", "text": text, "label": label}, ensure_ascii=False)
             for label, texts in TEXTS.items() for i, text in enumerate(texts)]
    storage.write_text(f"{gcs}/df/task/reviews.jsonl", "\n".join(lines) + "\n")
    from beam_jobs import preprocess

    preprocess.run(["--input", f"{gcs}/df/task", "--output", f"{gcs}/df/utterances", "--runner", "FnApiRunner"])
    return gcs


def test_preprocess_translates_for_dataflow(bucket, monkeypatch, tmp_path):
    from beam_jobs import preprocess

    monkeypatch.chdir(tmp_path)  # anything written "locally" by mistake would land here
    proto = translate(preprocess.run, ["--input", f"{bucket}/df/samples", "--output", f"{bucket}/df/out_pre"], bucket)
    assert {"ReadCorpus", "NormalizeTokenizeSplit", "RowsToArrow", "WriteDataset", "AllRejects",
            "AllStats"} <= top_level_steps(proto)
    assert assert_every_dofn_unpickles(proto) >= 5
    assert not list(Path(tmp_path).iterdir()), "set-up work wrote to the local disk"
    assert not storage.exists(f"{bucket}/df/out_pre/_SUCCESS")  # translated, not run
    assert_workers_get_the_package(proto)


def test_learn_words_translates_for_dataflow(bucket, monkeypatch, tmp_path):
    from beam_jobs import learn_words

    monkeypatch.chdir(tmp_path)
    proto = translate(learn_words.run, ["--input", f"{bucket}/df/samples", "--output", f"{bucket}/df/words"], bucket)
    assert {"ReadCorpus", "CountSubstrings", "SumCounts", "ScoreShards", "CollectScores", "WriteRejects",
            "Write"} <= top_level_steps(proto)
    assert assert_every_dofn_unpickles(proto) >= 4
    assert not list(Path(tmp_path).iterdir())


def test_augment_translates_for_dataflow(bucket, monkeypatch, tmp_path):
    from beam_jobs import augment

    monkeypatch.chdir(tmp_path)
    proto = translate(augment.run, ["--input", f"{bucket}/df/utterances", "--output", f"{bucket}/df/kd",
                                    "--teacher", f"{bucket}/df/teacher", "--student-tokenizer", f"{bucket}/df/tok",
                                    "--paraphrase", "colloquial"], bucket)
    steps = top_level_steps(proto)
    assert {"ListRowGroups", "ReadUtterances", "Paraphrase", "Teacher", "KeepAndFilter", "WriteDataset"} <= steps, steps
    assert assert_every_dofn_unpickles(proto) >= 4
    assert not list(Path(tmp_path).iterdir())

