"""Things handlers receive by injection, named once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import UnknownModel
from app.inference import Predictor
from app.uploads import read_batch_upload, read_image_upload

# These are async although most never await: FastAPI runs a plain `def` dependency on the thread
# pool, a thread hop per request for what is an attribute read. The handlers are `def`, so each
# request crosses to the thread pool once, after its body has been read here on the event loop.


async def get_predictor(request: Request) -> Predictor:
    return request.state.predictor


async def get_settings_from_app(request: Request) -> Settings:
    return request.state.settings


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]


async def image_upload(request: Request, settings: SettingsDep) -> bytes:
    """The image of a /predict or /explain request."""
    return await read_image_upload(request, settings.max_upload_bytes)


async def batch_upload(request: Request, settings: SettingsDep) -> list[tuple[str | None, bytes]]:
    """The (file name, bytes) of each file of a /predict/batch request."""
    return await read_batch_upload(request, settings.max_batch_files, settings.max_upload_bytes)


async def served_model_name(model_name: str, predictor: PredictorDep) -> str:
    """The model a protocol URL names, when it is the one this server serves."""
    if model_name != predictor.model_name:
        raise UnknownModel(f"No model named {model_name!r}: this server serves {predictor.model_name!r}.")
    return model_name


ImageUpload = Annotated[bytes, Depends(image_upload)]
BatchUpload = Annotated[list[tuple[str | None, bytes]], Depends(batch_upload)]
ModelName = Annotated[str, Depends(served_model_name)]
