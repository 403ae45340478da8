"""Standard inference protocols, so clients of general model servers work unchanged.

TensorFlow Serving's REST API (/v1/models/<name>...) and the Open Inference Protocol v2 of
KServe and Triton (/v2/...). Both take already-preprocessed 28x28 float tensors in [0, 1].
Errors carry {"error": ...} as those protocols specify, and {"detail": ...} like the rest of the API.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.deps import PredictorDep, SettingsDep
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


class ProtocolError(Exception):
    """A protocol request with the wrong shape, type or values, and the status that answers it."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


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
    data: list[Any]
    parameters: dict[str, Any] | None = None


class V2InferenceRequest(BaseModel):
    model_config = {
        "json_schema_extra": {"examples": [{"id": "1", "inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}]}]}
    }

    id: str | None = None
    inputs: list[V2Tensor]
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


def protocol_error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message, "detail": message}, status_code=status)


def to_images(values: Any, max_instances: int) -> np.ndarray:
    """A nested list of pixels -> (N, 28, 28) float32 in [0, 1], or a ProtocolError saying what is wrong."""
    try:
        array = np.asarray(values, dtype=np.float32)
    except (ValueError, TypeError):
        # Instances of different layouts (28x28 beside 784) are converted one by one.
        if isinstance(values, list) and values and len(values) <= max_instances:
            return np.concatenate([to_images(value, max_instances) for value in values])
        raise ProtocolError("instances must be numbers arranged as 28x28 or 784 values per image") from None
    if array.size == 0 or array.size % PIXELS:
        raise ProtocolError(f"each instance must hold 784 pixels (28x28); got {array.size} values in shape {list(array.shape)}")
    if array.shape[-2:] != (28, 28) and array.shape[-1] != PIXELS and array.shape[-3:] != (28, 28, 1):
        raise ProtocolError(f"shape {list(array.shape)} is not a batch of 28x28 or 784-value images")
    images = array.reshape(-1, 28, 28)
    if len(images) > max_instances:
        raise ProtocolError(f"too many instances: at most {max_instances} per request", 413)
    if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > 1.0:
        raise ProtocolError("pixel values must be finite and in [0, 1] (white digit on black, scaled from 0-255)")
    return images


@router.get("/v1/models/{model_name}", tags=["tensorflow-serving"])
def tf_serving_status(model_name: str, settings: SettingsDep):
    """TensorFlow Serving model status."""
    if model_name != settings.model_name:
        return protocol_error(f"Servable not found for request: Latest({model_name})", 404)
    return {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


@router.get("/v1/models/{model_name}/metadata", tags=["tensorflow-serving"])
def tf_serving_metadata(model_name: str, settings: SettingsDep):
    """TensorFlow Serving model metadata: the serving signature."""
    if model_name != settings.model_name:
        return protocol_error(f"Servable not found for request: Latest({model_name})", 404)
    signature = {
        "inputs": {INPUT_NAME: {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "28"}, {"size": "28"}]}}},
        "outputs": {OUTPUT_NAME: {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "10"}]}}},
        "method_name": "tensorflow/serving/predict",
    }
    return {"model_spec": {"name": model_name, "version": "1"}, "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}}}


@router.post("/v1/models/{model_name}:predict", tags=["tensorflow-serving"])
def tf_serving_predict(model_name: str, body: TFServingRequest, predictor: PredictorDep, settings: SettingsDep):
    """TensorFlow Serving predict: {"instances": [...]} -> {"predictions": [[10 floats], ...]}."""
    if model_name != settings.model_name:
        return protocol_error(f"Servable not found for request: Latest({model_name})", 404)
    values = body.instances if body.instances is not None else body.inputs
    if values is None:
        return protocol_error('send {"instances": [...]} (row format) or {"inputs": [...]} (columnar format)')
    try:
        images = to_images(values, settings.max_instances)
    except ProtocolError as error:
        return protocol_error(str(error), error.status)
    probabilities = predictor.predict_arrays(images)
    key = "predictions" if body.instances is not None else "outputs"
    return {key: probabilities.tolist()}


@router.get("/v2", tags=["open-inference-protocol"])
def v2_server_metadata():
    """Open Inference Protocol server metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        server_version = version("digitserve")
    except PackageNotFoundError:
        server_version = "0"
    return {"name": "digitserve", "version": server_version, "extensions": []}


@router.get("/v2/health/live", tags=["open-inference-protocol"])
def v2_live():
    """Open Inference Protocol liveness."""
    return {"live": True}


@router.get("/v2/health/ready", tags=["open-inference-protocol"])
def v2_ready(request: Request):
    """Open Inference Protocol readiness."""
    ready = bool(getattr(request.app.state, "ready", False))
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


def _v2_model_metadata(settings) -> dict:
    return {
        "name": settings.model_name,
        "versions": ["1"],
        "platform": "tensorflow_keras",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, 28, 28]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, 10]}],
    }


@router.get("/v2/models/{model_name}", tags=["open-inference-protocol"])
def v2_model_metadata(model_name: str, settings: SettingsDep):
    """Open Inference Protocol model metadata."""
    if model_name != settings.model_name:
        return protocol_error(f"unknown model {model_name!r}", 404)
    return _v2_model_metadata(settings)


@router.get("/v2/models/{model_name}/ready", tags=["open-inference-protocol"])
def v2_model_ready(model_name: str, request: Request, settings: SettingsDep):
    """Open Inference Protocol model readiness."""
    if model_name != settings.model_name:
        return protocol_error(f"unknown model {model_name!r}", 404)
    ready = bool(getattr(request.app.state, "ready", False))
    return JSONResponse({"name": model_name, "ready": ready}, status_code=200 if ready else 503)


@router.post("/v2/models/{model_name}/infer", tags=["open-inference-protocol"])
def v2_infer(model_name: str, body: V2InferenceRequest, predictor: PredictorDep, settings: SettingsDep):
    """Open Inference Protocol inference: one FP32 tensor of shape [N, 28, 28], [N, 784] or [28, 28]."""
    if model_name != settings.model_name:
        return protocol_error(f"unknown model {model_name!r}", 404)
    if len(body.inputs) != 1:
        return protocol_error(f"expected exactly one input tensor named {INPUT_NAME!r}, got {len(body.inputs)}")
    tensor = body.inputs[0]
    if tensor.datatype.upper() != "FP32":
        return protocol_error(f"input datatype must be FP32, got {tensor.datatype}")
    try:
        values = np.asarray(tensor.data, dtype=np.float32)
    except (ValueError, TypeError):
        return protocol_error("data must be a flat or nested list of numbers")
    if any(dim < 1 for dim in tensor.shape) or math.prod(tensor.shape) != values.size:
        return protocol_error(f"shape {tensor.shape} does not match the {values.size} values sent")
    try:
        images = to_images(values.reshape(tensor.shape), settings.max_instances)
    except ProtocolError as error:
        return protocol_error(str(error), error.status)
    probabilities = predictor.predict_arrays(images)
    answer = {
        "model_name": model_name,
        "model_version": "1",
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [len(images), 10], "data": probabilities.ravel().tolist()}],
    }
    if body.id is not None:
        answer["id"] = body.id
    return answer
