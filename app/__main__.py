"""Run the service: python -m app (settings from DIGITSERVE_* environment variables)."""

from __future__ import annotations

import argparse
import gc
import logging.config
import signal
import socket
import subprocess
import sys
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.artifacts import read_copy
from app.classifier import Classifier, ModelLoadError, check_card_digest, checked_runtime, file_sha256
from app.config import Settings, get_settings
from app.logs import log_config
from app.main import create_app, load_classifier


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve digitserve; settings come from DIGITSERVE_* variables.")
    parser.add_argument("--check", action="store_true", help="load and check the model, cache its LiteRT copy, and exit (0: servable)")
    return parser.parse_args(argv)


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


def check_model() -> int:
    """0 when the configured model loads in full (and its LiteRT copy is cached), else 2 after printing why."""
    # A short-lived process: collecting garbage while TensorFlow imports only makes it slower.
    gc.disable()
    return 0 if load_model(get_settings()) is not None else 2


def has_checked_copy(settings: Settings) -> bool:
    """True when a cached LiteRT copy of the model still reproduces the Keras model's probabilities."""
    path = Path(settings.model_path)
    if settings.backend != "litert" or not settings.cache_dir or not path.is_file():
        return False
    try:
        check_card_digest(path, digest := file_sha256(path))
    except ModelLoadError:
        return False
    copy = read_copy(settings.cache_dir, digest)
    return copy is not None and checked_runtime(copy) is not None


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
    """Serve with several processes, each loading its own model through the app factory."""
    # A model that has been checked in full before is known by its cached copy; any other is
    # checked in a throwaway process, so that the supervisor itself never loads TensorFlow.
    if not has_checked_copy(settings):
        checker = subprocess.run([sys.executable, "-m", "app", "--check"], check=False)
        if checker.returncode != 0:
            return 2
    options = {**server_options(settings), "log_config": log_config(settings.log_level)}
    config = uvicorn.Config("app.main:create_app", factory=True, workers=settings.workers, **options)
    Multiprocess(config, sockets=[listening_socket(settings.host, settings.port)]).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    settings = get_settings()
    logging.config.dictConfig(log_config(settings.log_level))
    if arguments.check:
        return check_model()
    if settings.workers > 1:
        return run_workers(settings)
    # Load before serving so a bad model file stops the process with one sentence, not a traceback.
    classifier = load_model(settings, keras_in_background=True)
    if classifier is None:
        return 2
    app = create_app(settings, classifier=classifier)
    # Uvicorn drains in-flight requests on SIGTERM, then raises the signal again; this handler
    # receives it so that a clean, drained shutdown exits 0 rather than "killed by SIGTERM".
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(app, **server_options(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
