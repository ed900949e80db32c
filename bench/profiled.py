"""``python -m bench.profiled orders``: the service exactly as ``python -m orders`` runs it, plus a pyinstrument
sampler that is off until SIGUSR1 and writes its report on SIGUSR2, so a profile covers only the load window
(not imports and startup) and the service code is not touched.

The report goes to ``$BENCH_PROFILE_OUTPUT`` (call tree) and the same path with ``.flat.txt`` (self time per
function). Samples are wall-clock (pyinstrument's default timer): the event loop's idle wait shows up as the
``[self]`` time of Sanic's ``_run_server_forever`` (uvloop's C loop), everything else is where the CPU went. On a
busy machine a preempted process charges the wait to the frame it was running, which is itself where the CPU
goes, so the proportions hold. A CPU-clock timer (``time.process_time``) costs far more per call event than the
wall clock, and slowed the profiled gateway until it could no longer keep up with the profiling load.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path
from types import FrameType

from pyinstrument import Profiler

SAMPLE_INTERVAL = 0.001


class SignalProfiler:
    def __init__(self, output: Path) -> None:
        self._output = output
        self._profiler = Profiler(interval=SAMPLE_INTERVAL, async_mode="disabled")

    def install(self) -> None:
        signal.signal(signal.SIGUSR1, self._start)
        signal.signal(signal.SIGUSR2, self._stop)

    def _start(self, _signum: int, _frame: FrameType | None) -> None:
        if not self._profiler.is_running:
            self._profiler.start()

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        if not self._profiler.is_running:
            return
        self._profiler.stop()
        self._output.with_suffix(".flat.txt").write_text(self._profiler.output_text(flat=True))
        # The call tree is written last and renamed into place: a reader polling for it finds both files whole.
        partial = self._output.with_suffix(".partial")
        partial.write_text(self._profiler.output_text(show_all=False))
        partial.replace(self._output)


def main(argv: list[str]) -> None:
    service = argv[1]
    SignalProfiler(Path(os.environ["BENCH_PROFILE_OUTPUT"])).install()
    sys.argv = [service]
    runpy.run_module(service, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
