"""The viewer tests' shared build: the bundled demo build (every source's bundled sample), made once a session,
and copies of it for tests that change it."""

from __future__ import annotations

import glob
import json
import shutil
from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}
S4_CHAIN = (
    "A steady run of piano notes fills the second of audio, and the piano is the large shape in the lower middle "
    "of the frame, so that is where the sound comes from. So the answer is"
)


def demo_build(factory: pytest.TempPathFactory) -> Path:
    """OUT of `avuie demo`'s first stage (OUT/<source>/ for every source), built once per test session."""
    if "out" not in _BUILT:
        from avuie.demo import build_all

        out = factory.mktemp("view_demo") / "out"
        build_all(out)
        _BUILT["out"] = out
    return _BUILT["out"]


def copy_of(out: Path, dest: Path) -> Path:
    """A private copy of a build root (for tests that edit it)."""
    return Path(shutil.copytree(out, dest))


def shard_samples(build: Path) -> dict[str, dict]:
    """{sample id: {"sample": JSON, "files": {ext: bytes}}} of a build read with plain webdataset, in the logical
    form (model_dump JSON, one member per media file: shards/members.py `unpack`)."""
    import webdataset as wds
    from avuie.shards.members import unpack

    urls = sorted(glob.glob(str(build / "shards" / "*" / "*.tar")))
    found = {}
    for item in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        files = unpack({k: v for k, v in item.items() if not k.startswith("__")})
        sample = json.loads(files.pop("json"))
        found[sample["id"]] = {"sample": sample, "files": files, "key": item["__key__"]}
    return found
