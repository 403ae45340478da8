"""Logging for the service: one format, written by a background thread, in every worker process."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
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
        "root": {"handlers": ["background"], "level": level.upper()},
        # Uvicorn's own loggers pass their records to the root handler.
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
