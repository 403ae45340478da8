"""The HTTP API on the shipped model: predictions, batch, explanations' route, operations and headers.

Bad input is tested in test_hostile.py, the protocol routes in test_protocols.py."""

from __future__ import annotations

import base64
import io
import threading

import anyio
import numpy as np
import pytest
from PIL import Image

from tests.conftest import digit_png


@pytest.fixture(scope="module")
def seven(mnist) -> bytes:
    index = int(np.flatnonzero(mnist.y_test == 7)[0])
    return digit_png(mnist.x_test[index])


def assert_prediction(body: dict, digit: int | None = None):
    assert set(body) >= {"digit", "confidence", "probabilities", "model"}
    assert len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - 1.0) < 1e-5
    assert body["digit"] == int(np.argmax(body["probabilities"]))
    assert body["confidence"] == max(body["probabilities"])
    assert body["model"]["name"] == "digitserve" and len(body["model"]["version"]) == 12
    if digit is not None:
        assert body["digit"] == digit


def test_multipart_upload(client, seven):
    response = client.post("/predict", files={"file": ("seven.png", seven, "image/png")})
    assert response.status_code == 200, response.text
    assert_prediction(response.json(), 7)
    assert response.json()["confidence"] > 0.9


def test_raw_body_upload(client, seven):
    response = client.post("/predict", content=seven, headers={"Content-Type": "image/png"})
    assert response.status_code == 200
    assert_prediction(response.json(), 7)


def test_include_image_returns_the_28x28_input(client, seven):
    body = client.post("/predict?include_image=true", files={"file": ("7.png", seven, "image/png")}).json()
    prefix = "data:image/png;base64,"
    assert body["input_image"].startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(body["input_image"][len(prefix) :])))
    assert image.size == (28, 28) and image.mode == "L"
    assert client.post("/predict", files={"file": ("7.png", seven, "image/png")}).json()["input_image"] is None


def test_batch_keeps_order_and_isolates_bad_files(client, mnist):
    files = [("files", (f"{i}.png", digit_png(mnist.x_test[i]), "image/png")) for i in range(5)]
    files.insert(2, ("files", ("notes.txt", b"just text", "text/plain")))
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [item["filename"] for item in results] == ["0.png", "1.png", "notes.txt", "2.png", "3.png", "4.png"]
    assert results[2]["error"]["status"] == 415 and results[2]["prediction"] is None
    predicted = [item["prediction"]["digit"] for item in results if item["prediction"]]
    assert predicted == [int(label) for label in mnist.y_test[:5]]


def test_batch_refuses_too_many_files(client, seven, settings):
    files = [("files", (f"{i}.png", seven, "image/png")) for i in range(settings.max_batch_files + 1)]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 413
    assert response.json() == {"detail": f"Too many files: at most {settings.max_batch_files} per request."}


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_while_every_worker_thread_is_busy(client, path):
    """A liveness probe that waited for the thread pool would restart a pod for being busy."""
    limiter = client.portal.call(anyio.to_thread.current_default_thread_limiter)
    holder, tokens = object(), limiter.total_tokens
    client.portal.call(setattr, limiter, "total_tokens", limiter.borrowed_tokens + 1)
    client.portal.call(limiter.acquire_on_behalf_of, holder)
    answers = []
    probe = threading.Thread(target=lambda: answers.append(client.get(path).status_code))
    try:
        probe.start()
        probe.join(timeout=5)
        assert answers == [200], f"{path} waited for a worker thread"
    finally:
        client.portal.call(limiter.release_on_behalf_of, holder)
        client.portal.call(setattr, limiter, "total_tokens", tokens)
        probe.join()


def metric_value(text: str, sample: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(sample + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_metrics_count_requests_and_predictions(client, seven):
    sevens, requests = 'digitserve_predictions_total{digit="7"}', 'digitserve_http_requests_total{method="POST",route="/predict",status="200"}'
    before = client.get("/metrics").text
    client.post("/predict", files={"file": ("7.png", seven, "image/png")})
    text = client.get("/metrics").text
    assert metric_value(text, requests) == metric_value(before, requests) + 1
    assert metric_value(text, sevens) == metric_value(before, sevens) + 1
    assert 'digitserve_predictions_total{digit="3"}' in text  # every digit is listed, seen or not
    assert "digitserve_http_request_duration_seconds_bucket" in text
    assert 'digitserve_model_info{backend="litert",device="CPU",name="digitserve"' in text


def test_openapi_documents_the_upload(client):
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/png" in body
    assert client.get("/docs").status_code == 200


def test_security_headers(client):
    response = client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
