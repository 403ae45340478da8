"""The browser page, driven by Playwright in a real Chromium against the real server process."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TEST_DATA, draw, open_page, save_screenshot

pytestmark = pytest.mark.browser

DIGIT_PNG = TEST_DATA / "digit.png"
UPLOAD_LIMIT = 5 * 1024 * 1024
EXIF_ORIENTATION = 0x0112


@pytest.fixture
def page(browser, server_url):
    """A fresh page that records console errors and every request it makes."""
    page = open_page(browser, server_url, {"width": 1280, "height": 900})
    yield page
    page.context.close()


def expect_digit(page, digit: int):
    from playwright.sync_api import expect

    expect(page.locator("#digit")).to_have_text(str(digit), timeout=15000)


def test_upload_a_digit_shows_the_answer_and_ten_bars(page, server_url):
    page.set_input_files("#file", str(DIGIT_PNG))
    expect_digit(page, 7)
    assert page.locator("#bars li").count() == 10
    widths = [page.locator(f"#bars li:nth-child({i + 1}) .bar span").evaluate("e => e.style.width") for i in range(10)]
    assert widths[7] not in ("0%", "") and float(widths[7].rstrip("%")) > 90
    assert page.locator("#seen").is_visible()
    assert "reads a 7" in page.locator("#summary").inner_text()
    assert not page.console_errors
    assert all(url.startswith(server_url) or url.startswith(("data:", "blob:")) for url in page.requests), page.requests


def test_draw_a_one_and_a_seven(page):
    draw(page, [[(140, 40), (140, 240)]])
    expect_digit(page, 1)
    page.click("#clear")
    from playwright.sync_api import expect

    expect(page.locator("#digit")).to_have_text("?")
    draw(page, [[(60, 50), (220, 50), (120, 250)]])
    expect_digit(page, 7)
    assert not page.console_errors


def test_text_file_gives_an_inline_error_and_the_page_keeps_working(page, tmp_path):
    from playwright.sync_api import expect

    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a digit")
    page.set_input_files("#file", str(notes))
    expect(page.locator("#error")).to_be_visible(timeout=15000)
    assert "not a supported image" in page.locator("#error").inner_text()
    page.set_input_files("#file", str(DIGIT_PNG))
    expect_digit(page, 7)
    expect(page.locator("#error")).to_be_hidden()


def test_screenshots_at_desktop_and_phone_width(browser, server_url):
    for name, viewport in {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}.items():
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        errors = []
        page.on("console", lambda message, errors=errors: message.type == "error" and errors.append(message.text))
        page.goto(server_url + "/")
        page.set_input_files("#file", str(DIGIT_PNG))
        expect_digit(page, 7)
        path = save_screenshot(page, f"page-{name}")
        assert path.stat().st_size > 10_000
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"the page scrolls sideways at {name} width"
        assert not errors
        context.close()


def test_heatmap_toggle_shows_the_overlay(page):
    from playwright.sync_api import expect

    page.set_input_files("#file", str(DIGIT_PNG))
    expect_digit(page, 7)
    before = page.locator("#seen").get_attribute("src")
    page.check("#heatmap-toggle")
    expect(page.locator("#seen")).to_have_attribute("alt", "Heatmap over the 28 by 28 input: brighter, warmer pixels drove the prediction more")
    after = page.locator("#seen").get_attribute("src")
    assert after.startswith("data:image/png;base64,") and after != before
    page.uncheck("#heatmap-toggle")
    expect(page.locator("#seen")).to_have_attribute("src", before)
    assert not page.console_errors


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory) -> Path:
    """A 12-megapixel, ~8 MB JPEG of the 7 on noisy paper, stored on its side with EXIF orientation 6, as phones save them."""
    ink = np.asarray(Image.open(DIGIT_PNG).convert("L").resize((2400, 2400), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    paper = np.ones((4000, 3000), dtype=np.float32)
    paper[800:3200, 300:2700] = ink
    tint = (40 + 170 * paper)[..., None] * np.array([1.0, 0.97, 0.9], dtype=np.float32)
    # Sensor noise, the one thing that makes a phone's JPEG of a plain page weigh megabytes.
    noise = np.tile(np.random.default_rng(0).normal(0, 18, (500, 500, 3)).astype(np.float32), (8, 6, 1))
    upright = Image.fromarray(np.clip(tint + noise, 0, 255).astype(np.uint8), "RGB")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path_factory.mktemp("photo") / "IMG_0001.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=95, exif=exif)
    assert path.stat().st_size > 7 * 1024 * 1024
    return path


def predict_requests(page) -> list:
    """Collects the page's /predict requests from now on, and keeps the file each one sends for `sent_file`."""
    # Chromium does not report a request body built from a File, so the page's fetch is wrapped to keep it.
    page.evaluate("""() => {
        window.sentFiles = [];
        const send = window.fetch;
        window.fetch = (url, options) => {
            if (options?.body instanceof FormData) window.sentFiles.push(options.body.get("file"));
            return send(url, options);
        };
    }""")
    sent = []
    page.on("request", lambda request: "/predict" in request.url and sent.append(request))
    return sent


def sent_file(page) -> bytes:
    """The bytes of the file in the page's latest request since `predict_requests`."""
    data_url = page.evaluate("""() => new Promise((resolve) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.readAsDataURL(window.sentFiles.at(-1));
    })""")
    return base64.b64decode(data_url.split(",", 1)[1])


def test_phone_photo_is_shrunk_upright_and_read(page, phone_photo):
    from playwright.sync_api import expect

    sent = predict_requests(page)
    page.set_input_files("#file", str(phone_photo))
    expect_digit(page, 7)
    expect(page.locator("#error")).to_be_hidden()
    assert not page.console_errors
    assert len(sent) == 1
    # Playwright reports a zero body size for a body built from a File; the header holds the real one.
    assert int(sent[0].all_headers()["content-length"]) < UPLOAD_LIMIT
    shrunk = Image.open(io.BytesIO(sent_file(page)))
    # Portrait: the EXIF orientation was applied before shrinking, and the copy needs none.
    assert (shrunk.format, shrunk.size) == ("JPEG", (1200, 1600))
    assert shrunk.getexif().get(EXIF_ORIENTATION, 1) == 1


def test_large_transparent_drawing_stays_png(page, tmp_path):
    strokes = Image.open(DIGIT_PNG).convert("L").resize((2000, 2000), Image.Resampling.BICUBIC)
    drawing = Image.new("RGBA", strokes.size)
    drawing.putalpha(strokes.point(lambda level: 255 - level))
    path = tmp_path / "drawing.png"
    drawing.save(path)
    predict_requests(page)
    page.set_input_files("#file", str(path))
    expect_digit(page, 7)
    shrunk = Image.open(io.BytesIO(sent_file(page)))
    assert (shrunk.format, shrunk.mode, shrunk.size) == ("PNG", "RGBA", (1600, 1600))


def test_small_image_is_sent_as_it_is(page):
    predict_requests(page)
    page.set_input_files("#file", str(DIGIT_PNG))
    expect_digit(page, 7)
    assert sent_file(page) == DIGIT_PNG.read_bytes()
