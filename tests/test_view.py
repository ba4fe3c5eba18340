"""`avuie view` over real HTTP on the bundled demo build: filters and pages, bytes by range, the sample page's
parts, edits checked and applied through `review apply`, the token rule, rejects and stats."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from PIL import Image
from starlette.testclient import TestClient

from avuie.view.app import create_view_app, view_in_thread
from avuie.view.auth import COOKIE
from avuie.view.stats_page import bar_chart
from avuie.view.store import Filters, Store
from avuie.view.tarread import ShardPages
from tests.viewkit import S4_CHAIN, copy_of, demo_build, shard_samples


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return demo_build(tmp_path_factory)


@pytest.fixture(scope="module")
def client(out):
    with view_in_thread(out) as handle, httpx.Client(base_url=handle.url, timeout=60) as http:
        yield http


def manifest(out: Path) -> list[dict]:
    return [r for path in sorted(out.glob("*/manifest.parquet")) for r in pq.read_table(path).to_pylist()]


def sample_links(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="(/sample\?[^"]+)" class="sample-link"', page)]


def test_filters_select_exactly_the_matching_manifest_rows(client, out):
    rows = manifest(out)
    cases = {
        "source=s4": lambda r: r["source"] == "s4",
        "family=event_localization&split=test": lambda r: (
            r["family"] == "event_localization" and r["split"] == "test"
        ),
        "origin=template&source=ave": lambda r: r["reasoning_kind"] == "template" and r["source"] == "ave",
        "q=REFERRING+expression": lambda r: (
            "referring expression" in (r["instruction"] + r["response"]).lower()
        ),
        "origin=human": lambda r: r["reasoning_kind"] == "human",
    }
    for query, keep in cases.items():
        page = client.get(f"/?{query}").text
        expected = {r["id"] for r in rows if keep(r)}
        shown = {re.search(r"[?&]key=([^&]+)", link).group(1) for link in sample_links(page)}
        assert shown == {r["key"] for r in rows if keep(r)}, query
        assert f"{len(expected):,} samples match" in page, query
    matched = {r["source"] for r in rows if cases["q=REFERRING+expression"](r)}
    assert matched == {"ref_avs"}  # the text filter is not vacuous: it finds the Ref-AVS instructions


def test_pages_split_the_rows_without_overlap(client, out):
    total = len(manifest(out))
    assert total > 50  # the demo build fills more than one page
    seen: list[str] = []
    for number in range(1, -(-total // 50) + 1):
        seen += sample_links(client.get(f"/?page={number}").text)
    assert len(seen) == len(set(seen)) == total
    assert 'rel="next"' not in client.get(f"/?page={-(-total // 50)}").text


def test_media_and_thumbnails_are_the_shard_members(client, out):
    s4 = shard_samples(out / "s4")
    item = next(iter(s4.values()))
    key = item["key"]
    for ext, data in item["files"].items():
        response = client.get("/media", params={"build": "s4", "key": key, "m": ext})
        assert response.status_code == 200 and response.content == data, ext
    thumb = client.get("/thumb", params={"build": "s4", "key": key})
    image = Image.open(io.BytesIO(thumb.content))
    assert image.format == "JPEG" and max(image.size) <= 120
    assert client.get("/media", params={"build": "s4", "key": key, "m": "nope.png"}).status_code == 404
    assert client.get("/media", params={"build": "../s4", "key": key, "m": "json"}).status_code == 404
    assert client.get("/sample", params={"build": "s4", "key": "missing"}).status_code == 404


def test_byte_range_reader_matches_webdataset_for_every_sample(out):
    pages = ShardPages()
    store = Store(out)
    for row in manifest(out)[::7]:
        folder, tar, _ = store.locate(row["source"], row["key"])
        members = pages.members(tar, row["key"])
        expected = shard_samples(folder)[row["id"]]["files"]
        assert set(members) == {"json", *expected}
        assert all(pages.read(tar, row["key"], ext) == data for ext, data in expected.items())


def test_sample_page_shows_frames_at_their_times_spans_and_overlays(client, out):
    ave = next(iter(shard_samples(out / "ave").values()))
    page = client.get("/sample", params={"build": "ave", "key": ave["key"]}).text
    times = next(m for m in ave["sample"]["media"] if m["kind"] == "video_frames")["frame_times"]
    assert all(f"t = {t:.2f} s" in page for t in times)
    target = ave["sample"]["target"]
    assert f"{target['label']}: {target['start']:g}-{target['end']:g} s" in html.unescape(page)
    assert "equals the stored target" in page
    avvp = next(iter(shard_samples(out / "avvp").values()))
    page = client.get("/sample", params={"build": "avvp", "key": avvp["key"]}).text
    spans = sum(
        len(v) for modality in ("audio", "visual") for v in avvp["sample"]["target"][modality].values()
    )
    assert page.count('class="span"') == spans
    ms3 = next(iter(shard_samples(out / "ms3").values()))
    page = html.unescape(client.get("/sample", params={"build": "ms3", "key": ms3["key"]}).text)
    groups = ms3["sample"]["target"]["groups"]
    assert page.count('class="box"') == len(groups) and page.count('class="point"') == 3 * len(groups)
    assert all(f"m={g['mask']}" in page for g in groups)
    provenance = ms3["sample"]["provenance"]
    assert provenance["annotation_file"] in page and str(out) not in page


def test_edits_are_checked_saved_and_applied_through_review_apply(tmp_path, out):
    root = copy_of(out, tmp_path / "out")
    s4 = shard_samples(root / "s4")
    sample_id, item = next(iter(s4.items()))
    with view_in_thread(root) as handle, httpx.Client(base_url=handle.url, timeout=60) as http:
        origin = {"Origin": handle.url}
        form = {"build": "s4", "key": item["key"], "reasoning": "Piano."}
        refused = http.post("/edit", data=form, headers=origin)
        assert refused.status_code == 422 and "too_short" in refused.text
        assert not (root / "s4" / "review.jsonl").exists()
        assert http.post("/edit", data={**form, "reasoning": S4_CHAIN}).status_code == 403  # no Origin
        saved = http.post("/edit", data={**form, "reasoning": S4_CHAIN}, headers=origin)
        assert saved.status_code == 200 and "saved" in saved.text
        other_id, other = list(s4.items())[1]
        http.post(
            "/edit",
            data={"build": "s4", "key": other["key"], "flagged": "1", "reasoning": ""},
            headers=origin,
        )
        assert "Apply 1 pending edit" in http.get("/review").text
        applied = http.post("/apply", headers=origin)
        assert "1 chain(s) written" in applied.text
        assert sample_links(http.get("/?origin=human").text) == [
            f"/sample?build=s4&key={item['key']}&origin=human"
        ]
    after = shard_samples(root / "s4")
    changed = after[sample_id]["sample"]
    assert changed["reasoning"] == S4_CHAIN and changed["response"] == f"{S4_CHAIN} {changed['answer']}"
    assert changed["reasoning_info"]["kind"] == "human"
    assert after[other_id]["sample"] == s4[other_id]["sample"]
    pending = (root / "s4" / "review.jsonl").read_text()
    assert other_id in pending and sample_id not in pending  # the flag stays, the edit moved out
    assert sample_id in (root / "s4" / "review.applied.jsonl").read_text()


def test_token_rule_is_the_servers_plus_a_browser_cookie(out):
    with view_in_thread(out, token="s3cret") as handle, httpx.Client(base_url=handle.url, timeout=60) as http:
        assert http.get("/healthz").status_code == 401
        assert http.get("/static/view.js").status_code == 401
        assert http.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert http.get("/?token=wrong").status_code == 401
        first = http.get("/?token=s3cret")
        assert first.status_code == 200 and COOKIE in first.headers["set-cookie"]
        assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
        assert http.get("/stats").status_code == 200  # the cookie from the first page
        http.cookies.clear()
        http.cookies.set(COOKIE, "wrong")
        assert http.get("/stats").status_code == 401


def test_media_answers_one_byte_range_so_the_audio_element_can_seek(client, out):
    item = next(iter(shard_samples(out / "s4").values()))
    name = next(n for n in item["files"] if n.endswith(".wav"))
    data, size = item["files"][name], len(item["files"][name])
    params = {"build": "s4", "key": item["key"], "m": name}

    def get(header: str | None):
        return client.get("/media", params=params, headers={"Range": header} if header else {})

    whole = get(None)
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
    for header, (start, end) in {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-10": (size - 10, size - 1),
        f"bytes=5-{size + 1000}": (5, size - 1),
    }.items():
        part = get(header)
        assert part.status_code == 206, header
        assert part.content == data[start : end + 1], header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}", header
    assert get(f"bytes={size}-").status_code == 416
    assert get(f"bytes={size}-").headers["content-range"] == f"bytes */{size}"
    for ignored in ("bytes=0-1,5-9", "bytes=9-3", "items=0-1", "bytes=" + "9" * 40 + "-"):
        answer = get(ignored)  # several, reversed, other units or absurd numbers: the whole member
        assert answer.status_code == 200 and answer.content == data, ignored


def test_a_loopback_viewer_answers_only_to_loopback_host_names(out):
    """DNS rebinding: a page at evil.example re-pointed to 127.0.0.1 sends Host: evil.example (and a matching
    Origin), so it would be same-origin with the viewer; the viewer refuses it before the token or the form."""
    with view_in_thread(out) as handle, httpx.Client(base_url=handle.url, timeout=60) as http:
        port = handle.url.rsplit(":", 1)[1].strip("/")
        assert http.get("/healthz").status_code == 200
        assert http.get("/healthz", headers={"Host": f"localhost:{port}"}).status_code == 200
        refused = http.get("/", headers={"Host": f"evil.example:{port}"})
        assert refused.status_code == 421 and "loopback" in refused.text
        rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        post = http.post("/apply", headers=rebound, data={})
        assert post.status_code == 421
        assert http.get("/healthz", headers={"Host": "[bad"}).status_code == 421
    with TestClient(
        create_view_app(out, host="0.0.0.0")
    ) as anywhere:  # bound to every address: a token's job
        assert anywhere.get("/healthz").status_code == 200  # Host: testserver
    with TestClient(create_view_app(out)) as loopback:
        assert loopback.get("/healthz").status_code == 421


def test_rejects_table_shows_reason_detail_and_raw_lines(client, out):
    page = client.get("/rejects", params={"reason": "todo_split"}).text
    assert (
        "todo_split" in page and "split is TODO in the release" in page and "<b>empty_segment</b>" not in page
    )
    raw = re.search(r'data-src="([^"]+)"', page).group(1)
    lines = client.get(html.unescape(raw)).text
    assert "TODO" in lines and "metadata.csv" in lines
    other = html.unescape(raw).replace("metadata.csv", "../build.json")
    assert client.get(other).status_code == 404  # only the files and rows of listed rejects


def test_every_demo_sample_page_renders(client, out):
    for row in manifest(out):
        page = client.get("/sample", params={"build": row["source"], "key": row["key"]})
        assert page.status_code == 200 and html.escape(row["id"]) in page.text, row["id"]
        assert "does not parse" not in page.text  # every demo answer reads back into a target


def test_stats_charts_and_data_card_use_relative_paths(client, out):
    page = client.get("/stats").text
    assert str(out) not in page
    for chart in ("c-source", "c-family", "c-split", "c-origin", "c-rejects", "c-duration", "c-chars"):
        assert f'id="{chart}"' in page
    assert "<td>s4</td><td>s4</td><td>segmentation</td>" in page
    assert 'data-scale="log scale"' in bar_chart("x", [("a", 2), ("b", 5000)], "x")
    assert 'data-scale="linear scale"' in bar_chart("x", [("a", 2), ("b", 50)], "x")


def test_store_pages_stay_in_range(out):
    store = Store(out)
    last = store.samples(Filters(), number=10_000)
    assert last.number == last.pages - 1 and last.rows
    assert store.samples(Filters(source="no such source")).total == 0


def test_cli_prints_the_url_with_its_token_and_stops_on_sigterm(out):
    import signal
    import subprocess
    import sys

    code = "from avuie.cli import app; app()"
    args = [sys.executable, "-c", code, "view", str(out), "--port", "0", "--token", "t0k"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert f"{len(manifest(out)):,} samples in 19 build(s)" in lines[0]
        url = re.search(r"Open (\S+)", lines[1]).group(1)
        assert url.endswith("/?token=t0k")
        assert httpx.get(url, timeout=60).status_code == 200
        assert httpx.get(url.split("?")[0] + "healthz", timeout=60).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    bad = subprocess.run(
        [sys.executable, "-c", code, "view", str(out / "s4" / "shards")], capture_output=True
    )
    assert bad.returncode == 2 and b"no build under" in bad.stderr
