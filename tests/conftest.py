"""Shared fixtures: MNIST (from $DIGITSERVE_MNIST, else Keras' download), the shipped model, the app."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import SHIPPED_MODEL, Settings
from app.main import create_app
from training.data import load_mnist, resolve_source

TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The LiteRT copies this run makes go to a folder of its own, for servers it starts too."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["XDG_CACHE_HOME"]) / "digitserve"
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def mnist():
    """The full MNIST set, loaded once per run."""
    return load_mnist(resolve_source(None))


@pytest.fixture(scope="session")
def shipped_model_path() -> Path:
    assert SHIPPED_MODEL.is_file(), f"the shipped model {SHIPPED_MODEL} is missing"
    return SHIPPED_MODEL


@pytest.fixture(scope="session")
def settings(shipped_model_path) -> Settings:
    return Settings(model_path=shipped_model_path)


@pytest.fixture(scope="session")
def client(settings):
    """A client of the app on the shipped model, with its lifespan run (the model loaded once)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def png_bytes(pixels: np.ndarray, mode: str = "L") -> bytes:
    """Encode an array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png(mnist_digit: np.ndarray, size: int = 280) -> bytes:
    """An MNIST digit rendered black on white at `size` pixels, as people draw it."""
    image = Image.fromarray(255 - mnist_digit, mode="L").resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
