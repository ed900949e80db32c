"""``make compose-test``: what exists of the compose test so far. It gets an engine and a Compose CLI, builds the
stand-in base images, checks that Compose accepts ``docker-compose.yml``, prints how long each step took, and
stops the daemon if it started it (``--keep`` leaves it running)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from stack.local import ROOT
from tests.compose import engine, images

T = TypeVar("T")
LOG = ROOT / "tests" / "artifacts" / "compose" / "dockerd.log"


@contextmanager
def timed(step: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    print(f"{step}: {time.monotonic() - began:.1f} s", flush=True)  # noqa: T201


def step(name: str, action: Callable[[], T]) -> T:
    with timed(name):
        return action()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave a daemon started here running")
    arguments = parser.parse_args(argv)
    daemon = step("engine", lambda: engine.start_daemon(LOG))
    try:
        step("compose CLI", engine.ensure_compose)
        step("python stand-in", images.ensure_python_standins)
        step("postgres stand-in", images.ensure_postgres_standins)
        step("kafka stand-in", images.ensure_kafka_standins)
        step("compose config", lambda: engine.run_checked("docker", "compose", "config", "-q", cwd=ROOT))
    except engine.Unavailable as error:
        print(f"compose test unavailable: {error}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        if not arguments.keep:
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
