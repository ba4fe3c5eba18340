"""`avuie build --executor ray`: the work units of a build cut on a Ray cluster, pieces written on the driver.

The driver plans as the local executor does (build/plan.py) and cuts nothing itself. Each unit's records still to
build are dealt into slices (a few records each, so that every CPU of the cluster has work even when a build has
few units); one Ray task per slice cuts its records' media on a worker (`cut_records`: the record -> frames,
audio, masks, target and draft, fetching remote media into the worker's cache first) and returns them to the
driver. A task whose worker dies (killed, out of memory, node lost) is run again by Ray (`max_retries`); cutting
is a pure function of the record, so a retried slice gives the same bytes. When all slices of a unit are back, the
driver asks its reasoning engine for the chains (so the reply cache, the request concurrency and the counters stay
in one place) and writes the unit's staged piece (`write_piece`), exactly as the local executor does; the commit
(build/commit.py) then packs the pieces into shards. The output is byte-identical to a local build.

Without `--address` a Ray instance with `--workers` CPUs is started in this process (and stops with it); with
`--address auto` or `ray://host:10001` the build joins that cluster, whose nodes need avuie installed (the same
version); the storage settings of this process (`AWS_*`, `FSSPEC_*`, ..., `AVUIE_CACHE`) are passed to its
workers.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import deque
from typing import Any

from avuie.build.fetch import cut_records
from avuie.build.job import STOP, ExecutorError, UnitJob
from avuie.build.piece import write_piece
from avuie.build.plan import WorkUnit

CONNECT_SECONDS = 10  # to reach a cluster's address
RETRIES = 3  # runs of a slice after its worker died
MAX_SLICE = 16  # records per task at most
STORAGE_ENV = ("AWS_", "FSSPEC_", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_STORAGE_", "AVUIE_CACHE")

_connect_lock = threading.Lock()
_task: Any = None


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError("--executor ray needs Ray: pip install 'avuie[ray]'") from exc
    return ray


def storage_env() -> dict[str, str]:
    """This process's storage credentials and endpoints (and avuie's cache folder), for the workers."""
    return {k: v for k, v in os.environ.items() if k.startswith(STORAGE_ENV)}


def connect(workers: int, address: str | None) -> Any:
    """The `ray` module, connected: to `address` (`auto`, `ray://...`), else to a new local instance with
    `workers` CPUs; an already connected process is reused."""
    ray = _ray()
    with _connect_lock:
        if ray.is_initialized():
            return ray
        if address and address != "auto":
            _check_reachable(address)
        try:
            if address:
                ray.init(address=address, runtime_env={"env_vars": storage_env()}, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ExecutorError(
                f"cannot start or reach the Ray cluster {address or '(local)'}: {exc}"
            ) from exc
    return ray


def _check_reachable(address: str) -> None:
    """Refuse at once an address where nothing listens (ray.init would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ExecutorError(
            f"cannot start or reach the Ray cluster {address}: {exc} (is `ray start --head` running there, "
            "and is the port the head's GCS port, or 10001 for ray://?)"
        ) from exc


def _cut_slice(builder: Any, records: list, config: Any) -> list:
    """The Ray task: cut one slice of records on a worker."""
    return cut_records(builder, records, config)


def _remote(ray: Any, remote_media: bool) -> Any:
    """The Ray task; with remote media it carries this process's storage settings (a cluster started before
    they were set, or on other machines, has workers without them)."""
    global _task
    if _task is None:
        _task = ray.remote(num_cpus=1, max_retries=RETRIES)(_cut_slice)
    env = storage_env()
    return _task.options(runtime_env={"env_vars": env}) if remote_media and env else _task


def slices(units: list[WorkUnit], cpus: int) -> list[tuple[int, int, int]]:
    """(unit index, first, end) over the units' `todo` records: about four slices per CPU, at most MAX_SLICE
    records each."""
    total = sum(len(u.todo) for u in units)
    size = max(1, min(MAX_SLICE, -(-total // (4 * max(1, cpus)))))
    return [
        (i, a, min(a + size, len(u.todo))) for i, u in enumerate(units) for a in range(0, len(u.todo), size)
    ]


def _result(ray: Any, ref: Any) -> list:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the builder's own error: raise it as itself
        raise exc.as_instanceof_cause() from None
    except ray.exceptions.RayError as exc:
        raise ExecutorError(f"a Ray task failed {RETRIES + 1} times: {exc}") from exc


def run_on_ray(units: list[WorkUnit], job: UnitJob) -> None:
    """Build every unit into a staged piece (see the module docstring)."""
    ray = connect(job.config.workers, job.config.address)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = _remote(ray, bool(job.config.raw_url))
    builder, config = ray.put(job.builder), ray.put(job.config)
    queue = deque(slices(units, cpus))
    parts: dict[int, dict[int, list]] = {i: {} for i in range(len(units))}
    wanted = {i: sum(1 for s in queue if s[0] == i) for i in range(len(units))}
    pending: dict[Any, tuple[int, int, int]] = {}
    try:
        while queue or pending:
            while queue and len(pending) < 2 * cpus:
                i, a, b = queue.popleft()
                records = [units[i].records[j] for j in units[i].todo[a:b]]
                pending[task.remote(builder, records, config)] = (i, a, b)
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            if STOP.is_set():
                raise KeyboardInterrupt("stopped")
            for ref in done:
                i, a, b = pending.pop(ref)
                parts[i][a] = _result(ray, ref)
                if job.tick:
                    job.tick(b - a)
                if len(parts[i]) == wanted[i]:
                    prepared = [p for start in sorted(parts[i]) for p in parts[i][start]]
                    write_piece(job.builder, units[i], job.config, job.engine, prepared, job.pieces_dir)
                    del parts[i]
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
