"""The builder framework itself: ids are unique per split whatever a builder yields (`duplicate_id`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import Record, get_builder
from avuie.builders.ave import AveBuilder

from avuie.build.config import BuildConfig
from avuie.build.pipeline import build
from avuie.samples import ensure_sample
from tests.buildkit import assert_build_ok


class TwiceAve(AveBuilder):
    """AVE, with every record yielded twice, the second time from another entry (not registered)."""

    def read(self, raw: Path):
        for item in super().read(raw):
            yield item
            if isinstance(item, Record):
                yield Record(**{**item.__dict__, "entry": item.entry + "+again"})


def test_a_builder_that_yields_an_id_twice_gets_one_duplicate_id_reject_per_repeat(tmp_path):
    raw = ensure_sample("ave")
    once = [x for x in get_builder("ave").entries(raw) if isinstance(x, Record)]
    items = list(TwiceAve().entries(raw))
    reasons = Counter(getattr(x, "reason", "record") for x in items)
    assert reasons["record"] == len(once) and reasons["duplicate_id"] == len(once)
    repeat = next(x for x in items if getattr(x, "reason", "") == "duplicate_id")
    assert repeat.entry.endswith("+again") and "was already read from" in repeat.detail

    out = tmp_path / "out"
    stats = build(BuildConfig(source="ave", raw=raw, out=out), builder=TwiceAve())
    items = assert_build_ok(out, stats)  # in = written + rejected per split, validate clean, reads back
    keys = [it["key"] for it in items]
    assert len(keys) == len(set(keys))
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    dup = [r for r in rejects if r["reason"] == "duplicate_id"]
    assert len(dup) == len(once) and {r["id_or_row"] for r in dup} <= {it["sample"]["id"] for it in items} | {
        f"ave/{r.split}/{r.native_id}" for r in once
    }
    assert stats["totals"]["in"] == 2 * len(once)


def test_the_same_native_id_in_two_splits_is_two_samples(tmp_path):
    raw = ensure_sample("ave")
    records = [x for x in get_builder("ave").entries(raw) if isinstance(x, Record)]

    class OtherSplit(AveBuilder):
        def read(self, raw: Path):
            yield from records
            yield Record(**{**records[0].__dict__, "split": "extra"})

    reasons = Counter(getattr(x, "reason", "record") for x in OtherSplit().entries(raw))
    assert reasons == {"record": len(records) + 1}


@pytest.fixture
def toy_registered():
    """A 20th source declared the table-free way (its class list and instruction on the builder), unregistered
    again afterwards so that the other tests see the 19 sources."""
    from avuie.builders import base, instructions
    from avuie.schemas import vocab

    yield
    for table in (base.REGISTRY, vocab.VOCABULARIES, instructions.INSTRUCTIONS, instructions.KINDS):
        table.pop("toy", None)


def test_a_new_source_registers_its_classes_and_instruction_without_editing_shared_tables(
    tmp_path, toy_registered
):
    from avuie.builders._clip import clip_record
    from avuie.builders.base import Builder, read_text_lines, register
    from avuie.builders.instructions import instruction
    from avuie.schemas import TaskFamily, vocabulary

    from avuie.media.synth import make_video

    @register
    class ToyBuilder(Builder):
        name = "toy"
        family = TaskFamily.action_recognition
        splits = ("train",)
        classes = ("clapping", "drumming")
        instruction_template = "<video>\n<audio>\nWhat happens? Answer in this form: {answer_format}"
        target_kind = "classification"

        def read(self, raw: Path):
            for row, line in enumerate(read_text_lines(raw / "labels.txt"), start=1):
                clip, label = line.split()
                yield clip_record(self.name, self.family, native_id=clip, split="train", entry=f"labels.txt:{row}",
                                  raw_label=label, video=raw / f"{clip}.mp4", annotation_file="labels.txt",
                                  annotation_row=row)  # fmt: skip

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "labels.txt").write_text("a drumming\nb Clapping\nc singing\n")
    for clip in "abc":
        make_video(raw / f"{clip}.mp4", duration=2.0, size=(64, 48), fps=10)
    assert vocabulary("toy") == ("clapping", "drumming")
    assert instruction("toy").startswith("<video>\n<audio>\nWhat happens? Answer in this form: ")
    assert get_builder("toy").name == "toy"
    out = tmp_path / "out"
    stats = build(BuildConfig(source="toy", raw=raw, out=out))
    items = assert_build_ok(out, stats)
    assert sorted(it["sample"]["target"]["label"] for it in items) == ["clapping", "drumming"]
    assert stats["splits"]["train"]["reasons"] == {"unknown_class": 1}  # "singing" is not in its class list
    with pytest.raises(ValueError, match="another class list"):
        from avuie.schemas.vocab import register_vocabulary

        register_vocabulary("toy", ("clapping",))
