"""``make run``: the whole system in the foreground until Ctrl-C or SIGTERM, data kept under ``.data/``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from stack.local import ROOT, LocalStack, Ports
from stack.postgres import MissingPrerequisite
from stack.secrets import operator_token

log = logging.getLogger("stack.run")


class StopRequest:
    """The signal handler: it only sets a flag.

    ``threading.Event.set()`` would take the lock that ``Event.wait()`` in the interrupted main thread may hold, and
    hang ``make run`` forever on Ctrl-C.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = StopRequest()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    data_dir = Path(os.environ.get("GOZON_DATA_DIR", ROOT / ".data")).resolve()
    token, token_file = operator_token(data_dir)
    try:
        stack = LocalStack(data_dir=data_dir, ports=Ports.from_env(), extra_env={"GOZON_OPERATOR_TOKEN": token})
    except MissingPrerequisite as exc:
        print(f"make run: {exc}", file=sys.stderr)  # noqa: T201 - the one line the user needs
        return 2
    try:
        stack.start_infrastructure()
        stack.start_services(with_ui=True)
        _print_urls(stack.ports, token_file)
        while not stop.requested:
            time.sleep(0.5)
            if dead := [p.name for p in stack.processes if not p.alive]:
                log.error("%s exited; stopping everything", ", ".join(dead))
                return 1
        return 0
    except MissingPrerequisite as exc:
        print(f"make run: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        log.info("stopping")
        stack.stop()
        log.info("stopped; data kept in %s", data_dir)


def _print_urls(ports: Ports, token_file: Path | None) -> None:
    token = f"in {token_file}" if token_file else "from GOZON_OPERATOR_TOKEN"
    lines = [
        "",
        "Gozon is running. Ctrl-C stops everything.",
        f"  Gateway (public API)  http://127.0.0.1:{ports.gateway}",
        f"  Streamlit UI          http://127.0.0.1:{ports.streamlit}",
        f"  Swagger UI            http://127.0.0.1:{ports.swagger}",
        f"  Orders service        http://127.0.0.1:{ports.orders}",
        f"  Payments service      http://127.0.0.1:{ports.payments}",
        f"  PostgreSQL            127.0.0.1:{ports.postgres}",
        f"  Kafka                 127.0.0.1:{ports.kafka}",
        f"  Operator token        {token} (Authorization: Bearer ... on /ops/*)",
        "",
    ]
    print("\n".join(lines), flush=True)  # noqa: T201 - the user-facing banner


if __name__ == "__main__":
    sys.exit(main())
