"""The HTTP API on the shipped model: predictions, batch, protocols, operations, and bad input."""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import digit_png, png_bytes
from tests.messages import BLANK, CORRUPT, EMPTY, NOISE, NOT_IMAGE, OVER_PIXEL_LIMIT, TOO_BIG

MB = 1024 * 1024


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


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


# --- TensorFlow Serving REST API and the Open Inference Protocol v2 -----------------------------


def test_tf_serving_status_and_predict(client, mnist):
    status = client.get("/v1/models/digitserve").json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    instances = [(mnist.x_test[0] / 255).tolist(), (mnist.x_test[1] / 255).ravel().tolist()]
    response = client.post("/v1/models/digitserve:predict", json={"instances": instances})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert np.asarray(predictions).shape == (2, 10)
    assert [int(np.argmax(p)) for p in predictions] == [int(mnist.y_test[0]), int(mnist.y_test[1])]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"instances": [[0.5] * 10]}, 400, "each instance must hold 784 pixels"),
        ({"instances": [[[2.0] * 28] * 28]}, 400, "pixel values must be finite and in [0, 1]"),
        ({"instances": [["a"] * 784]}, 400, "instances must be numbers"),
        ({"signature_name": "x"}, 400, 'send {"instances"'),
    ],
    ids=["wrong-size", "out-of-range", "strings", "no-instances"],
)
def test_tf_serving_errors(client, body, status, message):
    response = client.post("/v1/models/digitserve:predict", json=body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_tf_serving_unknown_model(client):
    assert client.get("/v1/models/other").status_code == 404


def test_v2_health_metadata_and_infer(client, mnist):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    metadata = client.get("/v2/models/digitserve").json()
    assert metadata["inputs"][0] == {"name": "image", "datatype": "FP32", "shape": [-1, 28, 28]}
    images = (mnist.x_test[:3] / 255).astype(np.float32)
    request = {"id": "r1", "inputs": [{"name": "image", "shape": [3, 28, 28], "datatype": "FP32", "data": images.ravel().tolist()}]}
    response = client.post("/v2/models/digitserve/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "r1" and body["model_name"] == "digitserve"
    output = body["outputs"][0]
    assert output["name"] == "probabilities" and output["datatype"] == "FP32" and output["shape"] == [3, 10]
    predicted = np.asarray(output["data"]).reshape(3, 10).argmax(axis=1)
    assert predicted.tolist() == mnist.y_test[:3].tolist()


@pytest.mark.parametrize(
    "tensor, message",
    [
        ({"name": "image", "shape": [1, 28, 28], "datatype": "INT8", "data": [0] * 784}, "datatype must be FP32"),
        ({"name": "image", "shape": [2, 28, 28], "datatype": "FP32", "data": [0.0] * 784}, "does not match"),
        ({"name": "image", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}, "784 pixels"),
    ],
    ids=["int8", "shape-mismatch", "wrong-size"],
)
def test_v2_errors(client, tensor, message):
    response = client.post("/v2/models/digitserve/infer", json={"inputs": [tensor]})
    assert response.status_code == 400
    assert message in response.json()["error"]


# --- Bad input: every row an exact status and message, never a 500 ------------------------------

DIGIT = encode(Image.fromarray(np.pad(np.full((30, 8), 0, np.uint8), 35, constant_values=255)))


def bad_crc_png() -> bytes:
    data = bytearray(DIGIT)
    data[29] ^= 0xFF  # inside the IHDR chunk, so its CRC no longer matches
    return bytes(data)


def bomb_png() -> bytes:
    """A small PNG whose header claims 30000x30000 pixels."""
    header = b"\x89PNG\r\n\x1a\n"
    ihdr = (30000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    chunk = len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big")
    data = zlib.compress(b"\x00" * 1000)
    idat = len(data).to_bytes(4, "big") + b"IDAT" + data + zlib.crc32(b"IDAT" + data).to_bytes(4, "big")
    return header + chunk + idat + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def zeros_bomb_png() -> bytes:
    """A real 6000x6000 white PNG: a few kB on the wire, 36 megapixels decoded."""
    return encode(Image.new("1", (6000, 6000), 1))


def animated_gif() -> bytes:
    frames = [Image.fromarray(np.pad(np.zeros((30, 8), np.uint8), 35, constant_values=255)) for _ in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def cmyk_jpeg() -> bytes:
    return encode(Image.open(io.BytesIO(DIGIT)).convert("CMYK"), "JPEG")


def sixteen_bit_png() -> bytes:
    pixels = np.asarray(Image.open(io.BytesIO(DIGIT)), dtype=np.uint16) * 257
    return encode(Image.fromarray(pixels))


NOISE_PNG = png_bytes(np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8))

BAD_INPUTS = [
    # (id, request kwargs, status, detail or None when the answer is a success)
    ("empty-body-multipart", {"files": {"file": ("a.png", b"", "image/png")}}, 400, EMPTY),
    ("empty-raw-body", {"content": b"", "headers": {"Content-Type": "image/png"}}, 400, EMPTY),
    ("one-byte", {"files": {"file": ("a.png", b"\x89", "image/png")}}, 415, NOT_IMAGE),
    (
        "wrong-field",
        {"files": {"image": ("a.png", DIGIT, "image/png")}},
        422,
        "The form has no field 'file' (fields sent: image): send the image as multipart field 'file'.",
    ),
    ("text-field-not-file", {"files": {"file": (None, b"hello")}}, 422, "The field 'file' holds text, not a file: attach the image as a file."),
    (
        "two-files-one-field",
        {"files": [("file", ("a.png", DIGIT, "image/png")), ("file", ("b.png", DIGIT, "image/png"))]},
        422,
        "Send one image in the field 'file'; use /predict/batch with field 'files' for several.",
    ),
    ("text-named-png", {"files": {"file": ("digit.png", b"this is not a picture", "image/png")}}, 415, NOT_IMAGE),
    ("html", {"files": {"file": ("x.png", b"<!doctype html><html></html>", "image/png")}}, 415, NOT_IMAGE),
    ("svg", {"files": {"file": ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")}}, 415, NOT_IMAGE),
    ("zip-named-png", {"files": {"file": ("x.png", b"PK\x03\x04" + b"\x00" * 100, "image/png")}}, 415, NOT_IMAGE),
    ("pdf", {"files": {"file": ("x.png", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "image/png")}}, 415, NOT_IMAGE),
    ("truncated-png", {"files": {"file": ("t.png", DIGIT[: len(DIGIT) // 2], "image/png")}}, 400, CORRUPT),
    ("truncated-jpeg", {"files": {"file": ("t.jpg", encode(Image.open(io.BytesIO(DIGIT)), "JPEG")[:300], "image/jpeg")}}, 400, CORRUPT),
    ("bad-crc", {"files": {"file": ("c.png", bad_crc_png(), "image/png")}}, 400, CORRUPT),
    (
        "header-30000x30000",
        {"files": {"file": ("big.png", bomb_png(), "image/png")}},
        413,
        OVER_PIXEL_LIMIT,
    ),
    (
        "decompression-bomb",
        {"files": {"file": ("bomb.png", zeros_bomb_png(), "image/png")}},
        413,
        "The image has too many pixels (the image has 36,000,000 pixels; the limit is 25,000,000): scale it down and retry.",
    ),
    ("blank-white", {"files": {"file": ("w.png", encode(Image.new("L", (64, 64), 255)), "image/png")}}, 422, BLANK),
    ("blank-black", {"files": {"file": ("b.png", encode(Image.new("L", (64, 64), 0)), "image/png")}}, 422, BLANK),
    ("transparent-canvas", {"files": {"file": ("t.png", encode(Image.new("RGBA", (64, 64))), "image/png")}}, 422, BLANK),
    ("pure-noise", {"files": {"file": ("n.png", NOISE_PNG, "image/png")}}, 422, NOISE),
    ("over-size-limit", {"files": {"file": ("big.png", b"\x89PNG" + b"\x00" * (5 * MB + 1), "image/png")}}, 413, TOO_BIG),
    ("raw-over-size-limit", {"content": b"\x00" * (5 * MB + 70 * 1024), "headers": {"Content-Type": "image/png"}}, 413, TOO_BIG),
    (
        "no-content-type",
        {"content": DIGIT, "headers": {"Content-Type": ""}},
        415,
        "The request has no Content-Type: send the image as multipart/form-data field 'file' (curl -F file=@digit.png) "
        "or as a raw body with an image/* Content-Type.",
    ),
    (
        "json-content-type",
        {"content": b"{}", "headers": {"Content-Type": "application/json"}},
        415,
        "Content-Type application/json is not accepted: send the image as multipart/form-data field 'file' "
        "(curl -F file=@digit.png) or as a raw body with an image/* Content-Type.",
    ),
    ("missing-boundary", {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 400, "Missing boundary in multipart."),
    ("animated-gif-first-frame", {"files": {"file": ("a.gif", animated_gif(), "image/gif")}}, 200, None),
    ("cmyk-jpeg", {"files": {"file": ("c.jpg", cmyk_jpeg(), "image/jpeg")}}, 200, None),
    ("16-bit-png", {"files": {"file": ("s.png", sixteen_bit_png(), "image/png")}}, 200, None),
]


@pytest.mark.parametrize("request_kwargs, status, detail", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_table(client, request_kwargs, status, detail):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == status, response.text
    if detail is None:
        assert_prediction(response.json(), 1)
    else:
        assert response.json() == {"detail": detail}


def test_declared_content_length_over_limit_is_refused_before_reading(client):
    response = client.post("/predict", content=b"x" * 10, headers={"Content-Type": "image/png", "Content-Length": str(50 * MB)})
    assert response.status_code == 413
    assert response.json() == {"detail": TOO_BIG}


def test_security_headers(client):
    response = client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
