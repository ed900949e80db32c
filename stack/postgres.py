"""A PostgreSQL cluster owned by the project: created once in a data directory, started and stopped on demand.

The server binaries refuse to run as root, which is who CI and the development machines run as, so every
server-side command runs as the unprivileged ``postgres`` user when we are root.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

log = logging.getLogger("stack.postgres")

SERVER_USER = "postgres"
ROLE_SQL = (Path(__file__).parents[1] / "db" / "service_role.sql").read_text()
SUPERUSER = "gozon_admin"
OWNER_OF_DATABASE = "SELECT datdba::regrole::text FROM pg_database WHERE datname = $1"
# Full-page images dominate the WAL of retention deletes (every old page a batch touches is logged whole once per
# checkpoint), and every writer's commit flushes that WAL too. Compressing it shrinks the cleanup's extra WAL, and
# with it what the cleanup adds to the writers' commits (measured by the bench: bench/README.md, "Retention").
SERVER_SETTINGS = ("wal_compression=lz4",)


class MissingPrerequisite(RuntimeError):
    """A program the local stack needs is not installed."""


@dataclass(frozen=True)
class Login:
    """A role and its password, from a database URL."""

    role: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> Login:
        parts = urlsplit(url)
        return cls(role=parts.username or "", password=parts.password or "")


@dataclass(frozen=True)
class ServiceDatabase:
    """One service's database, the role that owns it (and runs the migrations), and the service's own role."""

    name: str
    owner: Login
    service: Login

    @classmethod
    def from_urls(cls, service_url: str, owner_url: str) -> ServiceDatabase:
        return cls(database_name(service_url), Login.from_url(owner_url), Login.from_url(service_url))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL server's bin directory (``PG_BIN_DIR`` overrides). Debian keeps the real
    binaries under /usr/lib/postgresql/<version>/bin; what is on PATH may be wrapper links without pgbench."""
    if configured := os.environ.get("PG_BIN_DIR"):
        candidates = [Path(configured)]
    else:
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
        candidates = [Path(p) for p in versions]
        if which := shutil.which("initdb"):
            candidates.append(Path(which).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").exists():
            return candidate
    raise MissingPrerequisite(
        "PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql) "
        "or run `docker compose up --build` instead"
    )


class PostgresCluster:
    """One cluster on 127.0.0.1:<port> whose data directory, socket and log all live under ``root``."""

    def __init__(self, root: Path, port: int, admin_password: str) -> None:
        self.root = root
        self.port = port
        self.admin_password = admin_password
        self.data_dir = root / "data"
        self.log_file = root / "server.log"
        self.bin_dir = find_bin_dir()

    @property
    def admin_dsn(self) -> str:
        return f"postgres://{SUPERUSER}:{self.admin_password}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        as_server_user = SERVER_USER if os.geteuid() == 0 else None
        # A session of its own: Ctrl-C in the terminal must not reach the server before we stop it in order.
        return subprocess.run(
            command, user=as_server_user, check=True, capture_output=True, text=True, start_new_session=True
        )

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        """Every parent must be traversable by the server user, or initdb fails with a puzzling error."""
        for parent in self.root.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise MissingPrerequisite(
                    f"{parent} is not traversable by the '{SERVER_USER}' user; put the data directory "
                    "elsewhere (GOZON_DATA_DIR) or chmod o+x it"
                )

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster once; an existing data directory is kept as it is."""
        if self.initialized:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        self._own(self.root)
        os.chmod(self.root, 0o700)
        password_file = self.root / "admin.pw"
        password_file.write_text(self.admin_password + "\n")
        self._own(password_file)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            password_file.unlink()
        log.info("initialized cluster in %s", self.data_dir)

    def is_running(self) -> bool:
        return self._status() == 0

    def _status(self) -> int:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"]
        as_server_user = SERVER_USER if os.geteuid() == 0 else None
        return subprocess.run(command, user=as_server_user, capture_output=True).returncode

    def start(self, *settings: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 " + " ".join(
            f"-c {setting}" for setting in (*SERVER_SETTINGS, *settings)
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "-o", options, "start"
        )
        log.info("postgres listening on 127.0.0.1:%d", self.port)

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    async def ensure_service_databases(self, databases: list[ServiceDatabase]) -> None:
        """Per service: an owner role and a database it owns, and the service's role, which may only connect to that
        one database (what it may do inside is granted by stack.migrate). A database made before the owner roles
        existed, owned by the service's role, is handed over to its owner with everything in it."""
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            for db in databases:
                for login in (db.owner, db.service):
                    await admin.execute(ROLE_SQL.format(role=login.role, password=login.password.replace("'", "''")))
                owner = await admin.fetchval(OWNER_OF_DATABASE, db.name)
                if owner is None:
                    await admin.execute(f'CREATE DATABASE "{db.name}" OWNER "{db.owner.role}"')
                elif owner.strip('"') != db.owner.role:
                    await self._hand_over(db, owner)
                await admin.execute(f'REVOKE ALL ON DATABASE "{db.name}" FROM PUBLIC')
                await admin.execute(f'GRANT CONNECT ON DATABASE "{db.name}" TO "{db.service.role}"')
        finally:
            await admin.close()

    async def _hand_over(self, db: ServiceDatabase, previous_owner: str) -> None:
        dsn = self.admin_dsn.rsplit("/", 1)[0] + f"/{db.name}"
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'REASSIGN OWNED BY {previous_owner} TO "{db.owner.role}"')
        finally:
            await conn.close()
        log.info("database %s handed over from %s to %s", db.name, previous_owner, db.owner.role)
