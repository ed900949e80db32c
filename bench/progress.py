"""A one-line progress bar on stderr: phase, bar, elapsed/planned seconds and a live status."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TextIO

WIDTH = 24


class Progress:
    def __init__(self, on_tick: Callable[[], None] = lambda: None, stream: TextIO = sys.stderr) -> None:
        self._on_tick = on_tick
        self._stream = stream
        self._live = stream.isatty()

    def note(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    @contextlib.asynccontextmanager
    async def phase(
        self, label: str, planned_seconds: float | None = None, status: Callable[[], str] = lambda: ""
    ) -> AsyncIterator[None]:
        """Redraw every half second while the body runs (only on a terminal); one final line either way."""
        start = time.monotonic()
        ticker = asyncio.create_task(self._tick(label, start, planned_seconds, status))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self._draw(label, start, planned_seconds, status(), final=True)

    async def _tick(self, label: str, start: float, planned: float | None, status: Callable[[], str]) -> None:
        while True:
            self._on_tick()
            if self._live:
                self._draw(label, start, planned, status(), final=False)
            await asyncio.sleep(0.5)

    def _draw(self, label: str, start: float, planned: float | None, status: str, final: bool) -> None:
        elapsed = time.monotonic() - start
        if planned:
            done = WIDTH if final else min(WIDTH, int(WIDTH * elapsed / planned))
            bar = f"[{'#' * done}{'.' * (WIDTH - done)}] {elapsed:5.1f}/{planned:.0f}s"
        else:
            bar = f"{elapsed:5.1f}s"
        line = f"{label:<28} {bar}  {status}"
        if self._live:
            self._stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
        elif final:
            self._stream.write(line + "\n")
        self._stream.flush()
