"""bench/mnist_c.py: each MNIST-C corruption keeps the MNIST format, is seeded, and does what its name says."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from scipy import ndimage

from bench import mnist_c
from bench.mnist_c import CORRUPTIONS

MNIST_C_NAMES = [
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "shear",
    "scale",
    "rotate",
    "brightness",
    "translate",
    "stripe",
    "fog",
    "spatter",
    "dotted_line",
    "zigzag",
    "canny_edges",
]


def synthetic_zero() -> np.ndarray:
    """A white-on-black '0' of MNIST's size and style: a thick, soft-edged ring in the middle 20x20 box."""
    image = np.zeros((28, 28), dtype=np.uint8)
    cv2.ellipse(image, (14, 14), (5, 8), 0, 0, 360, 255, thickness=3, lineType=cv2.LINE_AA)
    return image


def corrupt(name: str, image: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """`image` (the synthetic zero by default) under the corruption `name`, drawn from `seed`."""
    return CORRUPTIONS[name](synthetic_zero() if image is None else image, np.random.default_rng(seed))


def ink(image: np.ndarray) -> float:
    return float(image.astype(np.float64).sum())


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    return np.array(ndimage.center_of_mass(image.astype(np.float64)))


def test_the_fifteen_corruptions_of_mnist_c_in_the_paper_order():
    assert list(CORRUPTIONS) == MNIST_C_NAMES


@pytest.mark.parametrize("name", MNIST_C_NAMES)
def test_corruption_returns_an_mnist_image_and_changes_it(name):
    image = synthetic_zero()
    corrupted = corrupt(name, image)
    assert corrupted.shape == (28, 28) and corrupted.dtype == np.uint8
    assert not np.array_equal(corrupted, image)


@pytest.mark.parametrize("name", MNIST_C_NAMES)
def test_corruption_is_deterministic_for_a_seed(name):
    assert np.array_equal(corrupt(name, seed=7), corrupt(name, seed=7))
    assert np.array_equal(mnist_c.corrupt_all(np.stack([synthetic_zero()] * 3), name), mnist_c.corrupt_all(np.stack([synthetic_zero()] * 3), name))


@pytest.mark.parametrize("name", ["shot_noise", "impulse_noise", "glass_blur", "motion_blur", "fog", "spatter", "dotted_line", "zigzag"])
def test_random_corruptions_differ_between_seeds(name):
    assert not all(np.array_equal(corrupt(name, seed=0), corrupt(name, seed=seed)) for seed in range(1, 4))


def test_corrupt_all_leaves_the_input_alone_and_draws_afresh_for_each_image():
    images = np.stack([synthetic_zero()] * 4)
    before = images.copy()
    corrupted = mnist_c.corrupt_all(images, "impulse_noise")
    assert np.array_equal(images, before)
    assert corrupted.shape == (4, 28, 28) and not np.array_equal(corrupted[0], corrupted[1])


def test_shot_noise_counts_three_photons_per_white_pixel():
    corrupted = corrupt("shot_noise", np.full((28, 28), 128, dtype=np.uint8))
    assert set(np.unique(corrupted)) <= {0, 85, 170, 255}


def test_impulse_noise_sets_about_17_percent_of_pixels_to_black_or_white():
    grey = np.full((28, 28), 128, dtype=np.uint8)
    corrupted = corrupt("impulse_noise", grey)
    changed = corrupted != grey
    assert 0.12 < changed.mean() < 0.22
    assert set(np.unique(corrupted[changed])) <= {0, 255}


@pytest.mark.parametrize("name", ["glass_blur", "motion_blur"])
def test_blurs_spread_the_ink_and_keep_most_of_it(name):
    image = synthetic_zero()
    corrupted = corrupt(name, image)
    assert np.count_nonzero(corrupted) > np.count_nonzero(image)
    assert 0.85 < ink(corrupted) / ink(image) < 1.1


def test_motion_blur_kernel_is_a_normalised_one_sided_trail_along_its_angle():
    kernel = mnist_c.motion_blur_kernel(radius=10, sigma=3, angle_degrees=0)
    centre = kernel.shape[0] // 2
    assert kernel.sum() == pytest.approx(1.0)
    rows, columns = np.nonzero(kernel)
    assert set(rows) == {centre} and columns.min() == centre and columns.max() == centre + 20
    diagonal = mnist_c.motion_blur_kernel(radius=10, sigma=3, angle_degrees=45)
    rows, columns = np.nonzero(diagonal)
    assert np.array_equal(rows - centre, columns - centre)


@pytest.mark.parametrize("name", ["shear", "rotate", "translate"])
def test_shear_rotate_and_translate_move_the_ink_but_keep_it(name):
    image = synthetic_zero()
    corrupted = corrupt(name, image)
    assert 0.9 < ink(corrupted) / ink(image) < 1.1


def test_translate_shifts_by_three_pixels_along_each_axis():
    image = synthetic_zero()
    shift = centre_of_mass(corrupt("translate", image)) - centre_of_mass(image)
    assert np.allclose(np.abs(shift), 3, atol=0.1)


def test_rotate_turns_the_ring_about_the_centre():
    image = synthetic_zero()
    corrupted = corrupt("rotate", image)
    assert np.allclose(centre_of_mass(corrupted), centre_of_mass(image), atol=0.3)
    # An upright ellipse, turned by 0.4 rad, is no longer symmetric about its vertical axis.
    assert np.abs(corrupted.astype(int) - corrupted[:, ::-1]).sum() > 0.3 * ink(image)


def test_scale_shrinks_the_digit_to_seven_tenths_about_the_centre():
    image = synthetic_zero()
    corrupted = corrupt("scale", image)
    assert 0.4 < ink(corrupted) / ink(image) < 0.6  # the area goes as 0.7 squared
    rows = np.flatnonzero(corrupted.max(axis=1) > 64)
    original_rows = np.flatnonzero(image.max(axis=1) > 64)
    assert rows.size == pytest.approx(0.7 * original_rows.size, abs=2)
    assert np.allclose(centre_of_mass(corrupted), centre_of_mass(image), atol=0.3)


def test_brightness_adds_half_the_range_everywhere():
    image = synthetic_zero()
    corrupted = corrupt("brightness", image)
    assert np.all(corrupted[image == 0] == 128)
    assert np.all(np.abs(corrupted.astype(int) - np.minimum(image.astype(int) + 128, 255)) <= 1)
    assert corrupted.mean() > image.mean() + 90


def test_stripe_inverts_the_outer_seven_columns_and_undoes_itself():
    image = synthetic_zero()
    corrupted = corrupt("stripe", image)
    assert np.array_equal(corrupted[:, 7:21], image[:, 7:21])
    assert np.all(corrupted[:, :7] == 255 - image[:, :7]) and np.all(corrupted[:, 21:] == 255 - image[:, 21:])
    assert np.array_equal(corrupt("stripe", corrupted), image)


def test_fog_lays_a_cloud_over_the_background_and_lowers_the_contrast():
    image = synthetic_zero()
    corrupted = corrupt("fog", image)
    assert corrupted[image == 0].mean() > 30
    assert int(corrupted.max()) - int(corrupted.min()) < int(image.max()) - int(image.min())


def test_spatter_drops_grey_mud_blobs():
    blank = np.zeros((28, 28), dtype=np.uint8)
    spattered = [corrupt("spatter", blank, seed) for seed in range(5)]
    mud = np.concatenate([image[image > 0] for image in spattered])
    assert mud.size > 0
    # Mud is 63/255 grey at the blobs' blurred weights of 0.8 to 1.
    assert mud.min() >= 50 and mud.max() <= 63


@pytest.mark.parametrize("name", ["stripe", "dotted_line", "zigzag"])
def test_lines_and_stripes_add_lit_pixels(name):
    image = synthetic_zero()
    corrupted = corrupt(name, image)
    assert np.count_nonzero(corrupted > 127) > np.count_nonzero(image > 127)


@pytest.mark.parametrize("name", ["dotted_line", "zigzag"])
def test_lines_only_add_ink(name):
    image = synthetic_zero()
    assert np.all(corrupt(name, image) >= image)


def test_dotted_line_has_dashes_two_columns_long_across_the_image():
    for seed in range(5):
        line = corrupt("dotted_line", np.zeros((28, 28), dtype=np.uint8), seed)
        lit_columns = set(np.flatnonzero(line.max(axis=0) > 0))
        assert lit_columns == {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26}


def test_zigzag_runs_from_column_two_to_twenty_five_and_goes_up_and_down():
    line = corrupt("zigzag", np.zeros((28, 28), dtype=np.uint8))
    lit_columns = np.flatnonzero(line.max(axis=0) > 0)
    assert lit_columns.min() == 2 and lit_columns.max() <= 25
    peak_rows = line.argmax(axis=0)[lit_columns]
    assert np.count_nonzero(np.diff(np.sign(np.diff(peak_rows)))) >= 4


def test_line_layer_fades_with_the_distance_to_the_line():
    layer = mnist_c.line_layer((0, 10), (27, 10))
    assert np.all(layer[10, :27] == 1.0) and np.all(layer[:, 27] == 0.0)
    assert layer[9, 5] == pytest.approx(1 + np.log(1 - 1 / 2.3))
    assert np.all(layer[12, :] == 0.0)


def test_canny_edges_outline_the_strokes():
    image = synthetic_zero()
    edges = corrupt("canny_edges", image)
    assert set(np.unique(edges)) == {0, 255}
    stroke = image > 127
    inner_stroke = ndimage.binary_erosion(stroke)
    outline = edges == 255
    assert np.count_nonzero(outline) < 2 * np.count_nonzero(stroke)
    # The edges run along the stroke's borders, not through its middle.
    assert np.count_nonzero(outline & inner_stroke) < 0.2 * np.count_nonzero(inner_stroke)
    assert np.count_nonzero(outline & ndimage.binary_dilation(stroke, iterations=2)) > 0.9 * np.count_nonzero(outline)


def test_evaluate_measures_clean_and_every_corruption_both_ways(client, capsys):
    images = np.stack([synthetic_zero(), np.fliplr(synthetic_zero())])
    classifier = client.app_state["predictor"].classifier
    results = mnist_c.evaluate(client, classifier, images, np.zeros(2, dtype=np.int64))
    assert list(results) == ["clean", *MNIST_C_NAMES]
    for result in results.values():
        assert 0 <= result["predict"] <= 1 and 0 <= result["model"] <= 1 and 0 <= result["no_digit_found"] <= 2
    # A blank white upload has no digit in it: /predict refuses each one, and that counts as wrong.
    assert mnist_c.accuracy_through_predict(client, np.full((2, 28, 28), 255, np.uint8), np.zeros(2, np.int64)) == (0.0, 2)
    assert "[15/15] canny_edges" in capsys.readouterr().err


def test_table_and_plot_show_every_corruption_and_the_mean(tmp_path):
    results = {name: {"predict": 0.5, "model": 0.25, "no_digit_found": 1} for name in ["clean", *MNIST_C_NAMES]}
    mean = mnist_c.summarise(results)
    assert mean == {"predict": 0.5, "model": 0.25}
    text = mnist_c.table(results, mean)
    assert "| canny_edges | 50.0% | 25.0% | +25.0 | 1 |" in text and "| **mean of 15** | **50.0%** | **25.0%** | +25.0 | |" in text
    mnist_c.plot(results, mean, tmp_path / "plot.png")
    mnist_c.contact_sheet(synthetic_zero(), tmp_path / "sheet.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == (tmp_path / "sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_command_writes_the_table_json_plot_and_sheet(tmp_path, capsys):
    digits = np.stack([synthetic_zero(), np.fliplr(synthetic_zero()), synthetic_zero()])
    data = tmp_path / "mnist.npz"
    np.savez(data, x_train=digits, y_train=np.zeros(3, np.uint8), x_test=digits, y_test=np.zeros(3, np.uint8))
    out, plot, sheet = tmp_path / "mnist_c.json", tmp_path / "mnist_c.png", tmp_path / "sheet.png"
    assert mnist_c.main(["--data", str(data), "--count", "2", "--out", str(out), "--plot", str(plot), "--sheet", str(sheet)]) == 0
    report = json.loads(out.read_text())
    assert report["count"] == 2 and list(report["results"]) == ["clean", *MNIST_C_NAMES]
    assert report["mean"]["model"] == pytest.approx(np.mean([report["results"][name]["model"] for name in MNIST_C_NAMES]))
    assert plot.is_file() and sheet.is_file()
    printed = capsys.readouterr()
    assert "| canny_edges |" in printed.out and "mean of 15" in printed.out
