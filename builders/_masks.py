"""Masks -> object groups, shared by the AVSBench builders (s4, ms3, arig) and ref_avs.

A decoded mask (binary, semantic palette indices or PASCAL-VOC RGB colours) gives one bool mask per sounding
class; each becomes an `ObjectGroup`: the mask resized to the frame (nearest), its tight box, three points inside
it and the PNG member that holds it.
"""

from __future__ import annotations

import numpy as np
from avuie.schemas import ObjectGroup, canonical

from .base import Cut

MIN_AREA = 0.0005  # a class below this fraction of the mask is annotation noise (e.g. 15 edge pixels)


class Invalid(ValueError):
    """A row or a mask that gives no sample; `reason` is the reject's code (malformed_row, empty_mask...)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


def binary_mask(values: np.ndarray, threshold: int | None = None) -> np.ndarray:
    """A bool mask of a binary mask's values (any channel; > 127 for 0/255 masks, > 0 for 0/1 masks)."""
    arr = np.asarray(values)
    arr = arr.max(axis=2) if arr.ndim == 3 else arr
    if threshold is None:
        threshold = 127 if arr.size and arr.max() > 1 else 0
    return arr > threshold


def palette_index(values: np.ndarray, encoding: str) -> np.ndarray:
    """The palette index per pixel of a semantic (values) or rgb (VOC colours; P-mode indices) mask."""
    from avuie.media.images import rgb_mask_to_index

    arr = np.asarray(values)
    if arr.ndim == 2:
        return arr.astype(np.int32)
    if encoding == "semantic":
        raise Invalid("bad_mask", f"a semantic mask must have one channel, got shape {arr.shape}")
    try:
        return rgb_mask_to_index(arr[..., :3]).astype(np.int32)
    except ValueError as exc:
        raise Invalid("unknown_colour", str(exc)) from exc


def class_masks(
    values: np.ndarray, encoding: str, names: dict[int, str], label: str | None = None
) -> list[tuple[str, np.ndarray]]:
    """(class name, bool mask) per sounding class of a decoded mask, in palette order.

    `binary` masks give one class, `label` (Invalid `mask_without_class` when None); `semantic`/`rgb`
    masks give one class per non-zero palette index, named through `names` (p -> name).
    """
    if encoding == "binary":
        mask = binary_mask(values)
        if not mask.any():
            return []
        if not label:
            raise Invalid("mask_without_class", "a binary mask names no class and none was given")
        return [(label, mask)]
    index = palette_index(values, encoding)
    out = []
    for p in np.unique(index):
        if p == 0:
            continue
        if int(p) not in names or names[int(p)] == "background":
            raise Invalid("unknown_class", f"mask value {int(p)} is not in label2idx (as p = label2idx - 1)")
        out.append((names[int(p)], index == p))
    return out


def frame_size(cut: Cut) -> tuple[int, int]:
    """The (w, h) of the cut image (the profile's frame size)."""
    for m in cut.media:
        if m.kind == "image" and m.size:
            return tuple(m.size)  # type: ignore[return-value]
    return (224, 224)


def object_groups(
    source: str, cut: Cut, classes: list[tuple[str, np.ndarray]], source_path: str, min_area: float = MIN_AREA
) -> list[ObjectGroup]:
    """One ObjectGroup per class mask: resized to the frame (nearest), its box, 3 points, its mask member.

    A class covering less than `min_area` of the mask (stray edge pixels) or vanishing at frame size is dropped.
    """
    from avuie.media.images import mask_geometry, resize_mask

    size = frame_size(cut)
    groups: list[ObjectGroup] = []
    for raw_label, mask in classes:
        try:
            label = canonical(source, raw_label)
        except ValueError as exc:
            raise Invalid("unknown_class", str(exc)) from exc
        small = resize_mask(mask, size)
        if mask.mean() < min_area or not small.any():
            continue  # annotation noise, or too small to survive the resize
        box, points = mask_geometry(small)
        name = f"mask_{len(groups)}.png"
        h, w = mask.shape[:2]
        cut.add_object_mask(name, small, source_path=source_path, original_size=(w, h))
        groups.append(ObjectGroup(label=label, box=tuple(box), points=[tuple(p) for p in points], mask=name))
    return groups
