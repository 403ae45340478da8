"""app/protocols.py: TF Serving's REST API and the Open Inference Protocol v2, through the test
client, and through the protocols' real clients over HTTP: tritonclient (JSON tensors and the
binary tensor extension), the KServe SDK's REST client and TF Serving's documented `curl -d`."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import subprocess

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import served

LIMITS = {"max_instances": 16, "max_batch_bytes": 128 * 1024}


@pytest.fixture(scope="module")
def eight(mnist) -> tuple[np.ndarray, list[int]]:
    """Eight MNIST test digits as the protocols take them, (8, 28, 28) floats in [0, 1], and their labels."""
    return (mnist.x_test[:8] / 255).astype(np.float32), mnist.y_test[:8].tolist()


@pytest.fixture(scope="module")
def small_limits(settings):
    """Settings with 16 instances and 128 KiB a protocol request."""
    return settings.model_copy(update=LIMITS)


@pytest.fixture(scope="module")
def limited_client(small_limits):
    """A client of the app on `small_limits`."""
    with TestClient(create_app(small_limits)) as test_client:
        yield test_client


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


def test_tf_serving_json_without_content_type_or_with_a_form_type(client, eight):
    images, labels = eight
    body = json.dumps({"instances": images.tolist()})
    for content_type in (None, "application/x-www-form-urlencoded", "text/plain"):
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = client.post("/v1/models/digitserve:predict", content=body, headers=headers)
        assert response.status_code == 200, (content_type, response.text)
        assert np.argmax(response.json()["predictions"], axis=1).tolist() == labels


def test_protocol_body_that_is_not_json_is_a_validation_error(client):
    response = client.post("/v2/models/digitserve/infer", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"detail": "Invalid request: 1: JSON decode error."}


def test_unknown_model_is_404_on_every_model_route(client):
    for method, path in [
        ("GET", "/v1/models/other"),
        ("GET", "/v1/models/other/metadata"),
        ("POST", "/v1/models/other:predict"),
        ("GET", "/v2/models/other"),
        ("GET", "/v2/models/other/ready"),
        ("POST", "/v2/models/other/infer"),
    ]:
        response = client.request(method, path, json={"instances": [[0.0] * 784]})
        assert response.status_code == 404, path
        assert response.json()["error"] == "No model named 'other': this server serves 'digitserve'."


def test_mixed_layouts_count_in_total_against_the_instance_limit(limited_client):
    # 12 instances of 28x28 beside 12 of 784 values: 24 images against a limit of 16.
    instances = [[[0.0] * 28] * 28] * 12 + [[0.0] * 784] * 12
    response = limited_client.post("/v1/models/digitserve:predict", json={"instances": instances})
    assert response.status_code == 413
    assert response.json()["error"] == "too many instances: at most 16 per request"
    mixed = [[[0.0] * 28] * 28] * 8 + [[0.0] * 784] * 8
    assert len(limited_client.post("/v1/models/digitserve:predict", json={"instances": mixed}).json()["predictions"]) == 16


def test_chunked_protocol_body_over_the_limit_is_413(small_limits):
    """A body with no Content-Length is counted as it streams in; over the limit it is a 413, not a parse error."""
    body = json.dumps({"instances": [[0.0] * 784] * 100}).encode()  # about 390 KB against 128 KiB
    with served(small_limits) as address:
        connection = http.client.HTTPConnection(*address, timeout=30)
        chunks = (body[start : start + 16384] for start in range(0, len(body), 16384))
        connection.request("POST", "/v1/models/digitserve:predict", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
    assert response.status == 413
    assert answer == {"detail": "The upload is larger than the limit of 0.1 MB: send a smaller image."}


@pytest.mark.parametrize(
    "header_length, body, message",
    [
        ("abc", b"{}", "Inference-Header-Content-Length must be the byte length of the JSON header"),
        ("999", b"{}", "Inference-Header-Content-Length must be the byte length of the JSON header"),
        (None, b"\x00" * 8, "binary_data_size 3136 does not fit the 8 bytes left after the header"),
        (None, b"\x00" * 4000, "864 bytes after the JSON header belong to no input's binary_data_size"),
    ],
    ids=["not-a-number", "longer-than-body", "binary-too-short", "binary-too-long"],
)
def test_binary_tensor_errors(client, header_length, body, message):
    header = json.dumps({"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "FP32", "parameters": {"binary_data_size": 3136}}]}).encode()
    headers = {"Inference-Header-Content-Length": header_length or str(len(header))}
    response = client.post("/v2/models/digitserve/infer", content=header + body, headers=headers)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_tritonclient_with_json_tensors(server_address, eight):
    import tritonclient.http as triton

    images, labels = eight
    client = triton.InferenceServerClient(url="{}:{}".format(*server_address))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digitserve")
    image = triton.InferInput("image", list(images.shape), "FP32")
    image.set_data_from_numpy(images, binary_data=False)
    result = client.infer("digitserve", [image], outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)])
    assert result.as_numpy("probabilities").argmax(axis=1).tolist() == labels
    client.close()


def test_tritonclient_with_binary_tensors(server_address, eight):
    import tritonclient.http as triton

    images, labels = eight
    client = triton.InferenceServerClient(url="{}:{}".format(*server_address))
    image = triton.InferInput("image", list(images.shape), "FP32")
    image.set_data_from_numpy(images, binary_data=True)
    # Without named outputs, tritonclient asks for every output as binary data too.
    result = client.infer("digitserve", [image])
    assert result.get_response()["outputs"][0]["parameters"] == {"binary_data_size": 8 * 10 * 4}, "answered in binary"
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (8, 10)
    assert probabilities.argmax(axis=1).tolist() == labels
    client.close()


@pytest.mark.parametrize("binary_data", [False, True], ids=["json", "binary"])
def test_kserve_sdk_rest_client(server_address, eight, binary_data):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    images, labels = eight

    async def infer() -> np.ndarray:
        client = InferenceRESTClient(config=RESTConfig(protocol="v2"))
        image = InferInput(name="image", shape=list(images.shape), datatype="FP32")
        image.set_data_from_numpy(images, binary_data=binary_data)
        response = await client.infer("http://{}:{}".format(*server_address), InferRequest("digitserve", [image]), model_name="digitserve")
        await client.close()
        return response.outputs[0].as_numpy()

    assert asyncio.run(infer()).reshape(8, 10).argmax(axis=1).tolist() == labels


def test_tf_serving_documented_curl_form(server_address, eight, tmp_path):
    """`curl -d '{"instances": ...}' URL`, as TF Serving's documentation posts, which sends a form Content-Type."""
    images, labels = eight
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test (Debian: apt-get install curl)"
    body = tmp_path / "instances.json"
    body.write_text(json.dumps({"instances": images.tolist()}))
    url = "http://{}:{}/v1/models/digitserve:predict".format(*server_address)
    result = subprocess.run([curl, "-sS", "-d", f"@{body}", url], capture_output=True, text=True, timeout=60, check=True)
    assert np.argmax(json.loads(result.stdout)["predictions"], axis=1).tolist() == labels
