"""Turn an image of a written number into its digits, each normalised the way `/predict` normalises one.

Pure, like `app/preprocess.py`, whose stages run first: the writing surface, its printed lines
and the ink. Then the strokes are grouped into digits by their horizontal overlap (the two parts
of a 5 or a broken 4 stay together), small marks (dots, commas, dashes) are dropped, and each
digit goes through the same MNIST normalisation as a single upload. A piece of ink too wide for
one digit may be several digits that touch: it comes with the ways it could be cut, and the
classifier's confidence decides between them (`app/inference.py`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage, signal

from app.preprocess import (
    CROP_MARGIN,
    DEFAULT_MAX_PIXELS,
    EDGE_WEIGHT,
    FAINT_REACH,
    Ink,
    NoDigitFound,
    OnlyNoise,
    PreprocessError,
    decode,
    normalise_digit,
    on_writing_surface,
    prepared_scale,
)

MAX_DIGITS = 16
# A number is read at up to this many pixels along its longer side: 16 digits in a row still get
# about 30 pixels each, where one digit's 256 would leave them 16.
NUMBER_WORKING_SIDE = 512
# ... but never fewer than this across: a strip of digits 5000 pixels long and 60 high keeps its height.
NUMBER_SHORT_SIDE = 64
# Strokes belong to one digit when their columns overlap by this share of the narrower one.
SAME_DIGIT_OVERLAP = 0.5
# Ink smaller than this share of the largest stroke's area is a speck.
SPECK_AREA = 0.02
# A group of strokes shorter than this share of the line's digits is a mark (dot, comma, dash).
MARK_HEIGHT = 0.45
# The digits along a line are within these shares of one another's height, their middles drift
# at most this share of it from one to the next, and gaps between them are at most this many heights.
LINE_HEIGHTS, LINE_DRIFT, DIGIT_GAP = (0.4, 1.6), 0.6, 2.5
# The line starts from a piece at least this share of the tallest's height; none is as tall as this share of the image.
SEED_HEIGHT, FULL_HEIGHT = 0.5, 0.8
# A piece of the line lower than this share of its digits' height is a digit's bar or a line's remnant.
FLAT_PIECE = 0.3
# A piece on the image's edge narrower than this share of the digits' height is no digit of the line.
EDGE_SLIVER = 0.25
# A piece this many times taller than wide, alone at its height, is a printed line unless nothing but
# specks (below this share of its ink) is beside it: then it is a lone 1.
LONE_LINE_SHAPE, LONE_LINE_INK = 6, 0.1
# Ink wider than this share of the line's digit height may be touching digits, each about TOUCHING_WIDTH wide.
SPLIT_ASPECT, TOUCHING_WIDTH = 1.0, 0.7
# One digit is between these shares of the line's height wide (a 1, a wide 0); a piece cut off holds
# at least this share of the ink.
NARROWEST_DIGIT, WIDEST_DIGIT, MIN_PIECE_INK = 0.1, 1.6, 0.05
# A piece cut off touching ink is at least this share of its height tall: a 2's long tail is no 1.
SHORTEST_PIECE = 0.5
# Cuts between touching digits start at least this share of the height apart, at most this many per
# piece of ink and per digit it may hold: pieces to classify grow with the square of the cuts.
SEAM_SPACING, MAX_CUTS, CUTS_PER_DIGIT = 0.1, 24, 8
# A cut between touching digits strays at most this share of their height from where it starts;
# each pixel of ink it crosses costs as much as this many of paper, each step sideways this many.
SEAM_REACH, SEAM_INK_COST, SEAM_SIDE_COST = 0.2, 20.0, 0.5
# An upright line broken into at least this many dashes down this share of the image's height is
# printed; a dash is at most this many times the dashes' typical width.
DASHES, DASHED_SPAN, DASH_WIDTH = 5, 0.5, 1.5
# Strokes this close (pixels at the working size) are parts of one digit.
JOIN_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
# Faint ink this close to the strokes bridges their breaks.
BRIDGE_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
# Components at least this share of their group's height may be digits of their own.
TALL_PART = 0.6
# How far around a digit its normalisation looks (share of its size): beyond faint ink's reach and the crop's margin.
WINDOW_REACH = FAINT_REACH + CROP_MARGIN


class TooManyDigits(PreprocessError):
    """The image holds more digits than one reading takes."""


@dataclass(frozen=True)
class DigitImage:
    """One digit as the model sees it, and where it is in the upload: (x, y, width, height) in its pixels."""

    image: np.ndarray
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class InkGroup:
    """One piece of a number's ink and the ways to read it: as one of `readings` (one digit, or digits that overlap
    without touching), or, where digits may touch, as a path of `pieces` from cut 0 to cut `last_cut`.

    `pieces[(first, last)]` is the ink between two cuts, when it could be a digit.
    """

    readings: tuple[tuple[DigitImage, ...], ...]
    pieces: dict[tuple[int, int], DigitImage] = field(default_factory=dict)
    last_cut: int = 0

    def images(self) -> list[DigitImage]:
        """Every digit image that some way of reading the group holds, each once."""
        return [digit for reading in self.readings for digit in reading] + list(self.pieces.values())


def number_parts(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[InkGroup]:
    """Bytes of an uploaded image -> its pieces of ink from left to right, each with its possible readings."""
    decoded = decode(data, max_pixels, NUMBER_WORKING_SIDE, NUMBER_SHORT_SIDE)
    height, width = decoded.pixels.shape
    enlarged = prepared_scale(decoded.pixels.shape)
    to_upload = np.diag([decoded.width / (width * enlarged), decoded.height / (height * enlarged), 1.0])
    upload_size = (decoded.width, decoded.height)

    def digits(ink: Ink) -> list[InkGroup]:
        return _groups(ink, to_upload @ np.linalg.inv(ink.to_surface), upload_size)

    return on_writing_surface(decoded.pixels, digits, row_of_digits=True)


def _groups(ink: Ink, to_upload: np.ndarray, upload_size: tuple[int, int]) -> list[InkGroup]:
    """The digits in `ink`, left to right; `to_upload` maps the ink's pixels to the upload's."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(_joined_strokes(ink), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if count < 2:
        raise NoDigitFound("the image is blank or has too little contrast")
    kept = [index for index in range(1, count) if areas[index - 1] >= SPECK_AREA * areas.max()]
    kept = _without_dashed_lines(stats, kept, ink.strokes.shape[0])
    if not kept:
        raise OnlyNoise("what the image holds are printed lines, not digits")
    line, height = _writing_line(stats, kept, ink.strokes.shape)
    line = _without_stray_flat_pieces(stats, line, height)
    digits = [group for group in _overlapping_columns(stats, line) if _height(stats, group) >= MARK_HEIGHT * height]
    if len(digits) > MAX_DIGITS:
        raise TooManyDigits(f"the image holds at least {len(digits)}")

    def placed(mask: np.ndarray) -> DigitImage | None:
        """The piece of ink in `mask` as the model would see it; None when too faint to normalise."""
        # Normalised within a window around the digit, which holds all it reaches: several times
        # faster than over the whole image, for the same result.
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        reach = 2 + round(WINDOW_REACH * max(rows[-1] - rows[0], cols[-1] - cols[0]))
        window = (slice(max(rows[0] - reach, 0), rows[-1] + reach + 1), slice(max(cols[0] - reach, 0), cols[-1] + reach + 1))
        try:
            digit = normalise_digit(ink.within(window), mask[window])
        except NoDigitFound:
            return None
        return DigitImage(digit, _upload_box(rows, cols, to_upload, upload_size))

    groups = []
    for group in digits:
        mask = np.isin(labels, group) & ink.strokes
        box = _extent(stats, group)
        readings = [] if box[1] - box[0] > WIDEST_DIGIT * height else [(placed(mask),)]
        separate = _separate_digits(stats, group)
        if len(separate) > 1:
            readings.append(tuple(placed(np.isin(labels, part) & ink.strokes) for part in separate))
        # A reading with a piece too faint to normalise is no reading.
        readings = [reading for reading in readings if None not in reading]
        pieces, last_cut = _touching_pieces(mask, box, height, placed) if box[1] - box[0] > SPLIT_ASPECT * height else ({}, 0)
        if not _crossable(pieces, last_cut):
            pieces, last_cut = {}, 0
        # Ink too wide for a digit that no cuts turn into digits is a line or a smear, not writing.
        if readings or pieces:
            groups.append(InkGroup(tuple(readings), pieces, last_cut))
    if not groups:
        raise NoDigitFound("no digit was found along a line of writing")
    return groups


def _joined_strokes(ink: Ink) -> np.ndarray:
    """The strokes with the faint ink bridging their small breaks, and a pixel around, as 0/1: a digit's broken strokes then join.

    Faint pencil breaks into dashes at the stroke level; the dashes of a 0 would otherwise fall
    into two columns, and be read as two digits. Only faint ink near the strokes counts: followed
    further, it runs along the faint edges of printed lines and from one digit to the next.
    """
    near = cv2.dilate(ink.strokes.view(np.uint8), BRIDGE_KERNEL).view(bool)
    # The printed lines removed stay out.
    faint = ink.faint() & ~(ink.candidates & ~ink.strokes)
    return cv2.dilate((ink.strokes | (faint & near)).view(np.uint8), JOIN_KERNEL)


def _writing_line(stats: np.ndarray, kept: list[int], shape: tuple[int, int]) -> tuple[list[int], int]:
    """The components written along the number's line, and the height of its digits.

    The line is the row of components of about one height with the most ink; it is followed
    from one digit to the next, so it may slope, and it ends where a gap is wider than a few
    digits. Sheet edges, margins and frames are far taller or reach the image's edge; specks
    and marks above or below the line are not on it.
    """
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    width, height, area = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    middle = top + height / 2
    on_edge = (left == 0) | (top == 0) | (left + width == shape[1]) | (top + height == shape[0])

    def level_with(seed: int) -> list[int]:
        alike = [index for index in kept if LINE_HEIGHTS[0] * height[seed] <= height[index] <= LINE_HEIGHTS[1] * height[seed]]
        return [index for index in alike if abs(middle[index] - middle[seed]) <= LINE_DRIFT * height[seed]]

    def line_ink(seed: int) -> float:
        return float(area[level_with(seed)].sum()) * (EDGE_WEIGHT if on_edge[seed] else 1.0)

    # The line's first digit is one of the taller pieces: a row of dashes left of a printed line has
    # ink too. Pieces on the image's edge or as tall as the image are frames and margins.
    plausible = [index for index in kept if not on_edge[index] and height[index] <= FULL_HEIGHT * shape[0]] or kept
    # A margin or the sheet's edge is an upright line with no piece of its height beside it. While
    # other ink of some weight is on the image, the line of writing starts among that ink instead.
    lone_lines = [index for index in plausible if height[index] >= LONE_LINE_SHAPE * width[index] and level_with(index) == [index]]
    others = [index for index in plausible if index not in lone_lines]
    if lone_lines and any(area[index] >= LONE_LINE_INK * area[lone_lines].max() for index in others):
        plausible = others
    tallest = max(height[index] for index in plausible)
    seed = max((index for index in plausible if height[index] >= SEED_HEIGHT * tallest), key=line_ink)
    digit_height = int(height[seed])
    on_line = [seed]
    by_position = sorted(kept, key=lambda index: left[index] + width[index] / 2)
    start = by_position.index(seed)
    for direction in (by_position[start + 1 :], by_position[:start][::-1]):
        level, reach = middle[seed], (left[seed], left[seed] + width[seed])
        for index in direction:
            gap = max(left[index] - reach[1], reach[0] - (left[index] + width[index]))
            if gap > DIGIT_GAP * digit_height:
                break
            if height[index] > LINE_HEIGHTS[1] * digit_height or abs(middle[index] - level) > LINE_DRIFT * digit_height:
                continue
            # A sliver on the image's edge beside the number is the sheet's edge or the desk, not a 1.
            if on_edge[index] and width[index] < EDGE_SLIVER * digit_height:
                continue
            on_line.append(index)
            reach = (min(reach[0], left[index]), max(reach[1], left[index] + width[index]))
            if height[index] >= LINE_HEIGHTS[0] * digit_height:
                level = middle[index]
    return on_line, digit_height


def _without_stray_flat_pieces(stats: np.ndarray, line: list[int], height: int) -> list[int]:
    """`line` without the flat pieces that share no column with a taller one: what is left of ruled lines between digits.

    A 5's or a 7's bar stands over its body's columns and stays. A dash of a ruled line beside a
    digit, stacked with the dashes of the lines above and below it, would pass for a digit.
    """
    left, width = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_WIDTH]
    tall = [index for index in line if stats[index, cv2.CC_STAT_HEIGHT] >= FLAT_PIECE * height]
    return [
        index
        for index in line
        if index in tall or any(min(left[index] + width[index], left[other] + width[other]) > max(left[index], left[other]) for other in tall)
    ]


def _without_dashed_lines(stats: np.ndarray, kept: list[int], image_height: int) -> list[int]:
    """`kept` without the remnants of an upright printed line: dashes one above another, on a straight line down much of the image.

    A faint margin line breaks into dashes where it crosses the ruled lines removed; each dash
    is as tall as a digit, and the column of them would be read as 1s. Digits in the same
    columns are wider than the dashes or off their line, and stay.
    """
    left, top, width, height = (stats[:, field] for field in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    dashes: set[int] = set()
    for column in _overlapping_columns(stats, kept):
        narrow = [index for index in column if width[index] <= DASH_WIDTH * np.median(width[column])]
        if len(narrow) < DASHES:
            continue
        centres = np.stack([left[narrow] + width[narrow] / 2, top[narrow] + height[narrow] / 2], axis=1).astype(np.float32)
        # A robust fit: a digit among the dashes does not pull the line off them.
        across, down, x, y = cv2.fitLine(centres, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        on_line = np.abs((centres[:, 0] - x) * down - (centres[:, 1] - y) * across) <= np.median(width[narrow])
        if np.count_nonzero(on_line) >= DASHES and np.ptp(centres[on_line, 1]) >= DASHED_SPAN * image_height:
            dashes.update(np.array(narrow)[on_line].tolist())
    return [index for index in kept if index not in dashes]


def _overlapping_columns(stats: np.ndarray, kept: list[int]) -> list[list[int]]:
    """The components in `kept` grouped by overlapping columns, left to right."""
    columns: list[list[int]] = []
    spans: list[list[int]] = []
    for index in sorted(kept, key=lambda index: stats[index, cv2.CC_STAT_LEFT]):
        left = int(stats[index, cv2.CC_STAT_LEFT])
        right = left + int(stats[index, cv2.CC_STAT_WIDTH])
        if spans:
            overlap = min(right, spans[-1][1]) - max(left, spans[-1][0])
            if overlap >= SAME_DIGIT_OVERLAP * min(right - left, spans[-1][1] - spans[-1][0]):
                columns[-1].append(index)
                spans[-1] = [min(left, spans[-1][0]), max(right, spans[-1][1])]
                continue
        columns.append([index])
        spans.append([left, right])
    return columns


def _separate_digits(stats: np.ndarray, group: list[int]) -> list[list[int]]:
    """The components of `group` as digits of their own: each tall one with the shorter ones nearest it, left to right.

    Digits written close together overlap in their columns without touching: then each is a
    component at least TALL_PART of the group's height.
    """
    height = _height(stats, group)
    tall = [index for index in group if stats[index, cv2.CC_STAT_HEIGHT] >= TALL_PART * height]
    tall.sort(key=lambda index: stats[index, cv2.CC_STAT_LEFT])
    if len(tall) < 2:
        return [group]
    centres = np.array([stats[index, cv2.CC_STAT_LEFT] + stats[index, cv2.CC_STAT_WIDTH] / 2 for index in tall])
    parts = [[index] for index in tall]
    for index in group:
        if index not in tall:
            centre = stats[index, cv2.CC_STAT_LEFT] + stats[index, cv2.CC_STAT_WIDTH] / 2
            parts[int(np.argmin(np.abs(centres - centre)))].append(index)
    return parts


def _extent(stats: np.ndarray, group: list[int]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) of the components in `group`, right and bottom exclusive."""
    left, top = stats[group, cv2.CC_STAT_LEFT], stats[group, cv2.CC_STAT_TOP]
    return int(left.min()), int((left + stats[group, cv2.CC_STAT_WIDTH]).max()), int(top.min()), int((top + stats[group, cv2.CC_STAT_HEIGHT]).max())


def _height(stats: np.ndarray, group: list[int]) -> int:
    _, _, top, bottom = _extent(stats, group)
    return bottom - top


def _touching_pieces(
    mask: np.ndarray, box: tuple[int, int, int, int], height: int, placed: Callable[[np.ndarray], DigitImage | None]
) -> tuple[dict[tuple[int, int], DigitImage], int]:
    """The ink in `mask` (within `box`) cut where touching digits of about `height` may meet: the pieces between
    any two cuts that are a digit wide, keyed by (first cut, last cut), and the number of the last cut (the right edge).

    Each cut is a seam starting at a column with little ink, where an even spacing of digits puts one, or on a grid.
    """
    left, right, top, bottom = box
    ink = mask[top:bottom, left:right]
    width = right - left
    # Where the ink thins between two digits, its column profile dips: the dips, deepest first.
    profile = ndimage.uniform_filter1d(np.count_nonzero(ink, axis=0).astype(np.float64), max(3, round(SEAM_SPACING * height)))
    dips, _ = signal.find_peaks(-profile, distance=max(1, round(SEAM_SPACING * height)))
    expected = max(2, round(width / (TOUCHING_WIDTH * height)))
    # Then where an even spacing of digits puts a cut, then every SEAM_SPACING of the height: digits
    # that overlap or touch along a stroke leave no dip where they meet, and the classifier picks among the cuts.
    evenly = [round(width * share / expected) for share in range(1, expected)]
    grid = np.arange(SEAM_SPACING * height, width, SEAM_SPACING * height).round().astype(int)
    starts: list[int] = []
    for column in [*dips[np.argsort(profile[dips], kind="stable")], *evenly, *grid]:
        if len(starts) >= min(MAX_CUTS, CUTS_PER_DIGIT * expected):
            break
        if min(column, width - column) >= NARROWEST_DIGIT * height and all(abs(int(column) - other) > SEAM_SPACING * height for other in starts):
            starts.append(int(column))
    reach = max(1, round(SEAM_REACH * height))
    # Seams started near each other often settle on the same path: keep one of each.
    seams = sorted({seam.tobytes(): seam for seam in (_seam(ink, start, reach) for start in starts)}.values(), key=np.mean)
    edges = [np.full(bottom - top, -1), *seams, np.full(bottom - top, width - 1)]
    middles = [float(np.mean(edge)) for edge in edges]
    columns = np.arange(width)[np.newaxis, :]
    least_ink = MIN_PIECE_INK * np.count_nonzero(mask)
    pieces = {}
    for first, last in itertools.combinations(range(len(edges)), 2):
        if not NARROWEST_DIGIT * height <= middles[last] - middles[first] <= WIDEST_DIGIT * height:
            continue
        inside = (columns > edges[first][:, np.newaxis]) & (columns <= edges[last][:, np.newaxis])
        piece_ink = ink & inside
        rows = np.flatnonzero(piece_ink.any(axis=1))
        if np.count_nonzero(piece_ink) < least_ink or rows[-1] + 1 - rows[0] < SHORTEST_PIECE * (bottom - top):
            continue
        cut = np.zeros_like(mask)
        cut[top:bottom, left:right] = piece_ink
        if (piece := placed(cut)) is not None:
            pieces[(first, last)] = piece
    return pieces, len(edges) - 1


def _crossable(pieces: dict[tuple[int, int], DigitImage], last_cut: int) -> bool:
    """Whether some path of pieces leads from cut 0 to `last_cut`."""
    reached = {0}
    for first, last in sorted(pieces):
        if first in reached:
            reached.add(last)
    return bool(pieces) and last_cut in reached


def _seam(ink: np.ndarray, start: int, reach: int) -> np.ndarray:
    """For each row, the column where the path crossing the least ink runs, within `reach` of column `start`.

    The path runs from top to bottom a row at a time, moving at most one column sideways per
    row, as seam carving's does; it can slip between digits that overlap without touching,
    where a straight cut would take a piece of one into the other. Written out because neither
    OpenCV nor scikit-image offers a seam constrained to a band.
    """
    low, high = max(start - reach, 0), min(start + reach + 1, ink.shape[1])
    cost = ink[:, low:high].astype(np.float64) * SEAM_INK_COST + 1.0
    total = cost[0].copy()
    came_from = np.zeros(cost.shape, dtype=np.int64)
    columns = np.arange(high - low)
    for row in range(1, len(cost)):
        # Moving sideways costs a little more, so a path through blank paper stays straight.
        options = np.stack([np.r_[np.inf, total[:-1]] + SEAM_SIDE_COST, total, np.r_[total[1:], np.inf] + SEAM_SIDE_COST])
        choice = options.argmin(axis=0)
        came_from[row] = choice - 1
        total = options[choice, columns] + cost[row]
    path = np.empty(len(cost), dtype=np.int64)
    path[-1] = int(total.argmin())
    for row in range(len(cost) - 1, 0, -1):
        path[row - 1] = path[row] + came_from[row, path[row]]
    return low + path


def _upload_box(rows: np.ndarray, cols: np.ndarray, to_upload: np.ndarray, upload_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The bounding box of the ink in `rows` and `cols` (sorted) in the upload's pixels: (x, y, width, height)."""
    corners = np.array([[cols[0], rows[0]], [cols[-1] + 1, rows[0]], [cols[-1] + 1, rows[-1] + 1], [cols[0], rows[-1] + 1]], dtype=np.float64)
    mapped = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), to_upload).reshape(-1, 2)
    width, height = upload_size
    x0, y0 = np.clip(np.floor(mapped.min(axis=0)), 0, [width, height])
    x1, y1 = np.clip(np.ceil(mapped.max(axis=0)), 0, [width, height])
    return int(x0), int(y0), max(int(x1 - x0), 1), max(int(y1 - y0), 1)
