"""Ref-AVS (Wang et al., ECCV 2024): referring audio-visual segmentation, one sample per expression.

Release layout (docs/SOURCES.md): `REFAVS/metadata.csv` (vid,uid,split,fid,exp; CRLF; `exp` holds commas),
`REFAVS/media/<vid>/{audio.wav, frames/{0..9}.jpg}` (10 s, 1 fps) and `REFAVS/gt_mask/<vid>/fid_<fid>/
0000{i}.png` (binary {0,255}; `fid` selects the mask folder of the expression, `i` the frame). Splits train,
val, test_s (seen), test_u (unseen), test_n (null reference); the 25 rows with split `TODO` are rejected
(`todo_split`). The object is `uid.rsplit('_', 2)[1]`; `null` marks a null reference (all of test_n and 680
train/val rows): the referred object is absent (the answer says false), no mask read.

Frame choice (`frame` parameter): `auto` (default) takes the lowest frame index 0..9 whose frame (and, for a
present object, mask) file exists, else frame 0: with the full release that is frame 0, and a partial copy
(the real example ships only frame 7 of -8mcyL3kWNQ_8000_18000) still builds. An integer picks that frame, `all`
makes one sample per frame 0..9. The audio is the 1 s [i, i+1) aligned with frame i. A present object whose
mask is empty in the chosen frame (or covers less than `min_area`, default 0.0005 of it) is rejected
(`empty_mask`).

native_id = `<uid>_f<frame>`. 11 uids appear on two rows (mostly exact repeats): each such row is kept as its own
sample under `<uid>_row<N>_f<frame>` (not merged), and every repeat after the first is also reported as a
`duplicate_uid` notice (in `avuie scan` and stats.json; not a reject, as the row is built). With
`duplicates=drop` the repeats are rejected instead of built.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import ReferringSegmentationTarget, TaskFamily, canonical

from ._masks import MIN_AREA, Invalid, binary_mask, frame_size, object_groups
from .base import (
    AudioMedia,
    Builder,
    BuilderError,
    Cut,
    ImageMedia,
    MaskMedia,
    Notice,
    Record,
    Reject,
    path_exists,
    path_is_dir,
    read_csv_rows,
    register,
)
from .instructions import instruction

SPLITS = ("train", "val", "test_s", "test_u", "test_n")
FRAMES = 10
NULL_OBJECT = "null"


def refavs_root(raw: Path) -> Path:
    """The REFAVS folder: `raw` itself or `raw/REFAVS` (holding metadata.csv with vid,uid,split,fid,exp)."""
    for cand in (raw, raw / "REFAVS"):
        meta = cand / "metadata.csv"
        if meta.exists() and {"uid", "split", "fid", "exp"} <= set(read_csv_rows(meta)[0]):
            return cand
    raise BuilderError(
        f"{raw} holds no Ref-AVS release (expected REFAVS/metadata.csv with vid,uid,split,fid,exp)"
    )


@register
class RefAvsBuilder(Builder):
    """Ref-AVS: one frame + its 1 s of audio + an expression; is the object there, and where."""

    name = "ref_avs"
    parameters = ("frame", "duplicates", "min_area")
    raw_aliases = ("refavs", "REFAVS")
    family = TaskFamily.segmentation
    license = "MIT (Ref-AVS annotations, GeWu-Lab); media YouTube-derived, research use"
    splits = SPLITS
    layout = (
        "REFAVS/{metadata.csv,media/<vid>/{audio.wav,frames/{i}.jpg},gt_mask/<vid>/fid_<fid>/0000{i}.png}"
    )
    description = (
        "one frame + 1 s of audio + a referring expression; present or not, and the object's box/mask"
    )

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield the records of every expression row (and a reject per bad, TODO or repeated row)."""
        root = refavs_root(Path(raw))
        frame = self.params.get("frame", "auto")
        if not (frame in ("auto", "all") or (str(frame).isdigit() and int(frame) < FRAMES)):
            raise BuilderError(f"ref_avs: frame must be auto, all or 0..{FRAMES - 1}, not {frame!r}")
        duplicates = self.params.get("duplicates", "keep")
        if duplicates not in ("keep", "drop"):
            raise BuilderError(f"ref_avs: duplicates must be keep or drop, not {duplicates!r}")
        rows = read_csv_rows(root / "metadata.csv")[1]
        counts = Counter(r.get("uid", "").strip() for _, r in rows)
        first_row: dict[str, int] = {}
        for row, r in rows:
            entry = f"metadata.csv:{row}"
            uid, split = r.get("uid", "").strip(), r.get("split", "").strip()
            at = (split or "unknown", entry, row)
            if split == "TODO":
                yield self._reject(*at, "todo_split", f"{uid}: split is TODO in the release (not assigned)")
                continue
            if split not in SPLITS:
                yield self._reject(
                    *at, "unknown_split", f"{uid}: split {split!r} is none of {', '.join(SPLITS)}"
                )
                continue
            try:
                vid, obj, fid, exp = self._parse(r)
                label = None if obj == NULL_OBJECT else canonical(self.name, obj)
            except Invalid as exc:
                yield self._reject(*at, exc.reason, exc.detail)
                continue
            except ValueError as exc:
                yield self._reject(*at, "unknown_class", f"{uid}: {exc}")
                continue
            base = uid if counts[uid] == 1 else f"{uid}_row{row}"
            if uid in first_row:
                detail = f"uid {uid} also on row {first_row[uid]}"
                if duplicates == "drop":
                    yield self._reject(*at, "duplicate_uid", detail, base)
                    continue
                yield Notice(split, entry, "duplicate_uid", f"{detail}; both rows kept, this one as {base}")
            first_row.setdefault(uid, row)
            for i in self._frames(root, vid, fid, label is not None, frame):
                yield self._record(root, split, entry, row, base, vid, fid, exp, label, i)

    @staticmethod
    def _reject(split: str, entry: str, row: int, reason: str, detail: str, native_id: str = "") -> Reject:
        return Reject(split, entry, reason, detail, native_id, "metadata.csv", row)

    def _parse(self, r: dict[str, str]) -> tuple[str, str, int, str]:
        uid, exp, fid = r.get("uid", "").strip(), " ".join(r.get("exp", "").split()), r.get("fid", "").strip()
        parts = uid.rsplit("_", 2)
        if len(parts) != 3 or not all(parts):
            raise Invalid("malformed_row", f"uid {uid!r} is not <vid>_<object>_<n>")
        if not exp:
            raise Invalid("empty_expression", f"{uid} has no expression")
        if not fid.isdigit():
            raise Invalid("malformed_row", f"{uid}: fid {fid!r} is not a mask folder number")
        return r.get("vid", "").strip() or parts[0], parts[1], int(fid), exp

    def _frames(self, root: Path, vid: str, fid: int, present: bool, frame: object) -> list[int]:
        if frame == "all":
            return list(range(FRAMES))
        if frame != "auto":
            return [int(str(frame))]
        if not path_is_dir(root / "media" / vid / "frames"):
            return [0]
        for i in range(FRAMES):
            if path_exists(root / "media" / vid / "frames" / f"{i}.jpg") and (
                not present or path_exists(self._mask_path(root, vid, fid, i))
            ):
                return [i]
        return [0]

    @staticmethod
    def _mask_path(root: Path, vid: str, fid: int, i: int) -> Path:
        return root / "gt_mask" / vid / f"fid_{fid}" / f"{i:05d}.png"

    def _record(
        self,
        root: Path,
        split: str,
        entry: str,
        row: int,
        base: str,
        vid: str,
        fid: int,
        exp: str,
        label: str | None,
        i: int,
    ) -> Record:
        media: list = [
            ImageMedia(root / "media" / vid / "frames" / f"{i}.jpg"),
            AudioMedia(root / "media" / vid / "audio.wav", start=float(i), duration=1.0),
        ]
        target = None
        if label is None:
            target = ReferringSegmentationTarget(expression=exp, present=False)
        else:
            media.append(MaskMedia(self._mask_path(root, vid, fid, i), encoding="binary"))
        return Record(
            native_id=f"{base}_f{i}",
            split=split,
            entry=entry,
            instruction=instruction(self.name, expression=exp),
            media=media,
            target=target,
            context={
                "expression": exp,
                "object": label or NULL_OBJECT,
                "video_id": vid,
                "fid": fid,
                "frame": i,
            },
            annotation_file="metadata.csv",
            annotation_row=row,
        )

    def make_target(self, record: Record, cut: Cut) -> ReferringSegmentationTarget:
        """Null references as read; a present object's group from its binary mask (threshold > 0)."""
        expression = record.context["expression"]
        if record.target is not None:
            return ReferringSegmentationTarget(
                expression=expression, present=False, frame_size=frame_size(cut)
            )
        mask = binary_mask(cut.masks["mask"], threshold=0)
        classes = [(record.context["object"], mask)] if mask.any() else []
        min_area = float(self.params.get("min_area", MIN_AREA))
        groups = object_groups(self.name, cut, classes, cut.mask_paths["mask"], min_area)
        if not groups:
            raise Invalid(
                "empty_mask", f"the referred {record.context['object']} is not in {cut.mask_paths['mask']}"
            )
        return ReferringSegmentationTarget(
            expression=expression, present=True, groups=groups, frame_size=frame_size(cut)
        )
