"""The command-line predictor on a folder of digit PNGs, with one bad file among good ones."""

from __future__ import annotations

import json

from app import predict
from tests.conftest import TEST_DATA, digit_png


def test_predicts_each_file_and_reports_the_bad_one(tmp_path, mnist, capsys, shipped_model_path):
    paths = []
    for index in range(5):
        path = tmp_path / f"{index}.png"
        path.write_bytes(digit_png(mnist.x_test[index]))
        paths.append(path)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    paths.insert(2, broken)
    status = predict.main([*map(str, paths), "--json", "--model", str(shipped_model_path)])
    captured = capsys.readouterr()
    assert status == 1
    answers = [json.loads(line) for line in captured.out.splitlines()]
    assert [answer["digit"] for answer in answers] == [int(label) for label in mnist.y_test[:5]]
    assert set(answers[0]) == {"file", "digit", "confidence", "top3", "is_digit"} and len(answers[0]["top3"]) == 3
    assert captured.err.strip() == (f"{broken}: error: The upload is not a supported image: send a PNG, JPEG, GIF, BMP, WebP or TIFF file.")


def test_plain_output_and_missing_file(tmp_path, mnist, capsys, shipped_model_path):
    good = tmp_path / "seven.png"
    good.write_bytes(digit_png(mnist.x_test[0]))
    status = predict.main([str(good), str(tmp_path / "missing.png"), "--model", str(shipped_model_path)])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.startswith(f"{good}: {int(mnist.y_test[0])} (")
    assert "missing.png: error: cannot read the file" in captured.err


def test_a_number_gets_a_best_guess_and_a_pointer_to_number_reading(capsys, shipped_model_path):
    status = predict.main([str(TEST_DATA / "number.png"), "--model", str(shipped_model_path)])
    assert status == 0
    assert "several digits (read them with --number); best guess" in capsys.readouterr().out


def test_steps_picture_is_written_beside_the_image(tmp_path, mnist, capsys, shipped_model_path):
    from PIL import Image

    image = tmp_path / "digit.png"
    image.write_bytes(digit_png(mnist.x_test[0]))
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    status = predict.main([str(image), str(blank), "--steps", "--model", str(shipped_model_path)])
    captured = capsys.readouterr()
    assert status == 1
    steps = Image.open(tmp_path / "digit.png.steps.png")
    # One panel per stage, side by side: input, surface, ink, lines removed, digit, 28x28.
    assert steps.width > 5 * steps.height
    assert f"stages written to {tmp_path / 'digit.png.steps.png'}" in captured.err
    # A refused image still shows the stages it went through.
    assert (tmp_path / "blank.png.steps.png").is_file()
