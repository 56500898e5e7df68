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


GCS_BUCKET = "malmoi-test"


@pytest.fixture(scope="session")
def gcs():
    """A Google Cloud Storage emulator on 127.0.0.1 for the session (PyPI's gcp-storage-emulator,
    in memory): Beam's GCS client, pyarrow and gcsfs all reach it through ``STORAGE_EMULATOR_HOST``.
    Yields the bucket's URI; nothing leaves this machine, and the server stops with the session."""
    import os
    import socket

    from gcp_storage_emulator.server import create_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=GCS_BUCKET)
    server.start()
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
           # gcsfs would otherwise probe the bucket type over gRPC, which the emulator does not speak
           "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    before = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    # Offline, Beam retries Google's default credentials for ~24 s per process and then connects
    # anonymously; start anonymous, as a Dataflow job given --no_auth does.
    from apache_beam.internal.gcp import auth

    credentials = (auth._Credentials._credentials_init, auth._Credentials._credentials)
    auth._Credentials._credentials_init, auth._Credentials._credentials = True, None
    try:
        yield f"gs://{GCS_BUCKET}"
    finally:
        server.stop()
        auth._Credentials._credentials_init, auth._Credentials._credentials = credentials
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


S3_BUCKET = "malmoi-s3-test"


@pytest.fixture(scope="session")
def s3():
    """An S3 endpoint on 127.0.0.1 for the session (moto's server, in memory). pyarrow (malmoi's
    storage layer) and boto3 read ``AWS_ENDPOINT_URL`` and the keys from the environment; Beam's
    S3 filesystem takes them as pipeline options, returned here as ``beam_args``. Yields
    (bucket URI, beam_args); nothing leaves this machine and the server stops with the session."""
    import os

    moto_server = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is not installed")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    before = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        import boto3

        boto3.client("s3").create_bucket(Bucket=S3_BUCKET)
        yield f"s3://{S3_BUCKET}", ["--s3_endpoint_url", endpoint, "--s3_access_key_id", "testing",
                                    "--s3_secret_access_key", "testing", "--s3_region_name", "us-east-1"]
    finally:
        server.stop()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def upload(folder: Path, uri: str) -> list[str]:
    """Copy every file under a local folder to ``uri`` (through malmoi's storage layer)."""
    from schemas import storage

    copied = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        target = storage.join(uri, *path.relative_to(folder).parts)
        storage.write_bytes(target, path.read_bytes())
        copied.append(target)
    return copied
