"""Run the service: python -m app (settings from DIGITSERVE_* environment variables)."""

from __future__ import annotations

import logging
import signal
import sys

import uvicorn

from app.classifier import Classifier, ModelLoadError
from app.config import get_settings
from app.main import create_app


def main() -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Load before serving so a bad model file stops the process with one sentence, not a traceback.
    try:
        classifier = Classifier.load(settings.model_path, name=settings.model_name)
    except ModelLoadError as error:
        print(f"digitserve: cannot start: {error}", file=sys.stderr)
        return 2
    app = create_app(settings, classifier=classifier)
    # Uvicorn drains in-flight requests on SIGTERM, then raises the signal again; this handler
    # receives it so that a clean, drained shutdown exits 0 rather than "killed by SIGTERM".
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # the app logs one line per request itself
        # Slow or idle clients must not hold connections open.
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
        # In-flight requests finish on SIGTERM; past this many seconds they are cut.
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
