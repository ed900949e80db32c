"""`make run` as a user runs it: everything answers, and a SIGTERM leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack.local import ROOT, free_ports
from tests.helpers import as_operator

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(urls: list[str], process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending:
        assert process.poll() is None, "make run exited early"
        assert time.monotonic() < deadline, f"not healthy in time: {pending}"
        try:
            if httpx.get(pending[0], timeout=1).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


class MakeRun:
    """`make run` on free ports with its data in ``data_dir``, as a service manager would run it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        ports = free_ports(8)
        self.pg, self.kafka, controller, self.gateway, orders, payments, swagger, streamlit = ports
        self.env = {
            **os.environ,
            "GOZON_DATA_DIR": str(data_dir),
            "POSTGRES_PORT": str(self.pg),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.kafka}",
            "KAFKA_CONTROLLER_PORT": str(controller),
            "GATEWAY_PORT": str(self.gateway),
            "ORDERS_PORT": str(orders),
            "PAYMENTS_PORT": str(payments),
            "SWAGGER_PORT": str(swagger),
            "STREAMLIT_PORT": str(streamlit),
        }
        self.health = [f"http://127.0.0.1:{port}/health" for port in (self.gateway, orders, payments, swagger)]
        self.health.append(f"http://127.0.0.1:{streamlit}/_stcore/health")

    def start(self, log_name: str) -> subprocess.Popen:
        self.log = self.data_dir / log_name
        log = open(self.log, "wb")  # noqa: SIM115 - the child writes to it until it exits
        # The environment of the interpreter running the tests, which need not be the default one (make python-check).
        run = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.health, run)
        return run

    def terminate(self, run: subprocess.Popen) -> list[int]:
        """SIGTERM to the process group; returns the pids still alive 30 s later."""
        started = descendants(run.pid)
        started.add(int((self.data_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0]))
        assert len(started) >= 7
        os.killpg(run.pid, signal.SIGTERM)
        try:
            run.wait(30)
        except subprocess.TimeoutExpired:
            for pid in (run.pid, *started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
            pytest.fail(f"make run still running 30 s after SIGTERM; its log ends:\n{tail}")
        deadline = time.monotonic() + 30
        while (left := [pid for pid in started if alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left


@pytest.fixture
def make_run() -> Iterator[MakeRun]:
    data_dir = Path(tempfile.mkdtemp(prefix="gozon-run-"))
    data_dir.chmod(0o755)
    (data_dir / "kafka-dist").symlink_to(ROOT / ".data" / "kafka-dist")
    runner = MakeRun(data_dir)
    yield runner
    shutil.rmtree(data_dir, ignore_errors=True)


def test_make_run_serves_everything_stops_on_sigterm_and_keeps_its_data(make_run: MakeRun) -> None:
    user = {"X-User-Id": "persistent-user"}
    gateway = f"http://127.0.0.1:{make_run.gateway}"
    first = make_run.start("first.log")
    try:
        httpx.post(f"{gateway}/accounts", headers=user).raise_for_status()
        httpx.post(f"{gateway}/accounts/deposit", json={"amount": "10.00"}, headers=user).raise_for_status()
        order = httpx.post(f"{gateway}/orders", json={"amount": "4.00"}, headers=user).json()
        deadline = time.monotonic() + 30
        while httpx.get(f"{gateway}/orders/{order['id']}", headers=user).json()["status"] == "PENDING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        left = make_run.terminate(first)
    assert left == [], f"processes left behind: {left}"
    assert gateway in (make_run.data_dir / "first.log").read_text()

    second = make_run.start("second.log")
    try:
        balance = httpx.get(f"{gateway}/accounts/balance", headers=user).json()
        again = httpx.get(f"{gateway}/orders/{order['id']}", headers=user).json()
        ops = httpx.get(f"{gateway}/ops/payments", headers=as_operator()).json()
    finally:
        assert make_run.terminate(second) == []
    assert balance["balance"] == "6.00"
    assert again["status"] == "PAID"
    assert sum(ops["consumer_lag"].values()) == 0, "committed offsets survived, so nothing is re-read"
