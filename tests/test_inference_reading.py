"""How /read chooses between the ways of reading a piece of ink: as one digit, or cut into touching digits."""

from __future__ import annotations

import numpy as np

from app.inference import _best_reading
from app.segmentation import DigitImage, InkGroup


def piece(x: int) -> DigitImage:
    return DigitImage(np.zeros((28, 28), np.float32), (x, 0, 10, 20))


def answer(digit: int, confidence: float, margin: float = -4.0) -> tuple[np.ndarray, float]:
    """Probabilities with `confidence` on `digit`, and a not-a-digit margin (above 0: not a digit)."""
    row = np.full(10, (1 - confidence) / 9)
    row[digit] = confidence
    return row, margin


def test_the_whole_wins_unless_the_cut_pieces_are_surer():
    whole, left, right = piece(0), piece(0), piece(10)
    group = InkGroup(((whole,),), {(0, 1): left, (1, 2): right}, last_cut=2)
    sure_cut = {id(whole): answer(0, 0.6), id(left): answer(2, 0.99), id(right): answer(0, 0.99)}
    assert _best_reading(group, sure_cut) == (left, right)
    sure_whole = {id(whole): answer(0, 0.99), id(left): answer(1, 0.9), id(right): answer(1, 0.9)}
    assert _best_reading(group, sure_whole) == (whole,)


def test_a_piece_the_features_call_no_digit_costs_its_path():
    whole, left, right = piece(0), piece(0), piece(10)
    group = InkGroup(((whole,),), {(0, 1): left, (1, 2): right}, last_cut=2)
    answers = {id(whole): answer(8, 0.8), id(left): answer(2, 0.99), id(right): answer(0, 0.99, margin=3.0)}
    assert _best_reading(group, answers) == (whole,)


def test_a_whole_less_like_a_digit_than_its_pieces_loses_though_surer():
    # Two touching digits read as one: confident, and still on the digit side of the threshold.
    whole, left, right = piece(0), piece(0), piece(10)
    group = InkGroup(((whole,),), {(0, 1): left, (1, 2): right}, last_cut=2)
    answers = {id(whole): answer(9, 0.97, margin=-0.5), id(left): answer(9, 0.95), id(right): answer(1, 0.95)}
    assert _best_reading(group, answers) == (left, right)


def test_the_best_path_through_several_cuts_is_found():
    pieces = {(0, 1): piece(0), (1, 2): piece(10), (0, 2): piece(0), (2, 3): piece(20), (1, 3): piece(10)}
    group = InkGroup((), pieces, last_cut=3)
    confidences = {(0, 1): 0.9, (1, 2): 0.3, (0, 2): 0.5, (2, 3): 0.95, (1, 3): 0.98}
    answers = {id(pieces[key]): answer(1, confidence) for key, confidence in confidences.items()}
    assert _best_reading(group, answers) == (pieces[(0, 1)], pieces[(1, 3)])
