"""One log line per event, each carrying the request id of the request (or message) it belongs to."""

from __future__ import annotations

import logging

from servicekit.requests import current_request_id

FORMAT = "%(asctime)s %(levelname)s %(name)s [rid=%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


def configure(level: str = "INFO") -> None:
    """Use with ``Sanic(..., configure_logging=False)`` so Sanic's loggers propagate here. ``level`` is the
    process's ``LOG_LEVEL`` setting (a level name, any case)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "tortoise", "asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
