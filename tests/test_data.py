"""MNIST loading: Keras .npz, IDX folders (gzipped or not), and bad inputs with clear errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from training.data import DataError, load_mnist, read_idx, split_validation


def small_arrays(count: int = 12):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, count, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (count // 2, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, count // 2, dtype=np.uint8),
    }


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", size) for size in array.shape) + array.tobytes()


def write_idx_folder(folder, arrays, compress: bool):
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        raw = idx_bytes(arrays[key])
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)


def test_loads_keras_npz(tmp_path):
    arrays = small_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    data = load_mnist(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64


@pytest.mark.parametrize("compress", [True, False], ids=["gzipped", "raw"])
def test_loads_idx_folder_with_the_same_digest_as_npz(tmp_path, compress):
    arrays = small_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx_folder(folder, arrays, compress)
    from_idx, from_npz = load_mnist(folder), load_mnist(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(from_idx.x_test, arrays["x_test"])
    assert from_idx.sha256 == from_npz.sha256


def test_real_mnist_has_the_expected_shapes(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert set(np.unique(mnist.y_test)) == set(range(10))


def _npz_missing_key(path):
    arrays = small_arrays()
    del arrays["y_test"]
    np.savez(path, **arrays)


def _npz_wrong_shape(path):
    arrays = small_arrays()
    arrays["x_train"] = arrays["x_train"].reshape(-1, 784)
    np.savez(path, **arrays)


def _npz_bad_labels(path):
    arrays = small_arrays()
    arrays["y_train"][0] = 11
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda path: path.write_text("not a zip"), "is not a readable .npz file"),
        (lambda path: path.write_bytes(b"PK\x03\x04" + b"\x00" * 40), "is not a readable .npz file"),
        (_npz_missing_key, "lacks y_test"),
        (_npz_wrong_shape, "expected (N, 28, 28)"),
        (_npz_bad_labels, "labels outside 0-9"),
    ],
    ids=["text", "truncated-zip", "missing-key", "wrong-shape", "bad-labels"],
)
def test_bad_npz_files_get_clear_errors(tmp_path, make_file, message):
    path = tmp_path / "bad.npz"
    make_file(path)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mnist(path)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match="not found at .*nowhere.npz"):
        load_mnist(tmp_path / "nowhere.npz")


def test_idx_folder_missing_a_file(tmp_path):
    write_idx_folder(tmp_path, small_arrays(), compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="lacks the IDX file t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x1c\x00\x00\x00\x1c" + b"\x00" * 100, "truncated or damaged"),
        (b"\x12\x34\x56\x78" + b"\x00" * 20, "not an IDX file"),
        (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
        (b"\x00\x00", "too short"),
    ],
    ids=["truncated", "bad-magic", "bad-gzip", "too-short"],
)
def test_bad_idx_files(tmp_path, content, message):
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_idx(path)


def test_validation_split_is_seeded_and_disjoint():
    images = np.arange(100)[:, None, None] * np.ones((1, 28, 28), dtype=np.int64)
    labels = np.arange(100) % 10
    first = split_validation(images, labels, 0.1, seed=3)
    second = split_validation(images, labels, 0.1, seed=3)
    np.testing.assert_array_equal(first[2], second[2])
    assert len(first[2]) == 10 and len(first[0]) == 90
    assert not set(first[0][:, 0, 0]) & set(first[2][:, 0, 0])
