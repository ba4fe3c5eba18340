"""Loader throughput on real build output: AVStream (local, HTTP, HTTP with the shard cache) against equal-work
baselines, every row decoding the same media with the same function (avuie.shards.decode.decode_media).

    python benchmarks/bench_loader.py [--data avuie-out] [--repeats 7] [--epochs 3]

Data: a finished build (or a root of several, such as `avuie-out/` from `bash scripts/demo.sh`); by default the
bundled samples of every source are built into a temporary folder first (about 30 s). Rows, in samples/s (median
of --repeats timings, each --epochs passes over every sample):

- tarfile + decode: a plain `tarfile` stream read of every shard, members grouped by key, then decode_media;
- webdataset + decode: plain `webdataset.WebDataset` over the shard paths (and, for HTTP, over the server's URLs
  through `pipe:curl`), then decode_media;
- AVStream local / HTTP / HTTP + cache (1st epoch: one epoch into an empty cache, downloads included; filled:
  the cache already holds every shard), each opened once per timing and read for --epochs epochs;
- bytes only (no decode) for AVStream local and HTTP, as extra information.

Ratios are medians of the ratios measured within each round (rows run back to back, in ABBA order).

The server runs in its own process (`run_server`), as deployed; the loader runs in this process without DataLoader
workers, after one warm-up pass of each row, so the files sit in the page cache and the figures compare code
paths, not disks. The HTTP target (>= 0.8x local, decoded) is printed beside its figure.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avuie.shards.decode import decode_media  # noqa: E402
from avuie.shards.layout import find_shards  # noqa: E402
from avuie.shards.loader import AVStream  # noqa: E402
from avuie.shards.members import unpack_sample  # noqa: E402

SERVER = (
    "import sys; from avuie.shards.server import run_server; "
    "run_server(sys.argv[1], port=0, on_ready=lambda u: print(u, flush=True))"
)
HTTP_TARGET = 0.8


def decode_files(files: dict[str, bytes]) -> int:
    """Decode one sample's stored members ({extension: bytes}, "json" included) like AVStream; return 1."""
    sample, media_files = unpack_sample(files)
    decode_media(sample, media_files)
    return 1


def tarfile_pass(paths: list[Path]) -> int:
    """Read every shard with tarfile in stream mode, group members by key, decode; return the sample count."""
    count = 0
    for path in paths:
        with tarfile.open(path, "r|") as tar:
            key, files = None, {}
            for member in tar:
                if not member.isfile():
                    continue
                member_key, ext = member.name.split(".", 1)
                if member_key != key and files:
                    count += decode_files(files)
                    files = {}
                key, files[ext] = member_key, tar.extractfile(member).read()
            if files:
                count += decode_files(files)
    return count


def webdataset_pass(urls: list[str]) -> int:
    """Read the shards with plain webdataset (no shuffling), decode every sample; return the count."""
    import webdataset as wds

    count = 0
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        files = {k: v for k, v in sample.items() if not k.startswith("__")}
        count += decode_files(files)
    return count


def stream_epochs(source, epochs: int, decode: bool = True, **options) -> int:
    """Open AVStream(source) once (as a training job does) and read `epochs` epochs; return the item count."""
    stream = AVStream(source, decode=decode, seed=1, **options)
    count = 0
    for epoch in range(epochs):
        stream.set_epoch(epoch)
        count += sum(1 for _ in stream)
    return count


def cold_cache_epoch(url: str, scratch: Path) -> int:
    """One epoch of AVStream over HTTP into an empty shard cache (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    try:
        return stream_epochs(url, 1, cache_dir=str(folder))
    finally:
        shutil.rmtree(folder)


def measure(rows: dict, repeats: int, epochs: int) -> dict[str, list[float]]:
    """Warm every row up once, then time each `repeats` times; return {row: [samples/s per timing]}.

    A row is a function of the number of epochs to read that returns how many samples it read. Rows run one
    after another in each round, in reverse order every other round (ABBA), so that a ratio of two rows taken
    within a round compares runs made under the same machine load.
    """
    for run in rows.values():
        run(1)
    timings: dict[str, list[float]] = {label: [] for label in rows}
    for repeat in range(repeats):
        order = list(rows.items()) if repeat % 2 == 0 else list(rows.items())[::-1]
        for label, run in order:
            start = time.perf_counter()
            count = run(epochs)
            timings[label].append(count / (time.perf_counter() - start))
        print(f"  round {repeat + 1}/{repeats} done", file=sys.stderr, flush=True)
    return timings


def build_bundled(out: Path) -> None:
    """Build every source's bundled sample into out (as `avuie demo` does)."""
    from avuie.demo import build_all

    build_all(out)


def main() -> None:
    """Prepare the data, start the server, time every row and print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a finished build (default: build the bundled samples)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3, help="passes over the data per timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        data = args.data
        if data is None:
            data = scratch / "out"
            build_bundled(data)
        paths = find_shards(data)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(data)], stdout=subprocess.PIPE, text=True
        )
        try:
            url = server.stdout.readline().strip()
            urls = [f"pipe:curl -s -f {url}/{p.relative_to(data).as_posix()}" for p in paths]
            warm = scratch / "warm-cache"
            stream_epochs(url, 1, cache_dir=str(warm))
            local_paths = [str(p) for p in paths]
            rows = {  # pairs that are compared sit next to each other
                "AVStream local": lambda n: stream_epochs(data, n),
                "AVStream HTTP": lambda n: stream_epochs(url, n),
                "AVStream HTTP + cache (filled)": lambda n: stream_epochs(url, n, cache_dir=str(warm)),
                "AVStream HTTP + cache (1st epoch)": lambda n: cold_cache_epoch(url, scratch),
                "tarfile + decode (local)": lambda n: sum(tarfile_pass(paths) for _ in range(n)),
                "webdataset + decode (local)": lambda n: sum(webdataset_pass(local_paths) for _ in range(n)),
                "webdataset + decode (HTTP, curl)": lambda n: sum(webdataset_pass(urls) for _ in range(n)),
                "AVStream local, bytes only": lambda n: stream_epochs(data, n, decode=False),
                "AVStream HTTP, bytes only": lambda n: stream_epochs(url, n, decode=False),
            }
            samples = stream_epochs(data, 1, decode=False)
            print(f"{samples} samples in {len(paths)} shards, {megabytes:.1f} MB; medians of {args.repeats}")
            timings = measure(rows, args.repeats, args.epochs)
        finally:
            server.terminate()
            server.wait(30)
    report(timings)


RATIOS = [
    ("AVStream local", "tarfile + decode (local)", None),
    ("AVStream local", "webdataset + decode (local)", None),
    ("AVStream HTTP", "AVStream local", HTTP_TARGET),
    ("AVStream HTTP", "webdataset + decode (HTTP, curl)", None),
    ("AVStream HTTP + cache (1st epoch)", "AVStream local", None),
    ("AVStream HTTP + cache (filled)", "AVStream local", None),
    ("AVStream HTTP, bytes only", "AVStream local, bytes only", None),
]


def report(timings: dict[str, list[float]]) -> None:
    """Print the median samples/s of every row, then each ratio as the median of its per-round ratios."""
    print()
    for label, values in timings.items():
        print(f"{label:<36} {statistics.median(values):8.1f} samples/s")
    print()
    for top, bottom, target in RATIOS:
        ratio = statistics.median(a / b for a, b in zip(timings[top], timings[bottom], strict=True))
        line = f"{top + ' / ' + bottom:<66} = {ratio:.2f}x"
        if target is not None:
            line += f"   (target >= {target}x: {'meets' if ratio >= target else 'BELOW'})"
        print(line)


if __name__ == "__main__":
    main()
