"""Things handlers receive by injection, named once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.inference import Predictor


def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


def get_settings_from_app(request: Request) -> Settings:
    return request.app.state.settings


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
