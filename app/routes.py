"""The prediction API, health and metrics: thin `def` handlers over `Predictor.classify`, and `async` probes that answer while the pool is busy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import BatchUpload, ImageUpload, PredictorDep
from app.errors import NotADigit, error_answer, error_reason
from app.explain import Method
from app.preprocess import PreprocessError
from app.schemas import BatchError, BatchItem, BatchPrediction, ErrorBody, ExplainedPrediction, Health, NumberReading, Prediction
from app.segmentation import MAX_DIGITS

router = APIRouter()

ERROR_RESPONSES = {
    400: {"model": ErrorBody, "description": "Empty, truncated or corrupt image, or a malformed form"},
    413: {"model": ErrorBody, "description": "Upload larger than the byte limit, or image over the pixel limit"},
    415: {"model": ErrorBody, "description": "Not an image, or a Content-Type that is not accepted"},
    422: {"model": ErrorBody, "description": "Missing form field, invalid query, or no digit found in the image"},
}
READ_RESPONSES = {**ERROR_RESPONSES, 422: {"model": ErrorBody, "description": f"Missing form field, no digit, or over {MAX_DIGITS} digits"}}
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    }
}
ExplainMethod = Annotated[Method, Query(description="gradcam (default), saliency or occlusion")]
IncludeImage = Query(False, description="also return the 28x28 image the model saw, as a PNG data URL")
AcceptUncertain = Query(False, description="answer 200 with the best guess and is_digit false, not 422, for an image that is not one digit")


@router.post("/predict", response_model=Prediction, responses=ERROR_RESPONSES, openapi_extra=IMAGE_BODY, tags=["predict"])
def predict(upload: ImageUpload, predictor: PredictorDep, include_image: bool = IncludeImage, accept_uncertain: bool = AcceptUncertain):
    """Classify one image: multipart field `file`, or the raw image as the body (`curl --data-binary`)."""
    [reading] = predictor.classify([upload])
    # Already a valid Prediction: serialised directly instead of having FastAPI validate it again.
    return Response(reading.prediction(include_image, accept_uncertain).model_dump_json(), media_type="application/json")


@router.post("/predict/batch", response_model=BatchPrediction, responses=ERROR_RESPONSES, openapi_extra=BATCH_BODY, tags=["predict"])
def predict_batch(uploads: BatchUpload, predictor: PredictorDep, include_image: bool = IncludeImage, accept_uncertain: bool = AcceptUncertain):
    """Classify several images (multipart field `files`); each gets a result or its own error, in order."""
    readings = predictor.classify([data for _, data in uploads])
    results = []
    for (name, _), reading in zip(uploads, readings, strict=True):
        try:
            results.append(BatchItem(filename=name, prediction=reading.prediction(include_image, accept_uncertain)))
        except (PreprocessError, NotADigit) as error:
            status, detail = error_answer(error)
            results.append(BatchItem(filename=name, error=BatchError(status=status, detail=detail, reason=error_reason(error))))
    return BatchPrediction(results=results)


@router.post("/explain", response_model=ExplainedPrediction, responses=ERROR_RESPONSES, openapi_extra=IMAGE_BODY, tags=["predict"])
def explain(upload: ImageUpload, predictor: PredictorDep, method: ExplainMethod = "gradcam", accept_uncertain: bool = AcceptUncertain):
    """Classify one image and show which pixels drove the answer, as a 28x28 heatmap and a PNG overlay."""
    [reading] = predictor.classify([upload])
    prediction = reading.prediction(accept_uncertain=accept_uncertain)
    return ExplainedPrediction(**prediction.model_dump(), explanation=predictor.explain(reading, method))


@router.post("/read", response_model=NumberReading, responses=READ_RESPONSES, openapi_extra=IMAGE_BODY, tags=["predict"])
def read(upload: ImageUpload, predictor: PredictorDep):
    """Read a written number of up to 16 digits: multipart field `file`, or the raw image as the body; each digit with its box."""
    return predictor.read_number(upload)


@router.get("/healthz", response_model=Health, tags=["operations"])
async def healthz():
    """Liveness: the process answers, even while every worker thread is busy (a probe must not wait for the pool)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["operations"], responses={503: {"description": "Not ready"}})
async def readyz(request: Request, response: Response):
    """Readiness: the model is loaded and warmed up, that is, the predictor exists."""
    if getattr(request.state, "predictor", None) is not None:
        return Health(status="ready")
    response.status_code = 503
    return Health(status="loading")


@router.get("/metrics", tags=["operations"], response_class=Response)
def metrics(request: Request):
    """Prometheus metrics: requests and latency by route and status, predictions by digit, model info."""
    metrics = request.state.metrics
    metrics.show_model(request.state.predictor.classifier)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
