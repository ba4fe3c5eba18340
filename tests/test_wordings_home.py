"""One home for answer wordings: no tag or answer wording is spelled in package code outside schemas/.

Instructions, reasoning templates and prompts, the reasoning check, the trainer's tokenizer corpus and the
exporters take every answer form from `avuie.schemas` (answers.py, crab.py, tags.py, wordings.py), so that a
change of style changes every place at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from avuie.schemas.scan import TAG_NAMES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("avuie", "builders", "shards", "trainer")
TAG_LITERAL = re.compile(r"<\s*/?\s*(?:" + "|".join(TAG_NAMES) + r")\s*>", re.IGNORECASE)
# The Crab+ style's wordings (schemas/crab.py): spelled there only.
CRAB_WORDINGS = re.compile(
    r"start_time:|end_time:|The sounding object is|The object making the sound in the video is|"
    r"The referred object is|Its coordinates are|Its bounding box is",
)


def package_files() -> list[Path]:
    """Every Python module and prompt file of the package outside schemas/."""
    files = [p for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py")]
    files += list((ROOT / "avuie" / "reasoning" / "prompts").glob("*.md"))
    return sorted(p for p in files if "schemas" not in p.relative_to(ROOT).parts[:1])


def test_the_scan_covers_the_places_that_used_to_spell_answers():
    names = {p.relative_to(ROOT).as_posix() for p in package_files()}
    assert {"builders/instructions.py", "trainer/models.py", "avuie/reasoning/check.py"} <= names
    assert any(n.endswith("prompts/segmentation.md") for n in names)


@pytest.mark.parametrize("path", package_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_answer_tag_or_wording_outside_schemas(path: Path):
    text = path.read_text(encoding="utf-8")
    stray = [m.group(0) for m in TAG_LITERAL.finditer(text)] + [
        m.group(0) for m in CRAB_WORDINGS.finditer(text)
    ]
    assert not stray, (
        f"{path.relative_to(ROOT)} spells answer wordings {sorted(set(stray))}: use avuie.schemas"
    )
