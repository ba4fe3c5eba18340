"""`avuie push DEST --repo user/name`: publish an hf export (`avuie export ... --format hf --to DEST`) as a dataset
repository on the Hugging Face Hub, through `huggingface_hub`.

The export's splits are written as Parquet files, one per source and split at the paths its dataset card names
(`data/<source>/<split>-00000-of-00001.parquet`, export/card.py), next to the card itself (README.md, with the
repository's name filled in), in a temporary folder that one `upload_folder` commit sends. The Parquet files keep
the export's features (Image, Audio, the typed target), so `datasets.load_dataset("user/name")` gives the same
rows back. DEST itself is only read. The endpoint is `endpoint=`, else `HF_ENDPOINT`, else the Hub's own; the token
`token=`, else `HF_TOKEN` or the one `hf auth login` saved.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avuie.export.card import CARD, REPO, hub_path, read_metadata

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


class PushError(ValueError):
    """The export or the repository name cannot be pushed (not an hf export, bad name)."""


def stage(dest: Path, repo: str, folder: Path, progress: Callable[[str], None] | None = None) -> list[str]:
    """Write the Hub layout of export DEST into `folder` (Parquet per source and split, the card); return the
    repository paths written."""
    import datasets

    meta = read_metadata(dest)  # raises when DEST is no hf export
    datasets.disable_progress_bars()
    dataset = datasets.load_from_disk(str(dest))
    written = []
    for split, part in dataset.items():
        sources = part["source"]
        for source in sorted(set(sources)):
            picked = [i for i, s in enumerate(sources) if s == source]
            rows = part.select(picked, keep_in_memory=True)  # an index map in memory: DEST gets no cache file
            path = folder / hub_path(source, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            rows.to_parquet(str(path))
            written.append(hub_path(source, split))
            if progress:
                progress(f"{split}/{source}: {len(rows)} rows")
    listed = {f["path"] for c in meta["configs"] if c["config_name"] != "all" for f in c["data_files"]}
    if listed != set(written):
        raise PushError(f"the card of {dest} names other files than the export holds: re-export it")
    card = (Path(dest) / CARD).read_text().replace(REPO, repo)
    (folder / CARD).write_text(card)
    return [*written, CARD]


def push(
    dest: Path,
    repo: str,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Create (or reuse) dataset repository `repo` and upload export DEST to it in one commit.

    Returns {"repo", "url", "commit", "files"}. Raises PushError on a bad repository name or a DEST that is no
    hf export; `huggingface_hub`'s errors (authentication, network) pass through.
    """
    if not _REPO_ID.match(repo):
        raise PushError(f"--repo must be a Hub repository id such as user/name, got {repo!r}")
    try:
        from huggingface_hub import HfApi
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("avuie push needs huggingface_hub: pip install 'avuie[export]'") from exc

    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    with tempfile.TemporaryDirectory(prefix="avuie_push_") as tmp:
        files = stage(Path(dest), repo, Path(tmp), progress)
        url = api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        if progress:
            progress(f"uploading {len(files)} files to {url}")
        info = api.upload_folder(
            folder_path=tmp,
            repo_id=repo,
            repo_type="dataset",
            commit_message=f"avuie push: {len(files) - 1} Parquet files and the dataset card",
        )
    return {"repo": repo, "url": str(url), "commit": getattr(info, "oid", None), "files": files}
