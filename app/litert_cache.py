"""A cache of LiteRT copies of Keras models, so that a restart serves without waiting for TensorFlow.

Each copy is named by the sha256 of the Keras file it was converted from and carries the Keras
model's own outputs on the probe batch. A copy is used only when its bytes are intact and
it still reproduces those probabilities; anything else is treated as absent and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger("digitserve")
# 2: the copies answer the features beside the probabilities.
CACHE_FORMAT = 2


@dataclass(frozen=True)
class LiteRTCopy:
    """A converted model and the Keras model's probabilities on the probe batch."""

    flatbuffer: bytes
    reference: np.ndarray


def _paths(cache_dir: Path, model_sha256: str) -> tuple[Path, Path]:
    return cache_dir / f"{model_sha256}.tflite", cache_dir / f"{model_sha256}.json"


def read_copy(cache_dir: Path, model_sha256: str) -> LiteRTCopy | None:
    """The cached copy of the model with this sha256, or None when there is no intact one."""
    flatbuffer_path, record_path = _paths(cache_dir, model_sha256)
    try:
        flatbuffer = flatbuffer_path.read_bytes()
        record = json.loads(record_path.read_text())
        reference = np.asarray(record["reference"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (
        record.get("format") != CACHE_FORMAT
        or record.get("model_sha256") != model_sha256
        or record.get("flatbuffer_sha256") != hashlib.sha256(flatbuffer).hexdigest()
        or reference.ndim != 2
    ):
        logger.warning("ignoring the damaged or outdated LiteRT copy in %s", cache_dir)
        return None
    return LiteRTCopy(flatbuffer, reference)


def write_copy(cache_dir: Path, model_sha256: str, copy: LiteRTCopy) -> bool:
    """Store a copy for the next start; False (with a warning) when the cache cannot be written."""
    flatbuffer_path, record_path = _paths(cache_dir, model_sha256)
    record = {
        "format": CACHE_FORMAT,
        "model_sha256": model_sha256,
        "flatbuffer_sha256": hashlib.sha256(copy.flatbuffer).hexdigest(),
        "reference": copy.reference.tolist(),
    }
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: workers starting together never read half a file.
        _write_atomically(flatbuffer_path, copy.flatbuffer)
        _write_atomically(record_path, json.dumps(record).encode())
    except OSError as error:
        logger.warning("cannot cache the LiteRT copy in %s (%s): the next start converts the model again", cache_dir, error.strerror or error)
        return False
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
