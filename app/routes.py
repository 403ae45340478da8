"""The prediction API, health and metrics: thin handlers over `Predictor`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import PredictorDep, SettingsDep
from app.errors import UploadTooLarge
from app.explain import Method
from app.schemas import BatchPrediction, ErrorBody, ExplainedPrediction, Health, Prediction
from app.uploads import read_form_files, read_image_upload, too_large_sentence

router = APIRouter()

ERROR_RESPONSES = {
    400: {"model": ErrorBody, "description": "Empty, truncated or corrupt image, or a malformed form"},
    413: {"model": ErrorBody, "description": "Upload larger than the byte limit, or image over the pixel limit"},
    415: {"model": ErrorBody, "description": "Not an image, or a Content-Type that is not accepted"},
    422: {"model": ErrorBody, "description": "Missing form field, invalid query, or no digit found in the image"},
}
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


@router.post("/predict", response_model=Prediction, responses=ERROR_RESPONSES, openapi_extra=IMAGE_BODY, tags=["predict"])
async def predict(request: Request, predictor: PredictorDep, settings: SettingsDep, include_image: bool = IncludeImage):
    """Classify one image: multipart field `file`, or the raw image as the body (`curl --data-binary`)."""
    data, _ = await read_image_upload(request, settings.max_upload_bytes)
    prediction = await predictor.predict_bytes(data, include_image)
    # Already a validated Prediction: serialise it directly instead of having FastAPI re-validate it.
    return Response(prediction.model_dump_json(), media_type="application/json")


@router.post("/predict/batch", response_model=BatchPrediction, responses=ERROR_RESPONSES, openapi_extra=BATCH_BODY, tags=["predict"])
async def predict_batch(request: Request, predictor: PredictorDep, settings: SettingsDep, include_image: bool = IncludeImage):
    """Classify several images (multipart field `files`); each gets a result or its own error, in order."""
    uploads = await read_form_files(request, "files", max_files=settings.max_batch_files)
    for name, data in uploads:
        if len(data) > settings.max_upload_bytes:
            raise UploadTooLarge(f"{name or 'a file'}: {too_large_sentence(settings.max_upload_bytes)}")
    return BatchPrediction(results=await predictor.predict_many(uploads, include_image))


@router.post("/explain", response_model=ExplainedPrediction, responses=ERROR_RESPONSES, openapi_extra=IMAGE_BODY, tags=["predict"])
async def explain(
    request: Request,
    predictor: PredictorDep,
    settings: SettingsDep,
    method: ExplainMethod = "gradcam",
):
    """Classify one image and show which pixels drove the answer, as a 28x28 heatmap and a PNG overlay."""
    data, _ = await read_image_upload(request, settings.max_upload_bytes)
    return await predictor.explain_bytes(data, method)


@router.get("/healthz", response_model=Health, tags=["operations"])
def healthz():
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["operations"], responses={503: {"description": "Not ready"}})
def readyz(request: Request, response: Response):
    """Readiness: the model is loaded and warmed up."""
    if getattr(request.app.state, "ready", False):
        return Health(status="ready")
    response.status_code = 503
    return Health(status="loading")


@router.get("/metrics", tags=["operations"], response_class=Response)
def metrics(request: Request):
    """Prometheus metrics: requests and latency by route and status, predictions by digit, model info."""
    metrics = request.app.state.metrics
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is not None:
        metrics.show_model(predictor.classifier)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
