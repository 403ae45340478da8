"""The app factory and the lifespan that loads the model once, warms it up, then reports ready."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from app import protocols, routes
from app.batching import MicroBatcher
from app.classifier import Classifier
from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.inference import Predictor
from app.observability import Metrics, RequestObserver, SecurityHeaders
from app.uploads import MULTIPART_OVERHEAD, BodySizeLimit

logger = logging.getLogger("digitserve")
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, classifier: Classifier | None = None) -> FastAPI:
    """Build the service; the model is loaded in the lifespan unless a loaded `classifier` is given."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Preprocessing's small matrix products would otherwise wake BLAS's own thread pool on every
        # request, which then spins on the cores the preprocessing threads need.
        threadpool_limits(1, user_api="blas")
        # TensorFlow and the Keras model leave ~300k long-lived objects, and a full garbage
        # collection walks them all, stalling every thread for 0.3-0.45 s: several times while
        # they load, and about once a minute in each worker under load after that (measured).
        # Collect nothing while the model loads, then freeze what exists so later ones skip it.
        gc.disable()
        try:
            loaded = classifier or load_classifier(settings, keras_in_background=True)
        except BaseException:
            gc.enable()
            raise
        # In the background when the Keras model is still loading, at once otherwise.
        loaded.when_model_loaded(freeze_heap)
        metrics.show_model(loaded)
        # With batching off (a maximum of 1) requests still take turns on the model, one image a call.
        batcher = MicroBatcher(loaded.predict, settings.batch_max_size, settings.batch_max_wait_ms)
        predictor = Predictor(loaded, metrics, settings.max_pixels, batcher, settings.preprocess_threads)
        app.state.predictor = predictor
        app.state.ready = True
        logger.info(
            "model %s (version %s) from %s, served by %s on %s", loaded.name, loaded.version, settings.model_path, loaded.backend, loaded.device()
        )
        yield
        app.state.ready = False
        predictor.close()

    app = FastAPI(
        title="digitserve",
        summary="Handwritten-digit recognition: upload an image, get the digit and the 10 class probabilities.",
        version=_package_version(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.ready = False
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


def freeze_heap() -> None:
    """Hide every object that exists now from the garbage collector for good, and turn it back on."""
    gc.freeze()
    gc.enable()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("digitserve")
    except PackageNotFoundError:
        return "0"
