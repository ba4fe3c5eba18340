"""Shared test setup: hermetic sample cache, the real annotation folder, progress bars off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real_annotations"


@pytest.fixture(scope="session", autouse=True)
def _sample_cache(tmp_path_factory: pytest.TempPathFactory):
    """Generate bundled samples into a per-session folder, never into the user's cache."""
    if "AVUIE_TEST_KEEP_SAMPLE_DIR" not in os.environ:
        os.environ["AVUIE_SAMPLE_DIR"] = str(tmp_path_factory.mktemp("samples"))
    yield


@pytest.fixture(scope="session")
def real_root() -> Path:
    """../shared/real_annotations (skip when the checkout has no shared folder beside it)."""
    if not REAL.exists():
        pytest.skip("../shared/real_annotations is not beside this checkout")
    return REAL
