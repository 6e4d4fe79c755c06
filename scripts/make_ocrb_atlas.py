#!/usr/bin/env python3
"""Make the committed OCR-B data from the public-domain OCR-B font (Debian ``fonts-ocr-b``).

    apt-get install -y fonts-ocr-b
    .venv/bin/pip install fonttools
    .venv/bin/python scripts/make_ocrb_atlas.py [--font /usr/share/fonts/opentype/ocr-b/OCRB.otf]

Writes two files, so that nothing needs the system font (or fontTools) at run time:

``certs/data/ocrb_atlas.json``
    Vector outlines of the glyphs coupons print (digits, capitals, a little punctuation), in
    font units with curves flattened to polygons, plus each glyph's advance. ``certs.ocrb``
    fills them at any DPI for PNG coupons; a PDF renderer can draw the same polygons as paths.

``scanner/data/ocrb_digits.npz``
    The recogniser's templates: each digit 0-9 rasterised from those outlines into a fixed
    cell (anti-aliased, ink = 1.0). ``scanner`` may import nothing internal (ARCHITECTURE.md),
    so it cannot read the certs atlas; it gets its own derived file, made here by the same
    script from the same outlines, so the two always agree.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np
from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FONT = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")
CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<-/.:() "
CURVE_TOLERANCE = 2.0  # font units (1/1000 em): a 9 pt glyph at 1200 dpi is 150 px per em

# The recogniser's cell: digits are rasterised so that the ink of '0' is DIGIT_HEIGHT px tall.
DIGIT_HEIGHT = 48
SUPERSAMPLE = 8


class _FlatteningPen(BasePen):  # type: ignore[misc]  # fontTools is untyped
    """Collect contours as polygons, flattening quadratic and cubic curves."""

    def __init__(self, glyph_set: object) -> None:
        super().__init__(glyph_set)
        self.contours: list[list[tuple[float, float]]] = []
        self._current: list[tuple[float, float]] = []

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self._current = [pt]

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self._current.append(pt)

    def _curveToOne(self, p1, p2, p3) -> None:  # type: ignore[no-untyped-def]
        p0 = self._current[-1]
        length = math.dist(p0, p1) + math.dist(p1, p2) + math.dist(p2, p3)
        steps = max(2, math.ceil(math.sqrt(length / CURVE_TOLERANCE)))
        for i in range(1, steps + 1):
            t = i / steps
            u = 1 - t
            x = u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0]
            y = u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1]
            self._current.append((x, y))

    def _qCurveToOne(self, p1, p2) -> None:  # type: ignore[no-untyped-def]
        p0 = self._current[-1]
        c1 = (p0[0] + 2 / 3 * (p1[0] - p0[0]), p0[1] + 2 / 3 * (p1[1] - p0[1]))
        c2 = (p2[0] + 2 / 3 * (p1[0] - p2[0]), p2[1] + 2 / 3 * (p1[1] - p2[1]))
        self._curveToOne(c1, c2, p2)

    def _closePath(self) -> None:
        if len(self._current) > 2:
            self.contours.append(self._current)
        self._current = []

    _endPath = _closePath


def extract(font_path: Path) -> dict[str, object]:
    font = TTFont(str(font_path))
    cmap = font.getBestCmap()
    glyph_set = font.getGlyphSet()
    glyphs: dict[str, object] = {}
    for char in CHARACTERS:
        name = cmap[ord(char)]
        pen = _FlatteningPen(glyph_set)
        glyph_set[name].draw(pen)
        glyphs[char] = {
            "advance": glyph_set[name].width,
            "contours": [[[round(x), round(y)] for x, y in c] for c in pen.contours],
        }
    return {
        "font": "OCR-B (public domain; Debian package fonts-ocr-b, " + font_path.name + ")",
        "units_per_em": font["head"].unitsPerEm,
        "ascent": font["hhea"].ascent,
        "descent": font["hhea"].descent,
        "glyphs": glyphs,
    }


def digit_templates(atlas: dict[str, object]) -> tuple[np.ndarray, dict[str, float]]:
    """Rasterise 0-9 into one cell geometry: the advance wide, centred on the digits' ink box."""
    glyphs = atlas["glyphs"]
    assert isinstance(glyphs, dict)
    ys = [p[1] for d in "0123456789" for c in glyphs[d]["contours"] for p in c]
    ink_bottom, ink_top = min(ys), max(ys)
    advance = glyphs["0"]["advance"]
    scale = DIGIT_HEIGHT / (ink_top - ink_bottom)  # px per font unit
    margin = 0.25 * (ink_top - ink_bottom)  # white above and below the ink
    width = round(advance * scale)
    height = round((ink_top - ink_bottom + 2 * margin) * scale)
    s = SUPERSAMPLE
    cells = np.zeros((10, height, width), np.float32)
    for d in range(10):
        canvas = np.zeros((height * s, width * s), np.uint8)
        polys = [
            np.array(
                [[x * scale * s, (ink_top + margin - y) * scale * s] for x, y in c], np.float32
            )
            .round()
            .astype(np.int32)
            for c in glyphs[str(d)]["contours"]
        ]
        # Even-odd filling of all contours at once keeps the counters of 0, 4, 6, 8, 9 open.
        cv2.fillPoly(canvas, polys, 255, lineType=cv2.LINE_8)
        cells[d] = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA) / 255.0
    geometry = {
        "digit_height_px": float(DIGIT_HEIGHT),
        "pitch_px": advance * scale,
        "ink_top_px": margin * scale,
        "advance_over_height": advance / (ink_top - ink_bottom),
    }
    return cells, geometry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--font", type=Path, default=DEFAULT_FONT)
    args = parser.parse_args()
    if not args.font.is_file():
        raise SystemExit(f"{args.font} not found: apt-get install -y fonts-ocr-b")
    atlas = extract(args.font)
    out = ROOT / "certs" / "data" / "ocrb_atlas.json"
    out.write_text(json.dumps(atlas, separators=(",", ":"), sort_keys=True) + "\n")
    cells, geometry = digit_templates(atlas)
    templates = ROOT / "scanner" / "data" / "ocrb_digits.npz"
    arrays = {k: np.float64(v) for k, v in geometry.items()}
    arrays["cells"] = (cells * 255).round().astype(np.uint8)
    np.savez_compressed(templates, allow_pickle=False, **arrays)
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")
    print(f"wrote {templates.relative_to(ROOT)} ({templates.stat().st_size} bytes) {geometry}")


if __name__ == "__main__":
    main()
