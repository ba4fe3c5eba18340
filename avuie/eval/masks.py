"""The prompt-to-mask step: turn predicted object groups (class, box, three points) into a binary mask.

Crab+ predicts segmentation as text and lets a frozen SAM2 draw the mask from the box and points. Two backends
share one interface, `masker(image, groups) -> (H, W) bool mask` (the union over the groups):

- `Sam2Masker`: SAM2's image predictor, used when the `sam2` package imports and a local checkpoint is given
  (`--sam2-checkpoint` or `AVUIE_SAM2_CHECKPOINT`; the model config via `AVUIE_SAM2_CONFIG`, default
  `configs/sam2.1/sam2.1_hiera_l.yaml`);
- `BoxFillMasker`: fills each predicted box (inclusive pixel coordinates), so that eval always runs.

`make_masker("auto")` picks SAM2 when it can and otherwise the box fill; the report names the backend used
(`masker.name`) and, for the fallback, why SAM2 was not used (`masker.reason`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

DEFAULT_SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_l.yaml"


def _box(group: Mapping) -> tuple[int, int, int, int] | None:
    box = group.get("box")
    if box is None or len(box) != 4:
        return None
    return tuple(int(round(v)) for v in box)  # type: ignore[return-value]


def fill_boxes(groups: Sequence[Mapping], size: tuple[int, int]) -> np.ndarray:
    """A (h, w) bool mask with every group's inclusive box [x1, y1, x2, y2] filled (clipped to the frame).

    `size` is (width, height), as the targets' `frame_size`. Groups without a box add nothing.
    """
    w, h = size
    mask = np.zeros((h, w), dtype=bool)
    for group in groups:
        box = _box(group)
        if box is None:
            continue
        x1, y1, x2, y2 = box
        x1, x2 = sorted((max(0, x1), min(w - 1, x2)))
        y1, y2 = sorted((max(0, y1), min(h - 1, y2)))
        mask[y1 : y2 + 1, x1 : x2 + 1] = True
    return mask


class BoxFillMasker:
    """The fallback prompt-to-mask step: each predicted box becomes a filled rectangle."""

    name = "box_fill"

    def __init__(self, reason: str = "") -> None:
        self.reason = reason

    def __call__(
        self, image: np.ndarray | None, groups: Sequence[Mapping], size: tuple[int, int]
    ) -> np.ndarray:
        """Take the frame (unused), the predicted groups and (width, height); return the (h, w) bool mask."""
        return fill_boxes(groups, size)


class Sam2Masker:
    """SAM2 image predictor prompted with each group's box and points (multimask off), masks united."""

    name = "sam2"
    reason = ""

    def __init__(self, checkpoint: str | Path, config: str = DEFAULT_SAM2_CONFIG, device: str | None = None):
        import torch  # lazy: only the SAM2 path needs torch
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.predictor = SAM2ImagePredictor(build_sam2(config, str(checkpoint), device=device))

    def __call__(
        self, image: np.ndarray | None, groups: Sequence[Mapping], size: tuple[int, int]
    ) -> np.ndarray:
        """Take the RGB frame (h, w, 3), the predicted groups and (width, height); return the (h, w) bool mask."""
        w, h = size
        mask = np.zeros((h, w), dtype=bool)
        if image is None:
            raise ValueError("SAM2 needs the sample's frame, and the sample carries no image")
        usable = [g for g in groups if _box(g) is not None or g.get("points")]
        if usable:
            self.predictor.set_image(np.asarray(image))
        for group in usable:
            points = np.asarray(group.get("points") or [], dtype=float).reshape(-1, 2)
            box = _box(group)
            masks, _, _ = self.predictor.predict(
                point_coords=points if len(points) else None,
                point_labels=np.ones(len(points)) if len(points) else None,
                box=np.asarray(box, dtype=float) if box is not None else None,
                multimask_output=False,
            )
            pred = np.asarray(masks[0]) > 0
            if pred.shape != mask.shape:
                from PIL import Image

                pred = (
                    np.asarray(Image.fromarray(pred.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 0
                )
            mask |= pred
        return mask


def make_masker(backend: str = "auto", checkpoint: str | Path | None = None):
    """Pick the prompt-to-mask backend: "auto" (SAM2 if usable, else box fill), "sam2" (required) or "box".

    Returns a callable with `.name` ("sam2" or "box_fill") and `.reason` (why the fallback was chosen).
    Raises ValueError for an unknown backend, or when "sam2" is required but not usable.
    """
    if backend not in ("auto", "sam2", "box"):
        raise ValueError(f"unknown mask backend {backend!r}: use auto, sam2 or box")
    if backend == "box":
        return BoxFillMasker("box fill requested")
    checkpoint = checkpoint or os.environ.get("AVUIE_SAM2_CHECKPOINT")
    if importlib.util.find_spec("sam2") is None:
        reason = "the sam2 package is not installed"
    elif not checkpoint or not Path(checkpoint).is_file():
        reason = (
            f"no local SAM2 checkpoint ({checkpoint or 'set --sam2-checkpoint or AVUIE_SAM2_CHECKPOINT'})"
        )
    else:
        return Sam2Masker(checkpoint, os.environ.get("AVUIE_SAM2_CONFIG", DEFAULT_SAM2_CONFIG))
    if backend == "sam2":
        raise ValueError(f"SAM2 was required but cannot be used: {reason}")
    return BoxFillMasker(reason)
