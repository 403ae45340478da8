"""Numbers cut into digits: grouping by overlap, marks dropped, touching digits cut, boxes in the upload's pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from app.preprocess import NoDigitFound
from app.segmentation import MAX_DIGITS, TooManyDigits, number_parts
from tests.conftest import encode, number_pixels, png_bytes


def single_readings(groups) -> list:
    return [group.readings[0][0] for group in groups]


def assert_boxes_match(found, expected, tolerance):
    for (x, y, width, height), (ex, ey, ewidth, eheight) in zip(found, expected, strict=True):
        assert abs(x - ex) <= tolerance and abs(y - ey) <= tolerance, (found, expected)
        assert abs(x + width - ex - ewidth) <= tolerance and abs(y + height - ey - eheight) <= tolerance, (found, expected)


def test_separate_digits_are_found_left_to_right_with_their_boxes(mnist):
    pixels, boxes = number_pixels(mnist.x_test[:4], gap=10)
    groups = number_parts(png_bytes(pixels))
    assert len(groups) == 4
    digits = single_readings(groups)
    assert all(digit.image.shape == (28, 28) and digit.image.max() == pytest.approx(1.0) for digit in digits)
    # The upload is 4x the drawing: a box is right within a drawn pixel or two.
    assert_boxes_match([digit.box for digit in digits], boxes, tolerance=8)


def test_boxes_are_in_the_upright_upload_when_exif_rotates_it(mnist):
    pixels, boxes = number_pixels(mnist.x_test[:3], gap=10)
    stored = Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Rotate 90 degrees clockwise to show it upright.
    groups = number_parts(encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert_boxes_match([digit.box for digit in single_readings(groups)], boxes, tolerance=8)


def test_boxes_follow_a_sheet_photographed_on_a_desk(mnist):
    pixels, boxes = number_pixels(mnist.x_test[:3], gap=10, scale=3)
    desk = np.full((pixels.shape[0] + 160, pixels.shape[1] + 200), 60, dtype=np.uint8)
    desk[80 : 80 + pixels.shape[0], 100 : 100 + pixels.shape[1]] = pixels
    groups = number_parts(png_bytes(desk))
    assert_boxes_match([digit.box for digit in single_readings(groups)], [(x + 100, y + 80, w, h) for x, y, w, h in boxes], tolerance=8)


def test_dot_dash_and_specks_are_not_digits(mnist):
    pixels, _ = number_pixels(mnist.x_test[:2], gap=24)
    marked = pixels.copy()
    middle = marked.shape[1] // 2
    cv2.circle(marked, (middle, 150), 5, 0, -1)  # a decimal point between the digits
    cv2.line(marked, (10, 60), (30, 60), 0, 4)  # a dash before them
    marked[20, 200] = marked[140, 300] = 0  # scanner specks
    assert len(number_parts(png_bytes(marked))) == 2


def test_a_margin_line_broken_into_dashes_is_not_a_column_of_ones(mnist):
    # A faint margin line survives the ruled lines' removal only between them, as dashes.
    pixels, _ = number_pixels(mnist.x_test[:3], gap=10)
    page = np.full((640, pixels.shape[1] + 120), 255, dtype=np.uint8)
    page[220 : 220 + pixels.shape[0], 120:] = pixels
    for top in range(100, 560, 36):
        cv2.line(page, (40, top), (41, top + 22), 90, 5)
    assert len(number_parts(png_bytes(page))) == 3


def test_a_sliver_of_desk_on_the_image_edge_is_not_a_1(mnist):
    # The photo's crop leaves a strip of the desk beside the sheet, as tall as the digits.
    pixels, _ = number_pixels(mnist.x_test[:3], gap=10)
    pixels = pixels.copy()
    pixels[60:160, :10] = 60
    assert len(number_parts(png_bytes(pixels))) == 3


def test_a_margin_line_taller_than_the_digits_is_not_where_the_number_is(mnist):
    # The margin stops short of the photo's edges, so it is not removed as a printed line; alone
    # at its height, it is not taken for the number's first digit either.
    pixels, _ = number_pixels(mnist.x_test[:3], gap=10)
    page = np.full((600, pixels.shape[1] + 120), 255, dtype=np.uint8)
    page[200 : 200 + pixels.shape[0], 120:] = pixels
    cv2.line(page, (40, 90), (42, 510), 70, 6)
    groups = number_parts(png_bytes(page))
    assert len(groups) == 3 and all(group.readings[0][0].box[0] > 120 for group in groups)


def test_dashes_left_of_faint_ruled_lines_beside_a_number_are_not_a_digit(mnist):
    # Ruled lines too faint to be found as lines leave dashes, one above another, beside the digits.
    pixels, _ = number_pixels(mnist.x_test[:3], gap=10)
    page = np.full((pixels.shape[0], pixels.shape[1] + 160), 255, dtype=np.uint8)
    page[:, : pixels.shape[1]] = pixels
    for top in (70, 100, 130):
        cv2.line(page, (pixels.shape[1] + 10, top), (pixels.shape[1] + 50, top), 60, 5)
    assert len(number_parts(png_bytes(page))) == 3


def test_the_parts_of_a_broken_digit_stay_one_digit():
    # A 5 written in two strokes: its bar does not touch its body.
    five = np.full((240, 200), 255, dtype=np.uint8)
    cv2.line(five, (70, 40), (140, 40), 0, 10)
    cv2.line(five, (70, 52), (66, 110), 0, 10)
    cv2.ellipse(five, (100, 150), (45, 45), 0, -120, 150, 0, 10)
    groups = number_parts(png_bytes(five))
    assert len(groups) == 1 and len(groups[0].readings[0]) == 1


def test_touching_digits_come_with_the_cuts_that_separate_them(mnist):
    pixels, _ = number_pixels(mnist.x_test[[1, 3]], gap=-8)  # a 2 and a 0 that touch
    [group] = number_parts(png_bytes(pixels))
    halves = [
        (group.pieces[(0, cut)], group.pieces[(cut, group.last_cut)])
        for cut in range(1, group.last_cut)
        if (0, cut) in group.pieces and (cut, group.last_cut) in group.pieces
    ]
    assert halves, "no cut leaves the touching pair as two pieces"
    for first, second in halves:
        assert first.box[0] < second.box[0] and first.image.shape == second.image.shape == (28, 28)


def test_a_flat_tail_cut_off_a_digit_is_no_piece_to_read():
    """A 2 whose tail runs far right: cut off, the tail alone reads as a confident 1 on canvas photos."""
    two = np.full((260, 480), 255, np.uint8)
    cv2.ellipse(two, (150, 90), (50, 45), 0, 180, 360, 0, 12, cv2.LINE_AA)
    cv2.ellipse(two, (150, 90), (50, 45), 0, 0, 40, 0, 12, cv2.LINE_AA)
    cv2.line(two, (188, 118), (95, 200), 0, 12, cv2.LINE_AA)
    cv2.line(two, (95, 200), (330, 205), 0, 12, cv2.LINE_AA)
    [group] = number_parts(png_bytes(two))
    tallest = max(digit.box[3] for digit in group.images())
    assert group.pieces and all(piece.box[3] >= tallest / 2 for piece in group.pieces.values())


def test_a_blank_image_holds_no_digit():
    with pytest.raises(NoDigitFound):
        number_parts(png_bytes(np.full((100, 300), 255, dtype=np.uint8)))


def test_more_digits_than_one_reading_takes_are_refused(mnist):
    pixels, _ = number_pixels(mnist.x_test[: MAX_DIGITS + 1], gap=10, scale=2)
    with pytest.raises(TooManyDigits, match=str(MAX_DIGITS + 1)):
        number_parts(png_bytes(pixels))
