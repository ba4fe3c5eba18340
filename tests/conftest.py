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


@pytest.fixture(scope="session")
def bundled_build(tmp_path_factory: pytest.TempPathFactory, _sample_cache) -> Path:
    """Every bundled sample (19 sources) built once per session with `avuie build --all` (read-only for tests)."""
    from typer.testing import CliRunner

    from avuie.cli import app

    out = tmp_path_factory.mktemp("bundled") / "all"
    result = CliRunner().invoke(app, ["build", "--all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection can leave the machine: one to anything but 127.0.0.1 fails the test (nothing downloads)."""
    import socket

    connect = socket.socket.connect

    def local_only(sock: socket.socket, address) -> None:
        if not (isinstance(address, tuple) and address[0] in ("127.0.0.1", "localhost", "::1")):
            raise AssertionError(f"a network connection was attempted: {address}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)
