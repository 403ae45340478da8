"""The service's settings: one class, read from DIGITSERVE_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "model" / "digitserve.keras"


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/digitserve, or ~/.cache/digitserve."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digitserve"


class Settings(BaseSettings):
    """Every knob of the service, with working defaults; override with DIGITSERVE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="DIGITSERVE_", protected_namespaces=())

    model_path: Path = Field(SHIPPED_MODEL, description="the .keras model file to serve")
    model_name: str = Field("digitserve", description="the model's name in responses and protocol URLs")
    max_upload_bytes: int = Field(5 * 1024 * 1024, gt=0, description="largest accepted image upload")
    max_batch_bytes: int = Field(64 * 1024 * 1024, gt=0, description="largest accepted /predict/batch body")
    max_pixels: int = Field(25_000_000, gt=0, description="largest accepted width x height")
    max_batch_files: int = Field(64, gt=0, description="most files in one /predict/batch request")
    max_instances: int = Field(1024, gt=0, description="most tensors in one protocol (TF Serving, v2) request")
    backend: Literal["litert", "keras"] = Field(
        "litert", description="the model call: litert (a CPU copy checked against the Keras model) or keras (TensorFlow, for a GPU)"
    )
    cache_dir: Path | Literal[""] = Field(
        default_factory=default_cache_dir, description="where LiteRT copies are kept for fast restarts; empty to convert at every start"
    )
    model_threads: int = Field(1, ge=0, le=64, description="threads the model call uses (0: the backend's choice)")
    # Two processes double throughput on two cores (each has its own interpreter lock) for one more copy of TensorFlow in memory.
    workers: int = Field(
        default_factory=lambda: min(2, len(os.sched_getaffinity(0))), ge=1, le=16, description="server processes, each with its own copy of the model"
    )
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, gt=0, lt=65536, description="port to listen on")
    log_level: str = Field("info", description="debug, info, warning or error")


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once."""
    return Settings()
