"""Standard inference protocols, so clients of general model servers work unchanged.

TensorFlow Serving's REST API (/v1/models/<name>...) and the Open Inference Protocol v2 of
KServe and Triton (/v2/...), with Triton's binary tensor extension. Both take already-preprocessed
28x28 float tensors in [0, 1]. Errors carry {"error": ...} as those protocols specify, and
{"detail": ...} like the rest of the API (app/errors.py).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from app.deps import ModelName, PredictorDep, SettingsDep
from app.errors import ProtocolError, TooManyInstances
from app.schemas import ProtocolErrorBody

PROTOCOL_ERRORS = {
    400: {"model": ProtocolErrorBody, "description": "Wrong shape, type or values"},
    404: {"model": ProtocolErrorBody, "description": "No model of that name"},
    413: {"model": ProtocolErrorBody, "description": "Too many instances or too large a body"},
    422: {"model": ProtocolErrorBody, "description": "The request body is not of the protocol's form"},
}
router = APIRouter(responses=PROTOCOL_ERRORS)

INPUT_NAME, OUTPUT_NAME = "image", "probabilities"
PIXELS = 28 * 28
# The Open Inference Protocol's binary tensor extension: the JSON header is this many bytes of the
# body, and the tensors' raw bytes follow it, in input order, each `binary_data_size` long.
HEADER_LENGTH = "Inference-Header-Content-Length"
BLANK_IMAGE = [[0.0] * 28 for _ in range(28)]


class TFServingRequest(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"instances": [BLANK_IMAGE]}]}}

    instances: list[Any] | None = Field(None, description="each a 28x28 nested list or 784 floats in [0, 1]")
    inputs: Any | None = Field(None, description="columnar form: the whole batch as one nested list")
    signature_name: str | None = None


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = Field(None, description="the values, flat or nested; absent when sent as binary data")
    parameters: dict[str, Any] | None = None


class V2InferenceRequest(BaseModel):
    model_config = {
        "json_schema_extra": {"examples": [{"id": "1", "inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}]}]}
    }

    id: str | None = None
    inputs: list[V2Tensor]
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


def parsed(model: type[BaseModel], header: bytes) -> BaseModel:
    """A JSON header as the protocol's request model, or the validation error every route answers with."""
    try:
        payload = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        position = getattr(error, "pos", getattr(error, "start", 0))
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", position), "msg": "JSON decode error"}]) from None
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise RequestValidationError([{**item, "loc": ("body", *item["loc"])} for item in error.errors()]) from None


# The protocol routes read their body as JSON whatever its Content-Type says, because their real
# clients label it loosely: tritonclient sends none, and TF Serving's documented `curl -d` sends
# application/x-www-form-urlencoded. That is safe here, unlike on the upload routes: these routes
# read nothing but a JSON document of numbers, and the service holds no cookies or credentials, so
# a browser's cross-site form post can do nothing that any client cannot. The upload routes keep
# their Content-Type checks, since the type chooses how they parse the body.
async def tf_serving_request(request: Request) -> TFServingRequest:
    """The body of a TF Serving predict request."""
    return parsed(TFServingRequest, await request.body())


async def v2_request(request: Request) -> tuple[V2InferenceRequest, list[bytes | None]]:
    """The body of an Open Inference Protocol request, and each input's raw bytes when it came as binary data."""
    body = await request.body()
    header_length = request.headers.get(HEADER_LENGTH)
    if header_length is None:
        return parsed(V2InferenceRequest, body), [None]
    if not header_length.isdigit() or int(header_length) > len(body):
        raise ProtocolError(f"{HEADER_LENGTH} must be the byte length of the JSON header, at most the body's {len(body)} bytes")
    header, binary = body[: int(header_length)], body[int(header_length) :]
    inference = parsed(V2InferenceRequest, header)
    raw, offset = [], 0
    for tensor in inference.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            raw.append(None)
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise ProtocolError(f"input {tensor.name!r}: binary_data_size {size} does not fit the {len(binary) - offset} bytes left after the header")
        raw.append(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes after the JSON header belong to no input's binary_data_size")
    return inference, raw


def request_body(model: type[BaseModel]) -> dict:
    """The OpenAPI request body of a protocol route, which reads its body itself: the model's schema, its definitions inlined."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            return inline(definitions[node["$ref"].rsplit("/", 1)[-1]]) if "$ref" in node else {key: inline(value) for key, value in node.items()}
        return [inline(value) for value in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


TFServingBody = Annotated[TFServingRequest, Depends(tf_serving_request)]
V2Body = Annotated[tuple[V2InferenceRequest, list[bytes | None]], Depends(v2_request)]


def image_batch(values: Any) -> np.ndarray:
    """A nested list or array of pixels -> (N, 28, 28) float32, or a ProtocolError saying what is wrong."""
    try:
        array = np.asarray(values, dtype=np.float32)
    except (ValueError, TypeError):
        raise ProtocolError("instances must be numbers arranged as 28x28 or 784 values per image") from None
    if array.size == 0 or array.size % PIXELS:
        raise ProtocolError(f"each instance must hold 784 pixels (28x28); got {array.size} values in shape {list(array.shape)}")
    if array.shape[-2:] != (28, 28) and array.shape[-1] != PIXELS and array.shape[-3:] != (28, 28, 1):
        raise ProtocolError(f"shape {list(array.shape)} is not a batch of 28x28 or 784-value images")
    return array.reshape(-1, 28, 28)


def to_images(values: Any, max_instances: int) -> np.ndarray:
    """The instances of a request -> (N, 28, 28) float32 in [0, 1], at most `max_instances` of them in all."""
    too_many = TooManyInstances(f"too many instances: at most {max_instances} per request")
    try:
        images = image_batch(values)
    except ProtocolError:
        # Instances of different layouts (28x28 beside 784) are converted one by one.
        if not isinstance(values, list) or not values or isinstance(values[0], int | float):
            raise
        if len(values) > max_instances:
            raise too_many from None
        images = np.concatenate([image_batch(value) for value in values])
    if len(images) > max_instances:
        raise too_many
    if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > 1.0:
        raise ProtocolError("pixel values must be finite and in [0, 1] (white digit on black, scaled from 0-255)")
    return images


def probabilities(predictor, images: np.ndarray) -> np.ndarray:
    """(N, 10) probabilities for preprocessed images, through the same call as every other route."""
    return np.stack([reading.probabilities for reading in predictor.classify(images)])


@router.get("/v1/models/{model_name}", tags=["tensorflow-serving"])
def tf_serving_status(model_name: ModelName):
    """TensorFlow Serving model status."""
    return {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


@router.get("/v1/models/{model_name}/metadata", tags=["tensorflow-serving"])
def tf_serving_metadata(model_name: ModelName):
    """TensorFlow Serving model metadata: the serving signature."""
    signature = {
        "inputs": {INPUT_NAME: {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "28"}, {"size": "28"}]}}},
        "outputs": {OUTPUT_NAME: {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "10"}]}}},
        "method_name": "tensorflow/serving/predict",
    }
    return {"model_spec": {"name": model_name, "version": "1"}, "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}}}


@router.post("/v1/models/{model_name}:predict", tags=["tensorflow-serving"], openapi_extra=request_body(TFServingRequest))
def tf_serving_predict(model_name: ModelName, body: TFServingBody, predictor: PredictorDep, settings: SettingsDep):
    """TensorFlow Serving predict: {"instances": [...]} -> {"predictions": [[10 floats], ...]}."""
    values = body.instances if body.instances is not None else body.inputs
    if values is None:
        raise ProtocolError('send {"instances": [...]} (row format) or {"inputs": [...]} (columnar format)')
    key = "predictions" if body.instances is not None else "outputs"
    return {key: probabilities(predictor, to_images(values, settings.max_instances)).tolist()}


@router.get("/v2", tags=["open-inference-protocol"])
def v2_server_metadata(request: Request):
    """Open Inference Protocol server metadata."""
    return {"name": "digitserve", "version": request.app.version, "extensions": ["binary_tensor_data"]}


@router.get("/v2/health/live", tags=["open-inference-protocol"])
def v2_live():
    """Open Inference Protocol liveness."""
    return {"live": True}


@router.get("/v2/health/ready", tags=["open-inference-protocol"])
def v2_ready(request: Request):
    """Open Inference Protocol readiness: the predictor exists."""
    ready = getattr(request.state, "predictor", None) is not None
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get("/v2/models/{model_name}", tags=["open-inference-protocol"])
def v2_model_metadata(model_name: ModelName):
    """Open Inference Protocol model metadata."""
    return {
        "name": model_name,
        "versions": ["1"],
        "platform": "tensorflow_keras",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 28, 28]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, 10]}],
    }


@router.get("/v2/models/{model_name}/ready", tags=["open-inference-protocol"])
def v2_model_ready(model_name: ModelName):
    """Open Inference Protocol model readiness: a model the server names is loaded."""
    return {"name": model_name, "ready": True}


@router.post(
    "/v2/models/{model_name}/infer",
    tags=["open-inference-protocol"],
    openapi_extra=request_body(V2InferenceRequest),
    responses={
        200: {"content": {"application/json": {}, "application/octet-stream": {}}, "description": "The probabilities, as JSON or binary data"}
    },
)
def v2_infer(model_name: ModelName, body: V2Body, predictor: PredictorDep, settings: SettingsDep):
    """Open Inference Protocol inference: one FP32 tensor of shape [N, 28, 28], [N, 784] or [28, 28], as JSON or binary data."""
    inference, raw = body
    if len(inference.inputs) != 1:
        raise ProtocolError(f"expected exactly one input tensor named {INPUT_NAME!r}, got {len(inference.inputs)}")
    tensor, tensor_bytes = inference.inputs[0], raw[0]
    if tensor.datatype.upper() != "FP32":
        raise ProtocolError(f"input datatype must be FP32, got {tensor.datatype}")
    if tensor_bytes is not None:
        if len(tensor_bytes) % 4:
            raise ProtocolError(f"binary FP32 data must be a multiple of 4 bytes, got {len(tensor_bytes)}")
        values = np.frombuffer(tensor_bytes, dtype="<f4")
    elif tensor.data is None:
        raise ProtocolError(f"input {tensor.name!r} has neither data nor binary_data_size")
    else:
        try:
            values = np.asarray(tensor.data, dtype=np.float32)
        except (ValueError, TypeError):
            raise ProtocolError("data must be a flat or nested list of numbers") from None
    if any(dim < 1 for dim in tensor.shape) or math.prod(tensor.shape) != values.size:
        raise ProtocolError(f"shape {tensor.shape} does not match the {values.size} values sent")
    images = to_images(values.reshape(tensor.shape), settings.max_instances)
    output = {"name": OUTPUT_NAME, "datatype": "FP32", "shape": [len(images), 10]}
    answer: dict[str, Any] = {"model_name": model_name, "model_version": "1", "outputs": [output]}
    if inference.id is not None:
        answer["id"] = inference.id
    result = probabilities(predictor, images).astype("<f4")
    if not wants_binary_output(inference):
        output["data"] = result.ravel().tolist()
        return answer
    output["parameters"] = {"binary_data_size": result.nbytes}
    header = json.dumps(answer).encode()
    return Response(header + result.tobytes(), media_type="application/octet-stream", headers={HEADER_LENGTH: str(len(header))})


def wants_binary_output(inference: V2InferenceRequest) -> bool:
    """Whether the client asked for the probabilities as binary data: per output, or for all outputs."""
    for requested in inference.outputs or []:
        if requested.get("name") == OUTPUT_NAME and "binary_data" in (requested.get("parameters") or {}):
            return bool(requested["parameters"]["binary_data"])
    return bool((inference.parameters or {}).get("binary_data_output", False))
