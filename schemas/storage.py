"""One storage layer outside Beam: local paths, ``gs://`` and ``s3://`` through ``pyarrow.fs``.

Every function takes and returns *full* paths (``gs://bucket/x`` stays ``gs://bucket/x``) and
opens every file through the filesystem that path names, so a dataset folder reads the same on
a laptop and in a bucket. pyarrow's filesystems were chosen over fsspec's because pyarrow is
already the Parquet engine (its readers take the filesystem directly, with no Python-level
buffering in between) and it needs no extra dependency; pandas and Hugging Face ``datasets``
users read the same folders through fsspec (``gcsfs``/``s3fs``), which the ``dataflow`` extra
installs.

Emulators: with ``STORAGE_EMULATOR_HOST`` set (the variable Google's own clients and Beam
honour), ``gs://`` goes to that endpoint anonymously; ``s3://`` honours ``AWS_ENDPOINT_URL``.
Inside Beam jobs, paths go through Beam's ``FileSystems`` instead (same URIs).

Hugging Face folders (tokenizers, teachers) must be local for ``from_pretrained``:
:func:`local_folder` copies a remote one into a per-process cache once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

REMOTE_SCHEMES = ("gs", "s3")


def is_remote(path: str) -> bool:
    """Whether ``path`` names an object store (``gs://``, ``s3://``) rather than the local disk."""
    return urlparse(str(path)).scheme in REMOTE_SCHEMES


def _scheme(path: str) -> str:
    scheme = urlparse(str(path)).scheme
    if "://" in str(path) and scheme not in REMOTE_SCHEMES + ("file",):
        raise ValueError(f"unsupported storage scheme in {path!r}: expected a local path, gs:// or s3://. "
                         "Fix: copy the data to one of those.")
    return scheme


@functools.lru_cache(maxsize=8)
def _remote_filesystem(scheme: str, emulator: str | None, s3_endpoint: str | None) -> pafs.FileSystem:
    if scheme == "gs":
        if emulator:
            host = emulator.split("://", 1)[-1].rstrip("/")
            return pafs.GcsFileSystem(endpoint_override=host, anonymous=True,
                                      scheme="https" if emulator.startswith("https:") else "http")
        return pafs.GcsFileSystem()
    if s3_endpoint:
        parsed = urlparse(s3_endpoint)
        return pafs.S3FileSystem(endpoint_override=parsed.netloc or s3_endpoint, scheme=parsed.scheme or "https")
    return pafs.S3FileSystem()


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem ``path`` lives on and the path inside it (``bucket/key`` for object stores)."""
    scheme = _scheme(path)
    if scheme in REMOTE_SCHEMES:
        fs = _remote_filesystem(scheme, os.environ.get("STORAGE_EMULATOR_HOST"), os.environ.get("AWS_ENDPOINT_URL"))
        return fs, str(path).split("://", 1)[1].rstrip("/")
    if scheme == "file":
        return pafs.LocalFileSystem(), urlparse(str(path)).path
    return pafs.LocalFileSystem(), os.path.abspath(str(path))


def join(base: str, *names: str) -> str:
    """``base/name/…`` for local paths and URIs alike."""
    if is_remote(base):
        return "/".join([str(base).rstrip("/"), *(n.strip("/") for n in names)])
    return os.path.join(str(base), *names)


def _full(path: str, inner: str) -> str:
    return f"{_scheme(path)}://{inner}" if is_remote(path) else inner


def file_type(path: str) -> pafs.FileType:
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type


def exists(path: str) -> bool:
    return file_type(path) != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    return file_type(path) == pafs.FileType.Directory


def is_file(path: str) -> bool:
    return file_type(path) == pafs.FileType.File


def list_files(folder: str) -> list[str]:
    """The regular files directly in ``folder``, as full paths, sorted."""
    fs, inner = filesystem(folder)
    infos = fs.get_file_info(pafs.FileSelector(inner, recursive=False, allow_not_found=True))
    return sorted(_full(folder, info.path) for info in infos if info.type == pafs.FileType.File)


def read_bytes(path: str) -> bytes:
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as stream:
        return stream.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path: str) -> Any:
    return json.loads(read_text(path))


def write_bytes(path: str, data: bytes) -> None:
    """Write one file (creating local parent folders; object stores have none)."""
    fs, inner = filesystem(path)
    if not is_remote(path):
        os.makedirs(os.path.dirname(inner) or ".", exist_ok=True)
    with fs.open_output_stream(inner) as stream:
        stream.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


class ParquetPart:
    """One Parquet file read through its filesystem: row-group count, one row group, batches.

    Built on ``pyarrow.dataset`` fragments, which open the file with its size already known
    (``pq.ParquetFile`` on an object-store stream re-asks for it and, against an emulator, can wait
    on that request for the client's whole retry budget)."""

    def __init__(self, path: str) -> None:
        import pyarrow.dataset as ds

        fs, inner = filesystem(path)
        self.path = path
        self.fragment = next(ds.dataset(inner, filesystem=fs, format="parquet").get_fragments())

    @property
    def num_row_groups(self) -> int:
        return self.fragment.metadata.num_row_groups

    @property
    def schema(self):
        return self.fragment.physical_schema

    def read_row_group(self, index: int, columns: list[str] | None = None):
        return self.fragment.subset(row_group_ids=[index]).to_table(columns=columns)

    def iter_batches(self, batch_size: int = 65_536, columns: list[str] | None = None):
        yield from self.fragment.to_batches(batch_size=batch_size, columns=columns)


def parquet_file(path: str) -> ParquetPart:
    """``path`` as a :class:`ParquetPart` (local, ``gs://`` or ``s3://``)."""
    return ParquetPart(path)


def read_table(path: str, columns: list[str] | None = None):
    """One Parquet file as a table, read through ``path``'s filesystem."""
    import pyarrow.parquet as pq

    fs, inner = filesystem(path)
    return pq.read_table(inner, columns=columns, filesystem=fs)


def read_schema(path: str):
    """One Parquet file's schema (with its key-value metadata)."""
    return ParquetPart(path).schema


@functools.lru_cache(maxsize=1)
def _cache_root() -> str:
    return tempfile.mkdtemp(prefix="malmoi-remote-")


@functools.lru_cache(maxsize=64)
def local_folder(path: str) -> str:
    """``path`` itself when local; else a local copy of the remote folder's files, made once per
    process in a fresh temporary folder (so a later change in the bucket is seen by the next
    process, never half-mixed into this one), for loaders that only read local folders."""
    if not is_remote(path):
        return str(path)
    files = list_files(path)
    if not files:
        raise FileNotFoundError(f"remote folder {path!r} holds no files. Fix: check the path.")
    cache = os.path.join(_cache_root(), hashlib.sha256(str(path).encode()).hexdigest()[:16])
    os.makedirs(cache, exist_ok=True)
    for remote in files:
        with open(os.path.join(cache, remote.rsplit("/", 1)[-1]), "wb") as handle:
            handle.write(read_bytes(remote))
    return cache
