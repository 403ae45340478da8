"""The app factory, and the lifespan that loads the model once and yields what handlers need."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app import protocols, routes
from app.classifier import Classifier
from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.inference import Predictor
from app.observability import Metrics, RequestObserver
from app.security_headers import SecurityHeaders
from app.uploads import MULTIPART_OVERHEAD, BodySizeLimit

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, classifier: Classifier | None = None) -> FastAPI:
    """Build the service; the model is loaded in the lifespan unless a loaded `classifier` is given.

    The factory changes nothing outside the app it returns: process-wide tuning for serving is
    `python -m app`'s (app/__main__.py).
    """
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loaded = classifier or load_classifier(settings, keras_in_background=True)
        metrics.show_model(loaded)
        # Each request's `request.state` holds these; the service is ready once the predictor exists.
        yield {"predictor": Predictor(loaded, metrics, settings.max_pixels), "settings": settings, "metrics": metrics}

    app = FastAPI(
        title="digitserve",
        summary="Handwritten-digit recognition: upload an image, get the digit and the 10 class probabilities.",
        version=package_version(),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(protocols.router)
    if (STATIC_DIR / "index.html").is_file():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def page():
            return FileResponse(STATIC_DIR / "index.html")

    def body_limit(path: str) -> tuple[int, int]:
        if path in ("/predict", "/explain"):
            return settings.max_upload_bytes + MULTIPART_OVERHEAD, settings.max_upload_bytes
        return settings.max_batch_bytes, settings.max_batch_bytes

    app.add_middleware(BodySizeLimit, limit_for_path=body_limit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestObserver, metrics=metrics)
    return app


def load_classifier(settings: Settings, keras_in_background: bool = False) -> Classifier:
    """The configured model, checked and warmed up, with its LiteRT copy cached for the next start."""
    return Classifier.load(
        settings.model_path,
        settings.model_name,
        settings.backend,
        settings.model_threads,
        cache_dir=settings.cache_dir or None,
        keras_in_background=keras_in_background,
    )


def package_version() -> str:
    """The installed digitserve's version, or "0" when it runs from a checkout that is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("digitserve")
    except PackageNotFoundError:
        return "0"
