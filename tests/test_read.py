"""POST /read: a written number read digit by digit, with the same uploads, limits and errors as /predict."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app import predict
from app.segmentation import MAX_DIGITS
from tests.conftest import TEST_DATA, multipart_body, number_pixels, png_bytes
from training.number_styles import STYLES, render_numbers

NUMBER = [0, 1, 2, 3, 4]  # MNIST test digits 7, 2, 1, 0, 4


def dashed_margin() -> np.ndarray:
    """A sheet whose only ink is a margin line that ruled lines have broken into dashes."""
    page = np.full((640, 400), 255, dtype=np.uint8)
    for top in range(100, 560, 36):
        cv2.line(page, (200, top), (201, top + 22), 90, 5)
    return page


def test_a_number_is_read_left_to_right_with_boxes(client, mnist):
    pixels, boxes = number_pixels(mnist.x_test[NUMBER], gap=10)
    body, content_type = multipart_body([("file", "number.png", png_bytes(pixels), "image/png")])
    response = client.post("/read", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["number"] == "".join(str(label) for label in mnist.y_test[NUMBER])
    assert set(answer) == {"number", "digits", "model"} and set(answer["model"]) == {"name", "version"}
    for digit, (x, y, width, height) in zip(answer["digits"], boxes, strict=True):
        assert set(digit) == {"digit", "confidence", "is_digit", "probabilities", "box"}
        assert digit["is_digit"] and digit["confidence"] == pytest.approx(max(digit["probabilities"]))
        assert sum(digit["probabilities"]) == pytest.approx(1.0)
        found_x, found_y, found_width, found_height = digit["box"]
        assert abs(found_x - x) <= 8 and abs(found_y - y) <= 8 and abs(found_width - width) <= 12 and abs(found_height - height) <= 12


def test_a_raw_body_and_a_single_digit(client, mnist):
    pixels, _ = number_pixels(mnist.x_test[[0]])
    response = client.post("/read", content=png_bytes(pixels), headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json()["number"] == str(mnist.y_test[0]) and len(response.json()["digits"]) == 1


def test_a_digit_in_a_row_of_printed_boxes_is_one_digit(client):
    # Hairline box sides beside a slanted 1: the sides are printing, not four more 1s.
    files = {"file": ("box.png", (TEST_DATA / "one-in-a-form-box.png").read_bytes(), "image/png")}
    response = client.post("/read", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["number"] == "1"


def test_touching_digits_are_cut_apart(client, mnist):
    pixels, _ = number_pixels(mnist.x_test[[1, 3]], gap=-8)  # a 2 and a 0 whose strokes touch
    response = client.post("/read", content=png_bytes(pixels), headers={"content-type": "image/png"})
    assert response.json()["number"] == "20"


def test_touching_digits_tucked_under_each_other_are_cut_apart(client, mnist):
    # A 0 and a 5 written so close that their columns overlap: no dip in the ink marks where they meet.
    pixels, _ = number_pixels(mnist.x_test[[3, 8]], gap=-12)
    response = client.post("/read", content=png_bytes(pixels), headers={"content-type": "image/png"})
    assert response.json()["number"] == "05"


@pytest.mark.parametrize(
    ("make_body", "status", "reason", "words"),
    [
        (lambda mnist: png_bytes(np.full((120, 360), 255, dtype=np.uint8)), 422, "blank", "No digit found"),
        (lambda mnist: png_bytes(number_pixels(mnist.x_test[: MAX_DIGITS + 1], scale=2)[0]), 422, "too_many_digits", f"at most {MAX_DIGITS} digits"),
        (lambda mnist: png_bytes(dashed_margin()), 422, "not_a_digit", "printed lines, not digits"),
        (lambda mnist: b"not an image at all", 415, None, "not a supported image"),
        (lambda mnist: b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400, None, "corrupt"),
    ],
    ids=["blank", "seventeen digits", "only a dashed margin", "not an image", "corrupt png"],
)
def test_what_cannot_be_read_gets_a_sentence(client, mnist, make_body, status, reason, words):
    response = client.post("/read", content=make_body(mnist), headers={"content-type": "image/png"})
    assert response.status_code == status
    assert words in response.json()["detail"] and response.json().get("reason") == reason


def test_ink_too_wide_for_a_digit_that_no_cut_divides_gets_an_answer(client, mnist):
    # A small 4 on tilted ruled paper beside a long smear that no digit-wide cuts divide (the 46th
    # "single" fixture of seed 0): the smear once had no reading at all, and the answer was a 500.
    # Since the lines' tilt is measured on their hairlines, their leftover dashes read as too many
    # digits: a wrong answer, but one with a sentence.
    *_, image = render_numbers(mnist.x_test, mnist.y_test, 46, seed=0, styles={"single": STYLES["single"]})
    response = client.post("/read", content=image.data, headers={"content-type": "image/jpeg"})
    assert response.status_code in (200, 422), response.text
    answer = response.json()
    assert "number" in answer or (answer["reason"] in ("blank", "too_many_digits") and answer["detail"].endswith("."))


def test_read_is_documented_and_counted(client, mnist):
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/read"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("NumberReading")
    client.post("/read", content=png_bytes(number_pixels(mnist.x_test[:2])[0]), headers={"content-type": "image/png"})
    assert 'route="/read",status="200"' in client.get("/metrics").text


def test_the_command_line_reads_numbers(tmp_path, mnist, capsys, shipped_model_path):
    image = tmp_path / "number.png"
    image.write_bytes(png_bytes(number_pixels(mnist.x_test[NUMBER])[0]))
    blank = tmp_path / "blank.png"
    blank.write_bytes(png_bytes(np.full((60, 200), 255, dtype=np.uint8)))
    status = predict.main([str(image), str(blank), "--number", "--json", "--model", str(shipped_model_path)])
    captured = capsys.readouterr()
    assert status == 1
    [answer] = [json.loads(line) for line in captured.out.splitlines()]
    assert answer["file"] == str(image) and answer["number"] == "72104" and len(answer["digits"]) == 5
    assert f"{blank}: error: No digit found" in captured.err


HOSTILE = sorted((TEST_DATA / "hostile").iterdir())


@pytest.mark.parametrize("path", HOSTILE, ids=[path.name for path in HOSTILE])
def test_hostile_uploads_get_the_answers_predict_gives(client, path):
    files = {"file": (path.name, path.read_bytes(), "application/octet-stream")}
    predicted, read = client.post("/predict", files=files), client.post("/read", files=files)
    assert read.status_code < 500, read.text
    if predicted.status_code in (400, 413, 415):
        # Decoding and limits are shared: the same refusal, word for word.
        assert (read.status_code, read.json()["detail"]) == (predicted.status_code, predicted.json()["detail"])


def test_a_long_thin_strip_keeps_its_digits_legible(client, mnist):
    pixels, _ = number_pixels(mnist.x_test[NUMBER], gap=10, scale=2)
    strip = np.full((pixels.shape[0], 3000), 255, dtype=np.uint8)
    strip[:, 1000 : 1000 + pixels.shape[1]] = pixels
    response = client.post("/read", content=png_bytes(strip), headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json()["number"] == "72104"


def test_a_decimal_point_and_a_dash_are_left_out(client, mnist):
    pixels, boxes = number_pixels(mnist.x_test[[0, 1]], gap=30)
    marked = pixels.copy()
    between = (boxes[0][0] + boxes[0][2] + boxes[1][0]) // 2
    baseline = boxes[0][1] + boxes[0][3]
    cv2.circle(marked, (between, baseline - 6), 7, 0, -1)  # a decimal point on the line
    cv2.line(marked, (boxes[1][0] + boxes[1][2] + 30, baseline - 40), (boxes[1][0] + boxes[1][2] + 70, baseline - 40), 0, 8)  # a dash after
    response = client.post("/read", content=png_bytes(marked), headers={"content-type": "image/png"})
    assert response.json()["number"] == "72"
    assert [digit["box"][0] for digit in response.json()["digits"]] == pytest.approx([box[0] for box in boxes], abs=8)
