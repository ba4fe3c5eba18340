"""Helpers for the cluster tests: an s3 server on loopback (moto's real server), the environment that points
s3fs at it, and the state of a build (local folder or s3 URL) as plain values to compare."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq

BUCKET = "avuie-test"


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A moto s3 server on 127.0.0.1 (a free port) holding only the empty bucket BUCKET; yields its URL."""
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # fsspec reuses a filesystem instance per set of arguments, and the endpoint comes from the environment: an
    # instance made for an earlier server would still point at it
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its buckets in process-wide state: start from none (an earlier server may have left some)
        httpx.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()
        s3(endpoint).mkdir(BUCKET)
        yield endpoint
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()


def s3_env(endpoint: str, cache: Path) -> dict[str, str]:
    """The environment under which s3fs (in this process, a CLI subprocess or a Ray worker) talks to the server,
    with avuie's cache in `cache`."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AVUIE_CACHE": str(cache),
    }


def s3(endpoint: str) -> Any:
    """An s3fs filesystem on the server (a fresh instance, no listing cache)."""
    import s3fs

    return s3fs.S3FileSystem(
        key="test", secret="test", client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True
    )


def files_of(where: Path | str, endpoint: str | None = None) -> dict[str, bytes]:
    """{relative path: bytes} of every file of a build (a local folder, or s3://... on `endpoint`), without
    avuie's working folder and sync index."""
    if isinstance(where, Path):
        items = {p.relative_to(where).as_posix(): p.read_bytes() for p in where.rglob("*") if p.is_file()}
    else:
        fs, root = s3(endpoint), where.removeprefix("s3://").rstrip("/")
        items = {p[len(root) + 1 :]: fs.cat_file(p) for p in fs.find(root)}
    return {k: v for k, v in items.items() if not k.startswith(".avuie-tmp/") and k != ".avuie-sync.json"}


def build_state(files: dict[str, bytes]) -> dict[str, Any]:
    """What must be equal between two builds of the same input: every tar's sha256 (by path), every marker, and
    the manifest and rejects rows."""

    def rows(name: str) -> list[dict[str, Any]]:
        return pq.read_table(io.BytesIO(files[name])).to_pylist() if name in files else []

    return {
        "tars": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items()) if k.endswith(".tar")},
        "markers": {k: json.loads(v) for k, v in sorted(files.items()) if k.endswith(".done.json")},
        "manifest": rows("manifest.parquet"),
        "rejects": rows("rejects.parquet"),
    }
