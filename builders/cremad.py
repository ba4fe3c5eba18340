"""CREMA-D (Cao et al., 2014): acted emotion of one spoken sentence, 6 classes, 91 actors.

Release layout (docs/SOURCES.md, the CheyneyComputerScience/CREMA-D repository): `SentenceFilenames.csv`
(`"Stimulus_Number","Filename"`, 7,442 clips) and the media `VideoFlash/<name>.flv` (video) and
`AudioWAV/<name>.wav` (audio). `<name>` = `<ActorID 1001-1091>_<Sentence>_<Emotion>_<Level>`, e.g.
`1001_IEO_NEU_XX`: the acted emotion is in the file name (ANG, DIS, FEA, HAP, NEU, SAD). The perceived (voted)
labels of `processedResults/summaryTable.csv` are not used. Without SentenceFilenames.csv the clip list comes
from the file names in `AudioWAV/` (or `VideoFlash/`).

CREMA-D has no official split. This builder uses a deterministic actor-disjoint split on the actor id alone
(so it does not depend on which files are present): `(ActorID - 1001) % 10 == 8` -> val, `== 9` -> test, else
train, i.e. 73 / 9 / 9 actors (about 80/10/10 of the clips). Parameters `val_actors` and `test_actors` (lists of
actor ids) replace that rule. Media: 4 frames of the FLV and the first 4 s of the WAV.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import TaskFamily
from avuie.schemas.classes_clips import CREMAD_CODES

from ._clip import clip_record, list_param
from .base import Builder, BuilderError, Record, Reject, read_csv_rows, register

SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
LEVELS = ("LO", "MD", "HI", "XX")
NAME_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def actor_split(actor: int, val_actors: set[int] | None = None, test_actors: set[int] | None = None) -> str:
    """The split of an actor: the explicit lists when given, else the documented `(id - 1001) % 10` rule."""
    if val_actors is not None or test_actors is not None:
        if actor in (test_actors or set()):
            return "test"
        return "val" if actor in (val_actors or set()) else "train"
    slot = (actor - 1001) % 10
    return "val" if slot == 8 else "test" if slot == 9 else "train"


def parse_name(name: str) -> tuple[int, str, str, str]:
    """Split `1001_IEO_NEU_XX` into (actor, sentence, emotion code, level); ValueError with the reason."""
    m = NAME_RE.match(name)
    if not m:
        raise ValueError(f"{name!r} is not <ActorID>_<Sentence>_<Emotion>_<Level>")
    actor, sentence, emotion, level = int(m[1]), m[2], m[3], m[4]
    if not 1001 <= actor <= 1091:
        raise ValueError(f"actor id {actor} is outside 1001-1091")
    if sentence not in SENTENCES or level not in LEVELS:
        raise ValueError(f"unknown sentence {sentence!r} or level {level!r}")
    return actor, sentence, emotion, level


def clip_list(raw: Path) -> tuple[str, list[tuple[int, str]]]:
    """(annotation file, [(row, clip name)]) from SentenceFilenames.csv, else from the media file names."""
    listing = raw / "SentenceFilenames.csv"
    if listing.exists():
        header, rows = read_csv_rows(listing)
        if "Filename" not in header:
            raise BuilderError(f"{listing} has no Filename column (header {header})")
        return listing.name, [(n, r["Filename"].strip()) for n, r in rows]
    for folder, ext in (("AudioWAV", ".wav"), ("VideoFlash", ".flv")):
        if (raw / folder).is_dir():
            names = sorted(p.stem for p in (raw / folder).iterdir() if p.suffix.lower() == ext)
            if names:
                return folder, list(enumerate(names, start=1))
    raise BuilderError(f"{raw} holds no CREMA-D release (SentenceFilenames.csv, AudioWAV/ or VideoFlash/)")


def _actor_set(params: dict, name: str) -> set[int] | None:
    if name not in params:
        return None
    ids = list_param(params, name, ())
    try:
        return {int(i) for i in ids}
    except ValueError:
        raise BuilderError(f"parameter {name} must list actor ids like 1001, got {ids}") from None


@register
class CremadBuilder(Builder):
    """CREMA-D emotion recognition: one sample per clip, split by actor."""

    name = "cremad"
    parameters = ("val_actors", "test_actors")
    raw_aliases = ("crema_d", "CREMA-D")
    family = TaskFamily.emotion_recognition
    license = "ODbL 1.0 (database) / DbCL 1.0 (contents)"
    layout = "{SentenceFilenames.csv, VideoFlash/<name>.flv, AudioWAV/<name>.wav}, <name> = 1001_IEO_NEU_XX"
    description = "acted sentences; the emotion coded in the file name (6 classes), actor-disjoint split"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per clip of the listing."""
        raw = Path(raw)
        if not (raw / "SentenceFilenames.csv").exists() and (raw / "CREMA-D").is_dir():
            raw = raw / "CREMA-D"
        val_actors, test_actors = (
            _actor_set(self.params, "val_actors"),
            _actor_set(self.params, "test_actors"),
        )
        fname, names = clip_list(raw)
        for row, name in names:
            entry = f"{fname}:{row}"
            try:
                actor, sentence, code, level = parse_name(name)
            except ValueError as exc:
                guess = actor_split(int(name[:4]), val_actors, test_actors) if name[:4].isdigit() else "train"
                yield Reject(guess, entry, "malformed_name", str(exc), "", fname, row)
                continue
            split = actor_split(actor, val_actors, test_actors)
            if code not in CREMAD_CODES:
                detail = f"emotion code {code!r} is not one of {', '.join(CREMAD_CODES)}"
                yield Reject(split, entry, "unknown_class", detail, name, fname, row)
                continue
            yield clip_record(
                self.name,
                self.family,
                native_id=name,
                split=split,
                entry=entry,
                raw_label=CREMAD_CODES[code],
                video=raw / "VideoFlash" / f"{name}.flv",
                audio=raw / "AudioWAV" / f"{name}.wav",
                annotation_file=fname,
                annotation_row=row,
                context={"actor": actor, "sentence": sentence, "level": level},
                original_label=code,
            )
