"""Things handlers receive by injection, named once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.inference import Predictor


# Async although they never await: FastAPI runs a plain `def` dependency on the thread pool, a
# thread hop per request for what is one attribute read.
async def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


async def get_settings_from_app(request: Request) -> Settings:
    return request.app.state.settings


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
