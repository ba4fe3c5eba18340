"""`avuie view` on a large build: how long a filtered page of the sample list takes.

    python benchmarks/bench_view.py [--rows 100000] [--repeats 15]

Writes one synthetic build of ROWS manifest rows (19 sources, 4 splits, 4 chain origins, instruction and response
texts of Crab+ length) and times, as medians over REPEATS runs after a warm-up:

- the viewer's query (avuie.view.store.Store.samples: count + one page of 50, DuckDB over the parquet on disk);
- the whole page over real HTTP on loopback (GET /?source=..&origin=..&q=..: filters, facets with counts, HTML);
- the baseline a user would write: pyarrow reads the manifest, filters with pyarrow.compute, sorts, slices 50.

The target for the HTTP page is < 300 ms. Thumbnails are separate requests (one byte-range read each) and are
not counted; this build has no tars.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from avuie.shards.writer import MANIFEST_COLUMNS  # noqa: E402

from avuie.view.app import view_in_thread  # noqa: E402
from avuie.view.store import Filters, Store  # noqa: E402

SOURCES = [
    "a2v", "arig", "avcap", "ave", "avqa", "avqa_thu", "avvp", "cremad", "dfew", "ks", "mafw", "meld", "mer24",
    "ms3", "ref_avs", "s4", "ucf", "unav", "v2a",
]  # fmt: skip
WORDS = "piano dog guitar engine speech crowd bell violin bird rain car siren baby drum water frying".split()


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    """n manifest rows with texts of realistic length; one source in four is much larger than the rest."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        source = rng.choice(SOURCES[:4]) if rng.random() < 0.5 else rng.choice(SOURCES)
        label = rng.choice(WORDS)
        words = " ".join(rng.choices(WORDS, k=40))
        rows.append(
            {
                "id": f"{source}/train/v{i:07d}",
                "key": f"{source}_train_v{i:07d}_{i:08x}",
                "source": source,
                "family": "segmentation"
                if source in ("s4", "ms3", "ref_avs", "arig")
                else "event_localization",
                "split": rng.choice(["train", "train", "val", "test"]),
                "shard": f"shards/train/{source}-train-{i // 256:05d}.tar",
                "num_bytes": 400_000,
                "media_duration": rng.uniform(1, 60),
                "num_frames": 10,
                "audio_seconds": 10.0,
                "label": label,
                "answer": f"<event>{label}</event> <range>1,7</range>",
                "instruction": f"<video>\n<audio>\nThis is a 10-second video with its audio. {words}. Which event?",
                "response": f"I listen and watch: {words} {label}. So the answer is <event>{label}</event>",
                "reasoning_kind": rng.choice(["template", "model", "model", "fallback", "human"]),
                "reasoning_chars": 300,
                "content_hash": f"{i:064x}",
            }
        )
    return rows


def write_build(out: Path, n: int) -> Path:
    """Write OUT/manifest.parquet (n rows), build.json and stats.json; return OUT."""
    out.mkdir(parents=True)
    schema = pa.schema(list(MANIFEST_COLUMNS.items()))
    pq.write_table(pa.Table.from_pylist(synthetic_rows(n), schema=schema), out / "manifest.parquet")
    (out / "build.json").write_text(json.dumps({"source": "mixed", "family": "mixed"}))
    (out / "stats.json").write_text(json.dumps({"splits": {"train": {"in": n, "written": n, "rejected": 0}}}))
    return out


def median_ms(run, repeats: int) -> float:
    """Run once to warm up, then repeats times; return the median wall time in milliseconds."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def baseline(path: Path, filters: Filters) -> list[dict]:
    """What a user would write: read the manifest with pyarrow, filter, sort, take the first 50 rows."""
    table = pq.read_table(path)
    mask = pc.and_(
        pc.equal(table["source"], filters.source), pc.equal(table["reasoning_kind"], filters.origin)
    )
    if filters.q:
        text = pc.binary_join_element_wise(table["instruction"], table["response"], " ")
        mask = pc.and_(mask, pc.match_substring(pc.utf8_lower(text), filters.q.lower()))
    picked = table.filter(mask).sort_by(
        [("source", "ascending"), ("split", "ascending"), ("id", "ascending")]
    )
    return picked.slice(0, 50).to_pylist()


def main() -> None:
    """Build the synthetic manifest, time the three paths and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = write_build(Path(tmp) / "big", args.rows)
        store = Store(out)
        cases = {
            "source + origin": Filters(source="s4", origin="model"),
            "source + origin + text": Filters(source="s4", origin="model", q="violin piano"),
        }
        print(f"{args.rows:,} manifest rows; medians of {args.repeats} runs (ms)")
        with view_in_thread(out) as handle, httpx.Client(base_url=handle.url, timeout=60) as http:
            for name, filters in cases.items():
                query = median_ms(lambda f=filters: store.samples(f), args.repeats)
                deep = median_ms(lambda f=filters: store.samples(f, number=40), args.repeats)
                page = median_ms(
                    lambda f=filters: http.get("/", params=f.as_params()).raise_for_status(), args.repeats
                )
                base = median_ms(lambda f=filters: baseline(out / "manifest.parquet", f), args.repeats)
                print(
                    f"{name:<24} viewer query {query:7.1f}  page 41 {deep:7.1f}  whole HTTP page {page:7.1f}"
                    f"  | pyarrow read+filter {base:7.1f}  (baseline / query = {base / query:4.1f}x)"
                )


if __name__ == "__main__":
    main()
