"""The picture helpers: read and resize images, read/resize/encode masks, mask geometry, the PASCAL-VOC palette.

Sizes are ``(width, height)``. Unreadable files raise :class:`avuie.media.files.MediaError` with a ``reason``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from avuie.media.files import MediaError, check_media_file


def _open_image(path: str | Path):
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    check_media_file(path)
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise MediaError("corrupt_media", f"cannot decode image: {exc}", path) from exc
    return img


def load_image(
    path: str | Path, size: tuple[int, int] = (224, 224), quality: int = 95
) -> tuple[bytes, tuple[int, int]]:
    """Read a jpg/png frame, resize it (plain bicubic resize) to ``size``; return (JPEG bytes, original (w, h))."""
    from PIL import Image

    img = _open_image(path)
    original = img.size
    buf = io.BytesIO()
    img.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), original


def load_mask(path: str | Path) -> np.ndarray:
    """Read a mask PNG in its own values: L/P -> (H, W) values, '1' -> (H, W) 0/255, RGB(A) -> (H, W, 3)."""
    img = _open_image(path)
    if img.mode == "1":
        return np.asarray(img, dtype=bool).astype(np.uint8) * 255
    if img.mode in ("L", "P", "I", "I;16"):
        return np.asarray(img)
    if img.mode == "LA":
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))


def resize_mask(mask: np.ndarray, size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """Resize a boolean (H, W) mask to ``size`` (w, h) with nearest neighbour; return a bool array (h, w)."""
    from PIL import Image

    img = Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255, "L")
    return np.asarray(img.resize(size, Image.Resampling.NEAREST)) > 127


def encode_mask_png(mask: np.ndarray) -> bytes:
    """Encode a boolean (H, W) mask as an 8-bit greyscale PNG with values 0/255; return the bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255, "L").save(buf, format="PNG")
    return buf.getvalue()


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask whose 4 neighbours are also in it (the mask itself when that leaves nothing)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return inner if inner.any() else mask


def mask_geometry(mask: np.ndarray) -> tuple[list[int], list[list[int]]]:
    """Return (box ``[x1, y1, x2, y2]``, three points ``[[x, y], ...]``) of a boolean (H, W) mask.

    The box is tight and inclusive (x2, y2 are the last mask pixels). The points lie in the mask (in its
    interior when it has one): the pixel nearest the centroid, then the pixels nearest the two points a
    quarter of the mask's extent away along its major axis. Deterministic. Raises ValueError if empty.
    """
    mask = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise ValueError("mask_geometry: the mask is empty")
    box = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    iy, ix = np.nonzero(_interior(mask))
    cands = np.stack([ix, iy], axis=1).astype(float)
    coords = np.stack([xs, ys], axis=1).astype(float)
    centroid = coords.mean(axis=0)
    cov = np.cov(coords.T) if xs.size > 1 else np.eye(2)
    vals, vecs = np.linalg.eigh(np.atleast_2d(cov))
    axis = vecs[:, int(np.argmax(vals))]
    axis = axis if (axis[0], axis[1]) >= (0, 0) else -axis  # fixed sign, so the order is deterministic
    proj = (coords - centroid) @ axis
    reach = (proj.max() - proj.min()) / 4.0
    chosen: list[int] = []
    for target in (centroid, centroid - reach * axis, centroid + reach * axis):
        dist = ((cands - target) ** 2).sum(axis=1)
        if len(chosen) < len(cands):
            dist[chosen] = np.inf
        chosen.append(int(np.argmin(dist)))
    points = [[int(cands[i, 0]), int(cands[i, 1])] for i in chosen]
    return box, points


def voc_palette(n: int = 256) -> np.ndarray:
    """Return the PASCAL-VOC bit palette as an (n, 3) uint8 array (index 0 black, 1 (128,0,0), ...)."""
    pal = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def rgb_mask_to_index(rgb: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Map an (H, W, 3) colour mask to palette indices (H, W) by exact colour match.

    ``palette`` defaults to ``voc_palette()``. Raises ValueError naming colours that are not in the palette.
    """
    palette = voc_palette() if palette is None else np.asarray(palette, dtype=np.uint8)
    rgb = np.asarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb_mask_to_index: expected an (H, W, 3) array, got shape {rgb.shape}")
    code = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    pal_code = (palette[:, 0].astype(np.int64) << 16) | (palette[:, 1].astype(np.int64) << 8) | palette[:, 2]
    lookup = {int(c): i for i, c in reversed(list(enumerate(pal_code)))}  # first index wins on duplicates
    uniq, inverse = np.unique(code, return_inverse=True)
    missing = [int(u) for u in uniq if int(u) not in lookup]
    if missing:
        shown = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in missing[:5]]
        raise ValueError(f"rgb_mask_to_index: colours not in the palette: {shown}")
    index = np.array([lookup[int(u)] for u in uniq], dtype=np.int32)
    dtype = np.uint8 if len(palette) <= 256 else np.int32
    return index[inverse].reshape(rgb.shape[:2]).astype(dtype)
