"""A Docker engine and a Compose v2+ CLI for the compose test, got the way ``../shared/DOCKER.md`` found to work
on this machine kind: Debian's ``docker.io`` when ``dockerd`` is missing (as root only), ``dockerd`` started by
hand when no daemon answers, and Compose built with Go from the module proxy when ``docker compose`` is missing.
What is built is cached outside the clone (``GOZON_CACHE_DIR``), so only the first run pays for it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("GOZON_CACHE_DIR", Path.home() / ".cache" / "gozon"))
COMPOSE_PACKAGE = "github.com/docker/compose/v5/cmd"
COMPOSE_VERSION = "v5.6.0"
GO = os.environ.get("GOZON_GO") or shutil.which("go") or "/usr/local/go/bin/go"
DOCKER_CONFIG = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))


class Unavailable(RuntimeError):
    """Docker cannot be had here; the message says why (a test skips with it)."""


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise Unavailable(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def run(*command: str, timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def run_checked(*command: str, timeout: float = 600, **kwargs: object) -> str:
    result = run(*command, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise Unavailable(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def apt_install(*packages: str) -> None:
    """Debian's packages, as root only (as ``make test`` installs chromium)."""
    if os.geteuid() != 0:
        raise Unavailable(f"{', '.join(packages)} missing, and installing it needs root")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_checked("apt-get", "update", "-qq", env=environment)
    run_checked("apt-get", "install", "-y", "-qq", *packages, env=environment)


def install_engine() -> None:
    if shutil.which("dockerd") is None:
        apt_install("docker.io")


def daemon_answers() -> bool:
    try:
        return run("docker", "info", "--format", "{{.ServerVersion}}", timeout=10).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


@dataclass
class Daemon:
    """The engine in use; ``process`` is set only when we started it, so ``stop`` never stops someone else's."""

    process: subprocess.Popen[bytes] | None
    log: Path

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_daemon(log: Path, timeout: float = 60) -> Daemon:
    """The daemon that answers, or one started here (its output in ``log``) once it answers."""
    if daemon_answers():
        return Daemon(None, log)
    install_engine()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(["dockerd"], stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    daemon = Daemon(process, log)
    try:
        wait_until(lambda: process.poll() is not None or daemon_answers(), timeout, "dockerd answering")
    except Unavailable:
        daemon.stop()
        raise
    if process.poll() is not None:
        raise Unavailable(f"dockerd exited {process.returncode}; its log: {log}")
    return daemon


def compose_works() -> bool:
    try:
        return run("docker", "compose", "version", timeout=30).returncode == 0
    except FileNotFoundError:
        return False


def ensure_compose() -> None:
    """A ``docker compose`` that works: the one installed, or the cached build installed as a CLI plugin."""
    if compose_works():
        return
    binary = CACHE / f"docker-compose-{COMPOSE_VERSION}"
    if not binary.exists():
        build_compose(binary)
    install_plugin(binary)
    if not compose_works():
        raise Unavailable(f"docker compose still fails with the plugin {binary}")


def ensure_compose_v1() -> str:
    """Debian's ``docker-compose`` 1.29 (Compose v1), which many users still have: the file must suit it too."""
    if shutil.which("docker-compose") is None:
        apt_install("docker-compose")
    return shutil.which("docker-compose") or "docker-compose"


def build_compose(binary: Path) -> None:
    # `go install pkg@version` refuses a module whose go.mod has replace directives; a throwaway module does not.
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.partial")
    with tempfile.TemporaryDirectory(prefix="gozon-compose-") as module:
        run_checked(GO, "mod", "init", "x", cwd=module)
        run_checked(GO, "get", f"{COMPOSE_PACKAGE}@{COMPOSE_VERSION}", cwd=module, timeout=1200)
        run_checked(GO, "build", "-o", str(partial), COMPOSE_PACKAGE, cwd=module, timeout=1800)
    partial.rename(binary)


def install_plugin(binary: Path) -> None:
    plugin = DOCKER_CONFIG / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    if plugin.is_symlink() or plugin.exists():
        plugin.unlink()
    plugin.symlink_to(binary)
