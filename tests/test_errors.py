"""app/errors.py: every domain error has its status and a sentence, and says what it means once."""

from __future__ import annotations

import pytest

from app import errors
from app.preprocess import CorruptImage, EmptyImage, ImageTooLarge, NoDigitFound, PreprocessError, UnsupportedImage
from tests.messages import BLANK


def subclasses(base: type) -> set[type]:
    found = set()
    for kind in base.__subclasses__():
        found |= {kind, *subclasses(kind)}
    return found


def test_every_domain_error_has_a_status_of_its_own():
    assert subclasses(errors.RequestError) | subclasses(PreprocessError) <= set(errors.STATUS)


@pytest.mark.parametrize(
    "error, status",
    [
        (EmptyImage("the upload is empty"), 400),
        (UnsupportedImage("not an image"), 415),
        (CorruptImage("truncated"), 400),
        (ImageTooLarge("the image has 30,000,000 pixels; the limit is 25,000,000"), 413),
        (NoDigitFound("the image is blank or has too little contrast"), 422),
        (errors.FormError("Send one image."), 422),
        (errors.UnknownModel("No model named 'x'."), 404),
        (errors.TooManyInstances("too many instances"), 413),
        (errors.ExplanationsUnavailable("Explanations are unavailable."), 503),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_status_of_each_error(error, status):
    assert errors.error_answer(error)[0] == status


def test_a_blank_image_says_no_digit_was_found_once():
    status, sentence = errors.error_answer(NoDigitFound("the image is blank or has too little contrast"))
    assert status == 422
    assert sentence == BLANK
    assert sentence.lower().count("no digit found") == 1
