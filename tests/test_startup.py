"""Start-up: a bad model file stops `python -m app` with one sentence naming it and a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.__main__ import listening_socket
from app.classifier import ModelLoadError, load_keras_model

ROOT = Path(__file__).resolve().parent.parent


def start_service(model_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIGITSERVE_MODEL_PATH": str(model_path), "DIGITSERVE_PORT": "8765"}
    return subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def wrong_shape_model(path: Path) -> Path:
    import keras

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(path)
    return path


def lambda_model(path: Path) -> Path:
    import keras

    inputs = keras.Input((28, 28))
    doubled = keras.layers.Lambda(lambda images: images * 2)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(doubled))
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.mark.parametrize(
    "make_model, message",
    [
        (lambda tmp: tmp / "missing.keras", "does not exist"),
        (lambda tmp: (tmp / "garbage.keras").write_bytes(os.urandom(2048)) and tmp / "garbage.keras", "could not be loaded"),
        (lambda tmp: (tmp / "empty.keras").write_bytes(b"") is not None and tmp / "empty.keras", "could not be loaded"),
        (lambda tmp: wrong_shape_model(tmp / "wrong.keras"), "expects inputs of shape"),
    ],
    ids=["missing", "garbage", "empty", "wrong-shape"],
)
def test_bad_model_stops_start_up_with_one_sentence(tmp_path, make_model, message):
    model_path = make_model(tmp_path)
    result = start_service(model_path)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.strip().splitlines() if line.startswith("digitserve:")]
    assert len(error_lines) == 1, result.stderr
    assert str(model_path) in error_lines[0] and message in error_lines[0]
    assert "Traceback" not in result.stderr


def test_model_with_a_lambda_layer_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_keras_model(lambda_model(tmp_path / "lambda.keras"))


def test_model_that_differs_from_its_card_is_refused(tmp_path, shipped_model_path):
    import shutil

    shutil.copy(shipped_model_path.parent / "card.json", tmp_path / "card.json")
    altered = tmp_path / shipped_model_path.name
    altered.write_bytes(shipped_model_path.read_bytes() + b"tampered")
    result = start_service(altered)
    assert result.returncode == 2
    assert "does not match the sha256 recorded in" in result.stderr and "Traceback" not in result.stderr


def test_worker_processes_refuse_a_bad_model_before_forking(tmp_path):
    missing = tmp_path / "missing.keras"
    env = {**os.environ, "DIGITSERVE_MODEL_PATH": str(missing), "DIGITSERVE_WORKERS": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"digitserve: cannot start: model file {missing} does not exist" in result.stderr


def test_worker_socket_gives_accepted_connections_tcp_nodelay():
    """The shared listener says it is TCP, so asyncio turns Nagle off on every accepted connection."""
    listener = listening_socket("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        seen = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 5)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0
