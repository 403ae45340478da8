"""Start-up: a bad model file stops `python -m app` with one sentence naming it and a non-zero exit;
a serving process is tuned for serving and says so in one line; building an app changes nothing else."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.__main__ import listening_socket
from app.classifier import ModelLoadError, load_keras_model
from app.config import Settings
from app.main import create_app

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


def process_state() -> dict:
    """What serving tunes process-wide: the garbage collector, BLAS threads, TensorFlow's variables."""
    from threadpoolctl import threadpool_info

    return {
        "gc_enabled": gc.isenabled(),
        "gc_frozen": gc.get_freeze_count(),
        "blas_threads": sorted((pool["internal_api"], pool["num_threads"]) for pool in threadpool_info()),
        "environment": {name: value for name, value in os.environ.items() if name.startswith("TF_")},
    }


def test_creating_an_app_leaves_the_process_as_it_found_it(settings, tmp_path, shipped_model_path):
    before = process_state()
    with TestClient(create_app(settings)) as client:
        upload = {"file": ("digit.png", (ROOT / "tests" / "data" / "digit.png").read_bytes(), "image/png")}
        assert client.post("/predict", files=upload).status_code == 200
        assert client.post("/explain", files=upload).status_code == 200  # the Keras model has loaded
    with pytest.raises(ModelLoadError), TestClient(create_app(Settings(model_path=tmp_path / "missing.keras", cache_dir=""))):
        pass
    assert process_state() == before


SERVING_PROCESS = """
import gc, json, logging.config, time
from threadpoolctl import threadpool_info
from app.__main__ import serving_app
from app.logs import log_config, quiet_tensorflow

quiet_tensorflow()
logging.config.dictConfig(log_config("info"))
app = serving_app()
collecting_while_keras_loads = gc.isenabled()
deadline = time.monotonic() + 120
while not gc.isenabled() and time.monotonic() < deadline:  # the heap is frozen once the Keras model has loaded
    time.sleep(0.05)
print(json.dumps({
    "collecting_while_keras_loads": collecting_while_keras_loads,
    "gc_enabled": gc.isenabled(),
    "gc_frozen": gc.get_freeze_count(),
    "blas_threads": sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}),
}))
"""


def test_a_serving_process_is_tuned_and_says_what_it_serves_in_one_line(client, shipped_model_path):
    """`serving_app`, what each worker of `python -m app` runs: tuned for serving, one start-up line, no TensorFlow notes."""
    env = {**os.environ, "DIGITSERVE_MODEL_PATH": str(shipped_model_path), "DIGITSERVE_PORT": "8765"}
    for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", SERVING_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    # The cached LiteRT copy (the `client` fixture made it) serves while the Keras model loads in the background.
    assert state == {"collecting_while_keras_loads": False, "gc_enabled": True, "gc_frozen": state["gc_frozen"], "blas_threads": [1]}
    assert state["gc_frozen"] > 100_000
    lines = [line for line in result.stderr.splitlines() if "serves model" in line]
    assert len(lines) == 1 and " INFO digitserve: worker " in lines[0], result.stderr
    assert "serves model digitserve (version " in lines[0] and lines[0].endswith(") with litert on CPU at http://127.0.0.1:8765")
    assert "oneDNN" not in result.stderr and "E0000" not in result.stderr and "Traceback" not in result.stderr
