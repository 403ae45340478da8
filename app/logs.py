"""Logging for the service: one format, written by a background thread, in every worker process."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class BackgroundHandler(logging.handlers.QueueHandler):
    """Queues records for a thread that writes them to stderr: a request never waits on the stream."""

    def __init__(self):
        super().__init__(queue.SimpleQueue())
        target = logging.StreamHandler(sys.stderr)
        target.setFormatter(logging.Formatter(LOG_FORMAT))
        self._listener = logging.handlers.QueueListener(self.queue, target)
        self._listener.start()
        # Records queued just before exit are still written.
        atexit.register(self._listener.stop)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The queue stays in this process, so the record goes as it is; the writing thread formats it.
        return record


def log_config(level: str) -> dict:
    """A `logging.config.dictConfig` for the service and uvicorn, applied in each worker process too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"background": {"()": BackgroundHandler}},
        # Libraries (TensorFlow, Matplotlib) narrate their work at INFO: only their warnings are shown.
        "root": {"handlers": ["background"], "level": "WARNING"},
        # The service's and uvicorn's own loggers pass their records to the root handler.
        "loggers": {name: {"handlers": [], "level": level.upper(), "propagate": True} for name in ("digitserve", "uvicorn", "uvicorn.error")},
    }


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up notes out of a program's output; effective only before TensorFlow is imported.

    The service's start-up line says which device serves, so a GPU that TensorFlow cannot reach
    still shows. A variable the user has set is left as it is.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN's notice is printed before TensorFlow reads its log level. The model call is
    # LiteRT's or, with the keras backend, meant for a GPU, so TensorFlow's oneDNN CPU kernels
    # are not needed.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
