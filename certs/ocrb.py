"""OCR-B text from the committed glyph atlas: outlines for PDF, anti-aliased rasters for PNG.

The atlas (``certs/data/ocrb_atlas.json``) holds the outlines of the characters a coupon prints,
taken from the public-domain OCR-B font by ``scripts/make_ocrb_atlas.py``; no system font is
needed at run time. Sizes are true print sizes: ``size_pt`` is the em size in points (1/72 in).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "MM_PER_PT",
    "Glyph",
    "OcrbError",
    "line_width_mm",
    "load_atlas",
    "render_text",
    "text_outlines",
]

MM_PER_PT = 25.4 / 72
_SUPERSAMPLE = 4


class OcrbError(ValueError):
    """Text the atlas cannot draw, or a size it cannot draw at."""


@dataclass(frozen=True)
class Glyph:
    advance: int  # font units
    contours: tuple[tuple[tuple[int, int], ...], ...]  # font units, y up, closed polygons


@dataclass(frozen=True)
class Atlas:
    units_per_em: int
    glyphs: dict[str, Glyph]
    ink_top: int  # top of the digits' ink, font units above the baseline


@functools.cache
def load_atlas() -> Atlas:
    """The committed OCR-B atlas (read once)."""
    text = resources.files("certs").joinpath("data/ocrb_atlas.json").read_text("utf-8")
    data = json.loads(text)
    glyphs = {
        char: Glyph(
            advance=int(g["advance"]),
            contours=tuple(tuple((int(x), int(y)) for x, y in c) for c in g["contours"]),
        )
        for char, g in data["glyphs"].items()
    }
    ink_top = max(y for d in "0123456789" for c in glyphs[d].contours for _, y in c)
    return Atlas(units_per_em=int(data["units_per_em"]), glyphs=glyphs, ink_top=ink_top)


def _glyphs_of(text: str) -> list[Glyph]:
    atlas = load_atlas()
    missing = sorted({c for c in text if c not in atlas.glyphs})
    if missing:
        raise OcrbError(f"the OCR-B atlas has no glyph for {''.join(missing)!r}")
    return [atlas.glyphs[c] for c in text]


def line_width_mm(text: str, size_pt: float = 9.0) -> float:
    """The printed width of ``text`` (sum of advances) at ``size_pt``."""
    atlas = load_atlas()
    units = sum(g.advance for g in _glyphs_of(text))
    return units / atlas.units_per_em * size_pt * MM_PER_PT


def text_outlines(text: str, size_pt: float = 9.0) -> list[list[tuple[float, float]]]:
    """Closed polygons of ``text`` in points, origin at the left end of the baseline, y up.

    Fill them with the even-odd rule (counters are separate contours). This is what a PDF
    renderer draws, so printed and rasterised coupons share one set of glyph data.
    """
    atlas = load_atlas()
    scale = size_pt / atlas.units_per_em
    polygons: list[list[tuple[float, float]]] = []
    pen_x = 0
    for glyph in _glyphs_of(text):
        for contour in glyph.contours:
            polygons.append([((pen_x + x) * scale, y * scale) for x, y in contour])
        pen_x += glyph.advance
    return polygons


def render_text(
    canvas: npt.NDArray[np.uint8],
    text: str,
    *,
    origin_px: tuple[float, float],
    px_per_mm: float,
    size_pt: float = 9.0,
    ink: int = 0,
) -> None:
    """Draw ``text`` into a grey ``canvas`` in place; ``origin_px`` is the baseline's left end.

    The glyphs are filled at 4x and area-averaged down, so edges are anti-aliased like print
    seen through a lens, and the result is the same at any DPI.
    """
    if canvas.ndim != 2 or canvas.dtype != np.uint8:
        raise OcrbError("render_text draws into a 2-D uint8 (grey) canvas")
    if not 0.5 <= size_pt <= 200 or not 1 <= px_per_mm <= 200:
        raise OcrbError("size_pt must be 0.5-200 and px_per_mm 1-200")
    polygons = text_outlines(text, size_pt)
    if not polygons:
        return
    px_per_pt = px_per_mm * MM_PER_PT
    s = _SUPERSAMPLE
    points = np.concatenate([np.asarray(p, np.float64) for p in polygons])
    x0 = int(np.floor(origin_px[0] + points[:, 0].min() * px_per_pt)) - 1
    x1 = int(np.ceil(origin_px[0] + points[:, 0].max() * px_per_pt)) + 1
    y0 = int(np.floor(origin_px[1] - points[:, 1].max() * px_per_pt)) - 1
    y1 = int(np.ceil(origin_px[1] - points[:, 1].min() * px_per_pt)) + 1
    h, w = canvas.shape
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    mask = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    scaled = [
        np.stack(
            [
                (origin_px[0] - x0 + np.asarray(p)[:, 0] * px_per_pt) * s,
                (origin_px[1] - y0 - np.asarray(p)[:, 1] * px_per_pt) * s,
            ],
            axis=1,
        )
        .round()
        .astype(np.int32)
        for p in polygons
    ]
    cv2.fillPoly(mask, scaled, 255, lineType=cv2.LINE_8)
    coverage = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    coverage = coverage[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32) / 255.0
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    canvas[cy0:cy1, cx0:cx1] = np.round(region * (1 - coverage) + ink * coverage).astype(np.uint8)
