"""Hostile prediction files: `avuie eval` reports every bad line and goes on (issue 12, item 7, the eval side).

Each case writes a predictions file with good lines around a bad one and checks that the bad one is reported
with its reason and line number, the good ones are scored, and nothing raises. The property tests throw random
bytes, random JSON and hostile responses at the reader and at `evaluate`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from avuie.cli import app
from avuie.eval import scorers
from avuie.eval.reading import read_predictions
from avuie.eval.runner import evaluate
from tests.evalkit import Sample, write_build

SOURCES = ("ks", "arig", "avvp", "unav")


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, list[Sample]]:
    root = tmp_path_factory.mktemp("hostile")
    return root, write_build(root, SOURCES)


def line(sample: Sample, response: str | None = None) -> bytes:
    return json.dumps(
        {"id": sample.id, "response": sample.response if response is None else response}
    ).encode()


def run(tmp_path: Path, root: Path, lines: list[bytes], **kw) -> dict:
    path = tmp_path / "preds.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return evaluate(path, root, mask_backend="box", meteor="off", **kw)


def ks_of(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.source == "ks"]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"id": "ks/test/1", "response": "\xff<answer>x</answer>"}', "not UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000, "JSON nested too deeply"),
        (
            b'{"id": "ks/test/1", "response": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
            "JSON nested too deeply",
        ),
        (b'{"id": "ks/test/1", "response": "x", "n": ' + b"9" * 100_000 + b"}", "number too large"),
        (
            b'{"id": "ks/test/1", "response": "\\ud800<answer>x</answer>"}',
            "invalid Unicode (a lone surrogate)",
        ),
        (b'{"id": "ks/test/1", "response": "x"', "not JSON"),
        (b"\x00\x00\x00", "not JSON"),
        (b"\xef\xbb\xbf" + b'{"id": "ks/test/1", "response": "x"}', "not JSON"),  # a BOM past line 1
    ],
)
def test_one_bad_line_is_reported_and_the_rest_is_scored(build, tmp_path, bad, reason):
    root, samples = build
    ks = ks_of(samples)
    report = run(tmp_path, root, [line(ks[0]), bad, line(ks[2])], tasks=["ks"])
    assert report["malformed_lines"] == [2] and report["malformed_reasons"] == {reason: 1}
    result = report["tasks"]["ks"]
    assert result["n"] == 2 and result["primary"]["value"] == 1.0 and result["n_unparseable"] == 0


def test_a_bom_on_line_1_keeps_that_prediction(build, tmp_path):
    root, samples = build
    ks = ks_of(samples)
    report = run(tmp_path, root, [b"\xef\xbb\xbf" + line(ks[0]), line(ks[1])], tasks=["ks"])
    assert report["n_malformed_lines"] == 0 and report["tasks"]["ks"]["n"] == 2
    assert report["tasks"]["ks"]["primary"]["value"] == 1.0


def test_oversized_lines_are_capped_and_skipped_unread(build, tmp_path):
    root, samples = build
    ks = ks_of(samples)
    huge = line(ks[1], "x" * (3 << 20))  # 3 MiB, over the default 1 MiB cap
    report = run(tmp_path, root, [line(ks[0]), huge, line(ks[2])], tasks=["ks"])
    assert report["malformed_lines"] == [2] and report["malformed_reasons"] == {"line too long": 1}
    assert report["tasks"]["ks"]["n"] == 2 and report["tasks"]["ks"]["n_unpredicted"] == N_KS - 2
    # the cap is a parameter; a line of exactly the cap (newline not counted) is read
    exact = line(ks[3])
    report = run(tmp_path, root, [exact, line(ks[4], "y" * 500)], tasks=["ks"], max_line_bytes=len(exact))
    assert report["malformed_lines"] == [2] and report["tasks"]["ks"]["n"] == 1
    # a last line over the cap without a newline, and CRLF line ends elsewhere
    path = tmp_path / "tail.jsonl"
    path.write_bytes(line(ks[0]) + b"\r\n" + line(ks[1]) + b"\r\n" + b"z" * 5000)
    read = read_predictions(path, max_line_bytes=4096)
    assert len(read.responses) == 2 and read.malformed == [(3, "line too long", None)]


N_KS = 6


def test_hostile_responses_are_unparseable_not_fatal(build, tmp_path):
    root, samples = build
    by_source = {src: [s for s in samples if s.source == src] for src in SOURCES}
    hostile = {
        "arig": [
            "<obj>dog</obj> <box>[1e400,0,10,10]</box>",
            "<obj>dog</obj> <box>[" + "9" * 5000 + ",0,1,1]</box>",
            "<box>" * 8000,
        ],  # fmt: skip
        "unav": [
            "<event>dog barking</event> <range>1e999,2</range>",
            "<event>x</event><range>nan,inf</range>",
        ],
        "avvp": ["<audio_event>Dog," + "(1 2)" * 5000 + "</audio_event>", "<visual_event>" * 3000],
        "ks": ["<answer>" * 5000 + "</answer>", "\x00" * 100],
    }
    lines = []
    for src, responses in hostile.items():
        for sample, response in zip(by_source[src], responses, strict=False):
            lines.append(line(sample, response))
    report = run(tmp_path, root, lines)
    assert report["n_malformed_lines"] == 0
    for src, responses in hostile.items():
        result = report["tasks"][src]
        assert "error" not in result and result["n"] == len(responses), src
        assert result["n_unparseable"] + result["n_constraint_violations"] >= 1, src


def test_a_task_whose_scoring_fails_reports_its_error_and_the_others_still_score(
    build, tmp_path, monkeypatch
):
    root, samples = build

    def broken(*args):
        raise ZeroDivisionError("a scorer bug")

    monkeypatch.setitem(scorers.SCORERS, "grounding", broken)
    report = run(tmp_path, root, [line(s) for s in samples if s.source in ("ks", "arig")])
    assert report["tasks"]["arig"]["error"] == "ZeroDivisionError: a scorer bug"
    assert report["tasks"]["arig"]["primary"]["value"] is None
    assert report["tasks"]["ks"]["primary"]["value"] == 1.0


def test_cli_reports_bad_lines_and_exits_0(build, tmp_path):
    root, samples = build
    ks = ks_of(samples)
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + line(ks[0]) + b"\n\xff\xfe\n" + b"[" * 100_000 + b"\n" + line(ks[1]) + b"\n"
    )
    res = CliRunner().invoke(app, ["eval", "--pred", str(path), "--data", str(root), "--meteor", "off"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "2 malformed prediction lines were not scored" in said and "lines 2, 3" in said
    assert "not UTF-8: 1" in said and "JSON nested too deeply: 1" in said


# ------------------------------------------------------------------ properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def hostile_line(draw) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    if kind == 1:
        return json.dumps(draw(json_values)).encode()
    if kind == 2:
        record = {"id": draw(st.sampled_from(["ks/test/0", "ks/test/1", "arig/test/2", "nope"])),
                  "response": draw(st.text(max_size=300))}  # fmt: skip
        return json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == 3:
        return b"\xef\xbb\xbf" + json.dumps({"id": "ks/test/3", "response": "<answer>x</answer>"}).encode()
    return draw(st.sampled_from([b"", b"   ", b"\r", b"\t\x0b"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(hostile_line(), max_size=30))
def test_reader_accounts_for_every_line(tmp_path, lines):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
    read = read_predictions(path, max_line_bytes=256)
    content = [raw for raw in path.read_bytes().split(b"\n")[: len(lines)] if raw.strip()]
    assert len(read.responses) + read.duplicates + len(read.malformed) == len(content)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in read.responses.items())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(hostile_line(), max_size=12),
    responses=st.lists(st.text(max_size=400), min_size=4, max_size=4),
)
def test_evaluate_never_raises_on_hostile_files(build, tmp_path, lines, responses):
    root, samples = build
    picked = [s for s in samples if s.source in ("ks", "arig", "avvp", "unav")][::3][:4]
    good = [line(s, r) for s, r in zip(picked, responses, strict=True)]
    report = run(tmp_path, root, good + lines)
    for result in report["tasks"].values():
        assert "error" not in result and 0 <= result["n_unparseable"] <= result["n"]
