"""Run the service: python -m app (settings from DIGITSERVE_* environment variables).

This is the process entry point, so the process-wide tuning for serving is done here and not in
the app factory: a test that builds an app leaves its process as it found it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys

import cv2
import uvicorn
from fastapi import FastAPI
from threadpoolctl import threadpool_limits
from uvicorn.supervisors import Multiprocess

from app.classifier import Classifier, ModelLoadError, cached_runtime, model_digest
from app.config import Settings, get_settings
from app.logs import log_config, quiet_tensorflow
from app.main import create_app, load_classifier

logger = logging.getLogger("digitserve")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve digitserve; settings come from DIGITSERVE_* variables.")
    parser.add_argument("--check", action="store_true", help="load and check the model, cache its LiteRT copy, and exit (0: servable)")
    return parser.parse_args(argv)


def tune_process(settings: Settings) -> None:
    """Process-wide settings for a serving process, made before the model loads."""
    # Preprocessing's small matrix products would otherwise wake BLAS's own thread pool on every
    # request, which then spins on the cores the request threads need.
    threadpool_limits(1, user_api="blas")
    # Likewise OpenCV's own pool: with a request per core already preprocessing, splitting each
    # filter across the cores as well only adds waiting (13% more requests a second without, measured).
    cv2.setNumThreads(1)
    # One thread suits a tiny network's ops: they finish faster inline than split across a pool,
    # and the other cores are busy preprocessing. TensorFlow reads these when it starts.
    if settings.model_threads > 0:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(settings.model_threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(settings.model_threads))
    # TensorFlow and the Keras model leave ~300k long-lived objects, and a full garbage
    # collection walks them all, stalling every thread for 0.3-0.45 s: several times while
    # they load, and about once a minute in each worker under load after that (measured).
    # Collect nothing while the model loads; freeze_heap() then hides what exists from later ones.
    gc.disable()


def freeze_heap() -> None:
    """Hide every object that exists now from the garbage collector for good, and turn it back on."""
    gc.freeze()
    gc.enable()


def server_options(settings: Settings) -> dict:
    """Uvicorn options shared by the one-process and the multi-process server."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,  # the app logs one line per request itself
        "log_config": None,  # configured once by main(); worker processes get log_config() below
        # Slow or idle clients must not hold connections open.
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 16 * 1024,
        # In-flight requests finish on SIGTERM; past this many seconds they are cut.
        "timeout_graceful_shutdown": 30,
    }


def load_model(settings: Settings, keras_in_background: bool = False) -> Classifier | None:
    """The checked, warmed-up model, or None after printing why it cannot be served."""
    try:
        return load_classifier(settings, keras_in_background)
    except ModelLoadError as error:
        print(f"digitserve: cannot start: {error}", file=sys.stderr)
        return None


def serving_app() -> FastAPI:
    """The app of one serving process, tuned and with its model loaded: what each worker process runs."""
    settings = get_settings()
    tune_process(settings)
    classifier = load_model(settings, keras_in_background=True)
    if classifier is None:
        raise SystemExit(2)
    classifier.when_model_loaded(freeze_heap)
    logger.info(
        "worker %d serves model %s (version %s) with %s on %s at http://%s:%d",
        os.getpid(),
        classifier.name,
        classifier.version,
        classifier.backend,
        classifier.device(),
        settings.host,
        settings.port,
    )
    return create_app(settings, classifier=classifier)


def check_model() -> int:
    """0 when the configured model loads in full (and its LiteRT copy is cached), else 2 after printing why."""
    # A short-lived process: collecting garbage while TensorFlow imports only makes it slower.
    gc.disable()
    return 0 if load_model(get_settings()) is not None else 2


def has_checked_copy(settings: Settings) -> bool:
    """True when the model would load from a cached LiteRT copy that still reproduces the Keras model."""
    try:
        digest = model_digest(settings.model_path)
    except ModelLoadError:
        return False
    return cached_runtime(digest, settings.backend, settings.cache_dir or None) is not None


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for worker processes to share.

    Created with IPPROTO_TCP: asyncio enables TCP_NODELAY on accepted connections only when the
    listener says it is TCP, and the socket uvicorn binds for --workers leaves that at 0, which
    adds a delayed-ACK wait (~40 ms) to every keep-alive response (uvicorn issue #3149).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def run_workers(settings: Settings) -> int:
    """Serve with several processes, each loading its own model (`serving_app`)."""
    # A model that has been checked in full before is known by its cached copy; any other is
    # checked in a throwaway process, so that the supervisor itself never loads TensorFlow.
    if not has_checked_copy(settings):
        checker = subprocess.run([sys.executable, "-m", "app", "--check"], check=False)
        if checker.returncode != 0:
            return 2
    options = {**server_options(settings), "log_config": log_config(settings.log_level)}
    config = uvicorn.Config("app.__main__:serving_app", factory=True, workers=settings.workers, **options)
    Multiprocess(config, sockets=[listening_socket(settings.host, settings.port)]).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()
    arguments = parse_args(argv)
    settings = get_settings()
    logging.config.dictConfig(log_config(settings.log_level))
    if arguments.check:
        return check_model()
    if settings.workers > 1:
        return run_workers(settings)
    # Load before serving so a bad model file stops the process with one sentence, not a traceback.
    try:
        app = serving_app()
    except SystemExit as stop:
        return int(stop.code)
    # Uvicorn drains in-flight requests on SIGTERM, then raises the signal again; this handler
    # receives it so that a clean, drained shutdown exits 0 rather than "killed by SIGTERM".
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(app, **server_options(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
