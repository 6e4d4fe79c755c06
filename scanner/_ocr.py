"""Our OCR-B line recogniser: find the 18-digit line in a frame, rectify it, match templates.

1. Locate: binarise a half-size copy with a local-mean threshold (uneven light), take connected
   components of character height, chain neighbours whose boxes overlap vertically and sit a
   character gap apart, and keep chains whose minimum-area rectangle is as long as 18 OCR-B
   digits are (about 16 digit heights). Blur that merges digits does not matter: a merged run
   is one long component, and the rectangle is the same.
2. Rectify: warp the rectangle from the full-size frame into a canonical strip where digits
   are 24 px tall. The digit height comes from the rectangle's length minus its height, which
   cancels the growth that blur adds to both.
3. Read: normalised cross-correlation of the strip with the digit templates (sharp and two
   blurred versions, from ``scanner/data/ocrb_digits.npz``); fit the start and the pitch of
   18 equally spaced cells to the best scores; classify each cell with a small position slack.
4. Refuse: a digit whose best score is weak or whose runner-up is close, or ink where the
   quiet zone before the first or after the last digit should be. Nothing is guessed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from io import BytesIO

import cv2
import numpy as np
import numpy.typing as npt

DIGITS = 18
DIGIT_HEIGHT = 24  # canonical strip: digit ink height in px
MARGIN_Y = 5  # vertical slack above and below the ink, px
MARGIN_X = 30  # room before the first and after the last cell, px
BLURS = (0.0, 0.8, 1.4, 2.0, 2.7)  # template blur sigmas, canonical px
COARSE_BLUR = 2  # the blur the cell search uses; the reading picks the strip's own
SLACK_X = 3  # a cell may sit this many px off the fitted pitch (perspective, print)
MIN_SCORE = 0.55  # a cell's best correlation must reach this
MIN_MARGIN = 0.05  # and beat the runner-up by this share of the two templates' distance
CELL_SPREAD = 0.2  # and be at most this much below the line's median cell
QUIET_MAX = 0.45  # correlation allowed in the cell before the first / after the last digit
MIN_OBJECTIVE = 0.45  # a mean cell score below this is not a line of OCR-B digits

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class _Templates:
    stack: F32  # (len(BLURS), 10, h, w) as drawn (ink = 1)
    matrix: F32  # (h * w, len(BLURS) * 10): zero-mean, unit-norm columns
    pitch: float  # canonical px between cell centres
    height: int
    width: int


@functools.cache
def _templates() -> _Templates:
    data = resources.files("scanner").joinpath("data/ocrb_digits.npz").read_bytes()
    with np.load(BytesIO(data)) as npz:
        cells = npz["cells"].astype(np.float32) / 255.0
        source_height = float(npz["digit_height_px"])
        source_pitch = float(npz["pitch_px"])
        ink_top = float(npz["ink_top_px"])
    k = DIGIT_HEIGHT / source_height
    width = round(source_pitch * k)
    top = round(ink_top * k - 2)  # keep 2 px of paper above and below the ink
    height = DIGIT_HEIGHT + 4
    stack = np.zeros((len(BLURS), 10, height, width), np.float32)
    for b, sigma in enumerate(BLURS):
        for d, cell in enumerate(cells):
            size = (width, round(cell.shape[0] * k))
            small = cv2.resize(cell, size, interpolation=cv2.INTER_AREA)[top : top + height]
            if sigma:
                small = cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
            stack[b, d] = small
    flat = stack.reshape(len(BLURS) * 10, -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    return _Templates(stack, np.ascontiguousarray(flat.T), source_pitch * k, height, width)


@dataclass(frozen=True)
class _LineBox:
    centre: tuple[float, float]
    along: tuple[float, float]  # unit vector along the line, left to right
    length: float
    height: float


def _find_lines(grey: U8, limit: int = 3) -> list[_LineBox]:
    """Candidate line rectangles in full-frame pixels, best first."""
    small = cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    binary = cv2.adaptiveThreshold(
        small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 25, 12
    )
    _count, labels_any, stats_any, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    labels = np.asarray(labels_any, np.int32)
    stats = np.asarray(stats_any, np.int32)
    x, y, w, h, area = (stats[1:, i].astype(np.float32) for i in range(5))
    keep = (h >= 5) & (h <= 45) & (w <= 25 * h) & (area >= 12) & (area <= 0.95 * w * h)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return []
    x, y, w, h = x[idx], y[idx], w[idx], h[idx]
    hmin = np.minimum(h[:, None], h[None, :])
    ratio = np.maximum(h[:, None], h[None, :]) / hmin
    overlap = np.minimum(y[:, None] + h[:, None], y[None, :] + h[None, :]) - np.maximum(
        y[:, None], y[None, :]
    )
    gap = x[None, :] - (x[:, None] + w[:, None])
    linked = (ratio <= 1.5) & (overlap >= 0.5 * hmin) & (gap >= -0.35 * hmin) & (gap <= 1.3 * hmin)
    groups = _components_of(linked)
    boxes: list[tuple[float, _LineBox]] = []
    for members in groups:
        # 18 digits are about 16 heights wide however they are split or merged.
        if w[members].sum() < 8 * np.median(h[members]):
            continue
        box = _group_box(labels, idx[members] + 1, stats[idx[members] + 1])
        if box is None:
            continue
        aspect = box.length / box.height
        boxes.append((abs(aspect - 15.0) - 0.2 * min(len(members), 18), box))
    boxes.sort(key=lambda item: item[0])
    return [
        _LineBox((b.centre[0] * 2, b.centre[1] * 2), b.along, b.length * 2, b.height * 2)
        for _, b in boxes[:limit]
    ]


def _components_of(linked: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.intp]]:
    """Connected groups of a symmetric-ised adjacency matrix (union-find over the links)."""
    n = linked.shape[0]
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for i, j in zip(*np.nonzero(linked), strict=True):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)])
    return [np.flatnonzero(roots == r) for r in np.unique(roots)]


def _group_box(
    labels: npt.NDArray[np.int32], members: npt.NDArray[np.intp], stats: npt.NDArray[np.int32]
) -> _LineBox | None:
    x0, y0 = stats[:, 0].min(), stats[:, 1].min()
    x1 = (stats[:, 0] + stats[:, 2]).max()
    y1 = (stats[:, 1] + stats[:, 3]).max()
    # A line is about 16 character heights long, whatever its angle.
    if np.hypot(x1 - x0, y1 - y0) < 9 * np.median(stats[:, 3]) or x1 - x0 < 30:
        return None
    window = labels[y0:y1, x0:x1]
    mask = (
        np.isin(window, members).astype(np.uint8)
        if len(members) > 1
        else ((window == members[0]).astype(np.uint8))
    )
    points = np.asarray(cv2.findNonZero(mask), np.float32).reshape(-1, 2)
    points += np.array([x0, y0], np.float32)
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(points)
    if rw < rh:
        rw, rh, angle = rh, rw, angle + 90.0
    if rh < 4:
        return None
    aspect = rw / rh
    if not 10.0 <= aspect <= 22.0:
        return None
    theta = np.deg2rad(angle)
    along = (float(np.cos(theta)), float(np.sin(theta)))
    if along[0] < 0:
        along = (-along[0], -along[1])
    if abs(along[1]) > 0.7:  # steeper than about 45 degrees: not a line we can read upright
        return None
    return _LineBox((float(cx), float(cy)), along, float(rw), float(rh))


def _rectify(grey: U8, box: _LineBox, scale: float, shift: float = 0.0) -> F32:
    """The strip around ``box``: ``scale`` source px per canonical px, ink bright."""
    t = _templates()
    width = round(DIGITS * t.pitch + 2 * MARGIN_X)
    height = t.height + 2 * MARGIN_Y
    ux, uy = box.along
    vx, vy = -uy, ux  # down the page
    # Canonical (X, Y) -> source: centre + u*(X - W/2 + shift)*s + v*(Y - H/2)*s
    matrix = np.array(
        [
            [
                ux * scale,
                vx * scale,
                box.centre[0] - (ux * (width / 2 - shift) + vx * height / 2) * scale,
            ],
            [
                uy * scale,
                vy * scale,
                box.centre[1] - (uy * (width / 2 - shift) + vy * height / 2) * scale,
            ],
        ],
        np.float32,
    )
    strip = cv2.warpAffine(
        grey,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.asarray(255.0 - strip.astype(np.float32), np.float32)


@functools.cache
def _template_distances() -> F32:
    """(blurs, 10, 10): Euclidean distance between the unit-norm templates of two digits."""
    t = _templates()
    unit = t.matrix.T.reshape(len(BLURS), 10, -1)
    dots = np.einsum("bij,bkj->bik", unit, unit)
    distances = np.sqrt(np.maximum(2.0 - 2.0 * dots, 0.0))
    return np.asarray(np.maximum(distances, 1e-3), np.float32)


def _coarse_scores(strip: F32) -> tuple[F32, npt.NDArray[np.intp]]:
    """(10, columns) each digit's correlation at each x, best over the y slack, at one blur;
    and the y offset where the best digit fits at each x."""
    t = _templates()
    responses = np.stack(
        [cv2.matchTemplate(strip, tpl, cv2.TM_CCOEFF_NORMED) for tpl in t.stack[COARSE_BLUR]]
    )  # (10, rows, columns)
    rows = responses.max(axis=0).argmax(axis=0)
    return np.asarray(responses.max(axis=1), np.float32), rows


def _fit_cells(scores: F32, pitch: float) -> tuple[float, float, float]:
    """(start, pitch, objective): 18 equally spaced cells that best fit the best-digit scores."""
    best = scores.max(axis=0)
    dilated = cv2.dilate(best[None, :], np.ones((1, 2 * SLACK_X - 1), np.uint8))[0]
    columns = dilated.shape[0]
    top = (-np.inf, 0.0, pitch)
    steps = np.arange(DIGITS)
    for p in np.arange(pitch * 0.88, pitch * 1.12, 0.25):
        last = columns - 1 - (DIGITS - 1) * p
        if last <= 0:
            continue
        starts = np.arange(0, last)
        cells = np.rint(starts[:, None] + steps[None, :] * p).astype(np.intp)
        totals = dilated[cells].sum(axis=1)
        i = int(np.argmax(totals))
        if totals[i] > top[0]:
            top = (float(totals[i]), float(starts[i]), float(p))
    return top[1], top[2], top[0] / DIGITS


def _bend_cells(scores: F32, start: float, pitch: float) -> npt.NDArray[np.float64]:
    """Left edges of the 18 cells, bent from the straight fit by a quadratic in the cell
    index: under perspective the pitch shrinks along the line. Each cell's best column
    within a few px of the current guess pulls the curve, twice (a wide and a narrow pass)."""
    best = scores.max(axis=0)
    k = np.arange(DIGITS)
    positions = np.asarray(start + k * pitch, np.float64)
    for reach in (5, 3):
        guess = np.rint(positions).astype(np.intp)
        offsets = np.arange(-reach, reach + 1)
        columns = np.clip(guess[:, None] + offsets[None, :], 0, best.shape[0] - 1)
        local = best[columns]
        found = guess + offsets[np.argmax(local, axis=1)]
        weights = np.maximum(local.max(axis=1), 0.05)
        positions = np.asarray(np.polyval(np.polyfit(k, found, 2, w=weights), k), np.float64)
    return np.asarray(positions, np.float64)


def _cell_scores(strip: F32, lefts: npt.NDArray[np.intp], best_rows: npt.NDArray[np.intp]) -> F32:
    """(cells, 2 * SLACK_X + 1, blurs, 10): normalised correlation of every template with
    every cell at every x offset (best of 5 rows around the coarse fit), one matrix product."""
    t = _templates()
    windows = np.lib.stride_tricks.sliding_window_view(strip, (t.height, t.width))
    offsets = np.arange(-SLACK_X, SLACK_X + 1)
    xs = np.clip(lefts[:, None] + offsets[None, :], 0, windows.shape[1] - 1)
    ys = np.clip(best_rows[lefts][:, None] + np.arange(-2, 3)[None, :], 0, windows.shape[0] - 1)
    patches = windows[ys[:, :, None], xs[:, None, :]].reshape(-1, t.height * t.width)
    # The templates have zero mean, so only the patches' norms about their means are needed.
    centred_sq = (patches * patches).sum(axis=1) - patches.sum(axis=1) ** 2 / patches.shape[1]
    norms = np.sqrt(np.maximum(centred_sq, 1e-6))
    scores = (patches @ t.matrix) / norms[:, None]
    scores = scores.reshape(DIGITS, 5, offsets.size, len(BLURS), 10)
    return np.asarray(scores.max(axis=1), np.float32)


def _quiet(coarse: F32, column: float) -> bool:
    """No digit-like ink where the cell before the first / after the last digit would be."""
    lo, hi = max(round(column) - 2, 0), min(round(column) + 3, coarse.shape[1])
    return lo >= hi or float(coarse[:, lo:hi].max()) <= QUIET_MAX


def _classify(
    strip: F32, coarse: F32, rows: npt.NDArray[np.intp], start: float, pitch: float
) -> tuple[str, float] | None:
    """Each cell's digit, or None when any cell is unclear or a quiet zone holds ink."""
    positions = _bend_cells(coarse, start, pitch)
    first_pitch, last_pitch = positions[1] - positions[0], positions[-1] - positions[-2]
    if not (
        _quiet(coarse, positions[0] - first_pitch) and _quiet(coarse, positions[-1] + last_pitch)
    ):
        return None
    k = np.arange(DIGITS)
    lefts = np.clip(np.rint(positions).astype(np.intp), 0, coarse.shape[1] - 1)
    cells = _cell_scores(strip, lefts, rows)  # (18, offsets, blurs, 10)
    # The whole strip went through one lens: read it with the blur that fits it best.
    blur = int(np.argmax(cells.max(axis=(1, 3)).sum(axis=0)))
    per_offset = cells[:, :, blur, :]  # (18, offsets, 10)
    # Where each cell fits best, smoothed by a quadratic in k (perspective bends the pitch).
    best_offset = per_offset.max(axis=2).argmax(axis=1) - SLACK_X
    weights = per_offset.max(axis=(1, 2))
    curve = np.polyval(np.polyfit(k, best_offset, 2, w=np.maximum(weights, 0.05)), k)
    centre = np.clip(np.rint(curve).astype(np.intp) + SLACK_X, 1, 2 * SLACK_X - 1)
    near = np.stack([per_offset[i, centre[i] - 1 : centre[i] + 2].max(axis=0) for i in k])
    order = np.argsort(near, axis=1)
    top = near[k, order[:, -1]]
    second = near[k, order[:, -2]]
    # Margins are judged against how different the two digits' templates are: 3 and 5 blurred
    # differ in few pixels, so a small margin between them is as clear as a large one between
    # 1 and 0 (both are noise projected on the templates' difference).
    spread = _template_distances()[blur, order[:, -1], order[:, -2]]
    margin = (top - second) / spread
    # Every cell must read about as well as the line as a whole: a cell that fits far worse
    # than its neighbours is misplaced or damaged, and its best digit is a guess.
    floor = max(MIN_SCORE, float(np.median(top)) - CELL_SPREAD)
    if float(top.min()) < floor or float(margin.min()) < MIN_MARGIN:
        return None
    confidence = np.minimum(1.0, margin / (4 * MIN_MARGIN)) * np.minimum(1.0, top / 0.8)
    return "".join(str(int(d)) for d in order[:, -1]), float(confidence.min())


def _read_box(grey: U8, box: _LineBox) -> tuple[str, float] | None:
    t = _templates()
    # Digit height from length minus height: blur grows both alike, and the difference holds
    # about 17 pitches less one glyph's height (the line is 17 pitches + one glyph wide).
    span_units = (DIGITS - 1) * t.pitch / DIGIT_HEIGHT + 0.6 - 1.0
    digit_height = max((box.length - box.height) / span_units, 4.0)
    scale = digit_height / DIGIT_HEIGHT
    for upside_down in (False, True):
        step_scale = scale
        for attempt in range(2):
            strip = _rectify(grey, box, step_scale)
            if upside_down:
                strip = np.ascontiguousarray(strip[::-1, ::-1])
            coarse, rows = _coarse_scores(strip)
            start, pitch, objective = _fit_cells(coarse, t.pitch)
            if attempt or abs(pitch / t.pitch - 1) < 0.03:
                break
            step_scale *= pitch / t.pitch  # the first guess of the size was off: warp again
        if objective < MIN_OBJECTIVE:
            continue
        read = _classify(strip, coarse, rows, start, pitch)
        if read is not None:
            return read
    return None


def read_lines(grey: U8) -> Iterator[tuple[str, float]]:
    """Candidate 18-digit reads in the frame with their confidence, most likely line first."""
    for box in _find_lines(grey):
        read = _read_box(grey, box)
        if read is not None:
            yield read
