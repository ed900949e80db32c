"""Runs one service instance in a single process, stopping cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

from sanic import Sanic

from servicekit import logs


def serve(factory: Callable[[], Sanic]) -> None:
    """``factory`` reads the settings (``app.ctx.settings``): where to listen, and the level to log at."""
    app = factory()
    config = app.ctx.settings
    logs.configure(config.log_level)
    app.run(host=config.host, port=config.port, single_process=True, motd=False, access_log=False)
