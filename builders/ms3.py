"""AVSBench MS3 (Zhou et al., ECCV 2022): multiple sound source segmentation, one sample per annotated frame.

Read as s4 (see _avsbench.py for both AVSBench layouts, the media and the target): semantic subset `v1m`
(`<root>/v1m/<uid>/...`, all 5 frames annotated) or the object release `Multi-sources/ms3_meta_data.csv`
(video_id,split; ids may carry a suffix like `xv7eM6-UmkY_36`) with `Multi-sources/ms3_data/
{visual_frames/<id>/<id>.mp4_{k}.png, gt_masks/<split>/<id>/<id>_{k}.png, audio_wav/<split>/<id>.wav}` (note
the `.mp4_` in the frame names and no split folder for frames). The semantic uid of an MS3 row is its video_id.

Classes: a semantic mask gives one group per sounding class (e.g. `boy`, `man`). The object release's MS3 masks
are binary and the MS3 metadata has only video_id,split, so they name no class: the builder takes the classes
from the semantic release of the same clip when it is under the raw root (the default `media=auto` does that),
and otherwise rejects the rows as `mask_without_class`, unless `binary_label=<class>` (a class of the AVSBench
vocabulary) names the class of every binary mask (then one group covers every sounding pixel).

Parameters: as s4, with `subsets` default "v1m" ("v1m,v2" adds the AVSS clips of the semantic release).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import canonical

from ._avsbench import AvsBenchBuilder, AvsClip
from ._masks import Invalid
from .base import BuilderError, Record, Reject, register


@register
class Ms3Builder(AvsBenchBuilder):
    """AVSBench MS3: one sample per annotated frame, one group per sounding class."""

    name = "ms3"
    raw_aliases = ("s4", "avsbench")
    subset = "v1m"
    object_meta = "Multi-sources/ms3_meta_data.csv"
    object_data = "Multi-sources/ms3_data"
    layout = (
        "AVSBench-semantic {metadata.csv,label2idx.json,v1m/<uid>/{audio.wav,frames/{i}.jpg,labels_semantic/{i}.png}} "
        "or AVSBench-object Multi-sources/{ms3_meta_data.csv,ms3_data/...}"
    )
    description = "one frame + its 1 s of audio; every sounding object's class, box, 3 points and mask"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        label = params.get("binary_label")
        if label:
            try:
                self.params["binary_label"] = canonical(self.name, str(label))
            except ValueError as exc:
                raise BuilderError(f"binary_label: {exc}") from exc

    def parse_object_row(self, r: dict[str, str], data: Path, split: str):
        """(uid, None: MS3 masks name no class, files(frame) -> (image, mask, audio)) of one ms3 row."""
        vid = r.get("video_id", "").strip()
        if not vid:
            raise Invalid("malformed_row", f"empty video_id in {r}")

        def files(i: int) -> tuple[Path, Path, Path]:
            return (
                data / "visual_frames" / vid / f"{vid}.mp4_{i + 1}.png",
                data / "gt_masks" / split / vid / f"{vid}_{i + 1}.png",
                data / "audio_wav" / split / f"{vid}.wav",
            )

        return vid, None, files

    def clip_records(self, clip: AvsClip) -> Iterator[Record | Reject]:
        """As s4; a clip whose masks are binary with no class given is one `mask_without_class` reject."""
        if not clip.label and any(enc == "binary" for _, _, _, enc in clip.frames):
            yield Reject(
                clip.split,
                clip.entry,
                "mask_without_class",
                f"the AVSBench-object MS3 masks of {clip.uid} name no class: add the AVSBench-semantic release "
                "(v1m/<uid>/labels_semantic) under the raw root or pass --param binary_label=<class>",
                clip.uid,
                clip.file,
                clip.row,
            )
            return
        yield from super().clip_records(clip)
