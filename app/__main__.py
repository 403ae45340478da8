"""Run the service: python -m app (settings from DIGITSERVE_* environment variables)."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.classifier import Classifier, ModelLoadError, set_compute_threads
from app.config import Settings, get_settings
from app.main import create_app


def server_options(settings: Settings) -> dict:
    """Uvicorn options shared by the one-process and the multi-process server."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,  # the app logs one line per request itself
        # Slow or idle clients must not hold connections open.
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 16 * 1024,
        # In-flight requests finish on SIGTERM; past this many seconds they are cut.
        "timeout_graceful_shutdown": 30,
    }


def load_model(settings: Settings) -> Classifier | None:
    """The checked, warmed-up model, or None after printing why it cannot be served."""
    set_compute_threads(settings.model_threads)
    try:
        return Classifier.load(settings.model_path, name=settings.model_name)
    except ModelLoadError as error:
        print(f"digitserve: cannot start: {error}", file=sys.stderr)
        return None


def check_model() -> int:
    """0 when the configured model loads, else 2 after printing why."""
    return 0 if load_model(get_settings()) is not None else 2


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
    # Check the model in a throwaway process: the supervisor itself never loads TensorFlow.
    checker = subprocess.run([sys.executable, "-c", "import sys; from app.__main__ import check_model; sys.exit(check_model())"], check=False)
    if checker.returncode != 0:
        return 2
    config = uvicorn.Config("app.main:create_app", factory=True, workers=settings.workers, **server_options(settings))
    Multiprocess(config, sockets=[listening_socket(settings.host, settings.port)]).run()
    return 0


def main() -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.workers > 1:
        return run_workers(settings)
    # Load before serving so a bad model file stops the process with one sentence, not a traceback.
    classifier = load_model(settings)
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
