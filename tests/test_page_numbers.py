"""The page's number mode, driven by Playwright in a real Chromium against the real server and its `/read`."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import draw, encode, number_pixels, open_page, save_screenshot

pytestmark = pytest.mark.browser

WIDE_CANVAS = (840, 280)
EXIF_ORIENTATION = 0x0112
# Three digits drawn well apart on the wide canvas, in its coordinates: a 1, a 7 and a 0.
ONE_SEVEN_ZERO = [
    [(160, 40), (160, 250)],
    [(340, 50), (500, 50), (400, 250)],
    [(700, 40), (650, 70), (630, 140), (650, 210), (700, 240), (750, 210), (770, 140), (750, 70), (700, 40)],
]
DRAWN_CENTRES = (160, 420, 700)
BOX_LABEL = re.compile(r"^\d · \d{1,3}%$")


@pytest.fixture
def page(browser, server_url):
    """A fresh desktop-sized page."""
    page = open_page(browser, server_url, {"width": 1280, "height": 900})
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def number_digits(mnist) -> list[np.ndarray]:
    """The first MNIST test images of 2, 0, 2 and 6."""
    return [mnist.x_test[mnist.y_test == digit][0] for digit in (2, 0, 2, 6)]


def switch_mode(page, name: str):
    """Choose the mode with its radio button, and wait until the canvas has that mode's shape."""
    from playwright.sync_api import expect

    page.get_by_role("radio", name=name).check()
    expect(page.locator("#canvas")).to_have_attribute("width", "840" if name == "Number" else "280")


def expect_number(page, number: str):
    from playwright.sync_api import expect

    expect(page.locator("#number")).to_have_text(number, timeout=15000)


def box_centres(page, layer: str, over: str) -> list[tuple[float, float]]:
    """The centre of each box drawn in `layer`, as shares of the width and height of the element `over`."""
    image = page.locator(over).bounding_box()
    places = [box.bounding_box() for box in page.locator(f"{layer} .box").all()]
    return [(centre(place, "x", "width", image), centre(place, "y", "height", image)) for place in places]


def centre(place: dict, side: str, length: str, image: dict) -> float:
    return (place[side] + place[length] / 2 - image[side]) / image[length]


def test_keyboard_switches_to_a_wide_canvas_that_reads_three_drawn_digits(page, server_url):
    from playwright.sync_api import expect

    page.get_by_role("radio", name="Digit").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("radio", name="Number")).to_be_checked()
    expect(page.locator("#canvas")).to_have_attribute("width", "840")
    shown = page.locator("#canvas").bounding_box()
    assert shown["width"] == pytest.approx(3 * shown["height"], rel=0.03)
    expect(page.locator("#bars")).to_be_hidden()

    draw(page, ONE_SEVEN_ZERO, WIDE_CANVAS[0])
    expect_number(page, "170")
    expect(page.locator("#canvas-boxes")).to_have_attribute("data-boxes", "3")
    labels = page.locator("#canvas-boxes .box-label").all_inner_texts()
    assert [label[0] for label in labels] == ["1", "7", "0"]
    assert all(BOX_LABEL.match(label) for label in labels), labels
    # Each box lies on its own drawn digit.
    for (x, y), drawn_x in zip(box_centres(page, "#canvas-boxes", "#canvas"), DRAWN_CENTRES, strict=True):
        assert x == pytest.approx(drawn_x / WIDE_CANVAS[0], abs=0.04)
        assert y == pytest.approx(0.5, abs=0.1)
    assert "/read" in " ".join(page.requests)

    page.click("#clear")
    expect(page.locator("#number")).to_have_text("?")
    expect(page.locator("#canvas-boxes")).to_have_attribute("data-boxes", "0")
    assert page.locator("#canvas-boxes .box").count() == 0
    ink = page.evaluate("() => document.getElementById('canvas').getContext('2d').getImageData(0, 0, 840, 280).data.some((level) => level < 255)")
    assert not ink
    assert not page.console_errors
    assert all(url.startswith(server_url) or url.startswith(("data:", "blob:")) for url in page.requests), page.requests


@pytest.mark.parametrize(
    ("scale", "exif_orientation"),
    [(4, None), (16, None), (4, 6)],
    ids=["sent-as-it-is", "shrunk-before-sending", "stored-on-its-side"],
)
def test_upload_shows_the_number_and_a_box_on_each_digit(page, number_digits, tmp_path, scale, exif_orientation):
    pixels, boxes = number_pixels(np.stack(number_digits), scale=scale)
    upright = Image.fromarray(pixels)
    height, width = pixels.shape
    path = tmp_path / "number.png"
    if exif_orientation:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = exif_orientation  # "rotate 90 degrees clockwise to display"
        path.write_bytes(encode(upright.transpose(Image.Transpose.ROTATE_90), exif=exif))
    else:
        path.write_bytes(encode(upright))
    switch_mode(page, "Number")
    page.set_input_files("#file", str(path))
    expect_number(page, "2026")
    labels = page.locator("#preview-boxes .box-label").all_inner_texts()
    assert [label[0] for label in labels] == list("2026")
    assert page.locator("#preview-boxes").get_attribute("data-boxes") == "4"
    # The boxes, in the pixels of the image sent (shrunk or not), land on the digits of the image shown.
    for (x, y), (left, top, box_width, box_height) in zip(box_centres(page, "#preview-boxes", "#preview"), boxes, strict=True):
        assert x == pytest.approx((left + box_width / 2) / width, abs=0.02)
        assert y == pytest.approx((top + box_height / 2) / height, abs=0.05)
    assert page.locator("#canvas-boxes .box").count() == 0
    assert not page.console_errors


def test_an_image_without_digits_shows_the_servers_sentence_inline(page, server_url, tmp_path):
    from playwright.sync_api import expect

    blank = encode(Image.new("L", (600, 200), 255))
    (tmp_path / "blank.png").write_bytes(blank)
    answer = httpx.post(f"{server_url}/read", files={"file": ("blank.png", blank, "image/png")}, timeout=30)
    assert answer.status_code == 422
    switch_mode(page, "Number")
    page.set_input_files("#file", str(tmp_path / "blank.png"))
    expect(page.locator("#error")).to_have_text(answer.json()["detail"], timeout=15000)
    expect(page.locator("#number")).to_have_text("?")
    assert page.locator("#preview-boxes .box").count() == 0


def test_back_in_digit_mode_the_page_predicts_one_digit(page):
    from playwright.sync_api import expect

    switch_mode(page, "Number")
    draw(page, ONE_SEVEN_ZERO, WIDE_CANVAS[0])
    expect_number(page, "170")
    switch_mode(page, "Digit")
    expect(page.locator("#number")).to_be_hidden()
    expect(page.locator("#digit")).to_have_text("?")
    assert page.locator(".box").count() == 0
    shown = page.locator("#canvas").bounding_box()
    assert shown["width"] == pytest.approx(shown["height"], rel=0.02)

    sent = []
    page.on("request", lambda request: sent.append(request.url))
    draw(page, [[(140, 40), (140, 240)]], 280)
    expect(page.locator("#digit")).to_have_text("1", timeout=15000)
    assert [url.split("?")[0].rsplit("/", 1)[1] for url in sent] == ["predict"]
    expect(page.locator("#bars")).to_be_visible()
    assert not page.console_errors


@pytest.mark.parametrize(("name", "viewport"), [("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})])
def test_number_mode_screenshots(browser, server_url, name, viewport):
    page = open_page(browser, server_url, viewport)
    switch_mode(page, "Number")
    draw(page, ONE_SEVEN_ZERO, WIDE_CANVAS[0])
    expect_number(page, "170")
    path = save_screenshot(page, f"number-{name}")
    assert path.stat().st_size > 10_000
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], f"the page scrolls sideways at {name} width"
    assert not page.console_errors
    page.context.close()
