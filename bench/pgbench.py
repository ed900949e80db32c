"""The PostgreSQL bound: ``pgbench -N`` (simple update: one UPDATE, one SELECT, one INSERT per transaction,
each transaction a durable commit) against the stack's own cluster, in a database of its own."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import procs
from stack.postgres import SUPERUSER, MissingPrerequisite, PostgresCluster

DATABASE = "pgbench"
TPS_LINE = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
PROCESSED_LINE = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
# Each order needs at least three durable commits: order + outbox, debit + inbox + outbox, status update.
COMMITS_PER_ORDER = 3


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    clients: int
    seconds: int
    fsync: str
    synchronous_commit: str
    cpu_share: float

    @property
    def orders_bound(self) -> float:
        return self.tps / COMMITS_PER_ORDER


def pgbench_binary(cluster: PostgresCluster) -> Path:
    """The pgbench next to the server binaries. The bin dir may hold only symlinks to the server (as in
    /usr/local/bin on some machines), so look beside the file the ``postgres`` link points to as well."""
    for directory in (cluster.bin_dir, (cluster.bin_dir / "postgres").resolve().parent):
        if (directory / "pgbench").exists():
            return directory / "pgbench"
    if found := shutil.which("pgbench"):
        return Path(found)
    raise MissingPrerequisite("pgbench not found next to the PostgreSQL server binaries nor on PATH")


def load_options(clients: int, seconds: int) -> list[str]:
    """No vacuum of pgbench's own tables first, ``clients`` connections, one thread per core, ``seconds`` long."""
    return ["-n", "-c", str(clients), "-j", str(os.cpu_count() or 1), "-T", str(seconds)]


def tps_of(output: str) -> float:
    match = TPS_LINE.search(output)
    if match is None:
        raise RuntimeError(f"no TPS in pgbench output:\n{output}")
    return float(match.group(1))


def transactions_of(output: str) -> int:
    match = PROCESSED_LINE.search(output)
    if match is None:
        raise RuntimeError(f"no transaction count in pgbench output:\n{output}")
    return int(match.group(1))


def children_cpu_seconds() -> float:
    """User + system CPU of this process's children that have ended (pgbench runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cluster_cpu_seconds(postmaster: int) -> float:
    """CPU the cluster has used so far: the postmaster, its live children, and every child it has reaped (its
    ``cutime`` + ``cstime``). A pgbench run's backends have exited by the time pgbench returns, so a sum over
    the live processes alone would miss them."""
    stat = Path(f"/proc/{postmaster}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields from its closing parenthesis.
    fields = stat.rsplit(")", 1)[1].split()
    own_and_reaped = sum(int(value) for value in fields[11:15]) / procs.CLOCK_TICKS
    return own_and_reaped + sum(procs.cpu_seconds(child) for child in procs.children(postmaster))


class Pgbench:
    def __init__(self, cluster: PostgresCluster, scale: int = 1) -> None:
        self._cluster = cluster
        self._scale = scale
        self._binary = pgbench_binary(cluster)
        self._env = {**os.environ, "PGPASSWORD": cluster.admin_password}
        self._connection = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", SUPERUSER]

    async def settings(self) -> dict[str, str]:
        admin = await asyncpg.connect(self._cluster.admin_dsn)
        try:
            return {name: await admin.fetchval(f"SHOW {name}") for name in ("fsync", "synchronous_commit")}
        finally:
            await admin.close()

    async def initialise(self) -> None:
        """A fresh ``pgbench`` database, created by the admin role and filled by ``pgbench -i``."""
        admin = await asyncpg.connect(self._cluster.admin_dsn)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
            await admin.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await admin.close()
        await self._pgbench("-i", "-q", "-s", str(self._scale))

    async def run(self, clients: int, seconds: int) -> PgbenchResult:
        before = children_cpu_seconds()
        output = await self._pgbench("-N", *load_options(clients, seconds))
        return PgbenchResult(
            tps=tps_of(output),
            clients=clients,
            seconds=seconds,
            cpu_share=round((children_cpu_seconds() - before) / seconds, 3),
            **await self.settings(),
        )

    async def run_script(self, database: str, script: Path, clients: int, seconds: int, **variables: str) -> str:
        """A custom script (``-f``, prepared statements as the services' asyncpg uses) against ``database``;
        returns pgbench's output. Any failed transaction aborts the run, and this raises."""
        defined = [option for name, value in variables.items() for option in ("-D", f"{name}={value}")]
        options = ["-M", "prepared", *defined, *load_options(clients, seconds), "-f", str(script)]
        return await self._pgbench(*options, database=database)

    async def _pgbench(self, *args: str, database: str = DATABASE) -> str:
        command = [str(self._binary), *self._connection, *args, database]
        process = await asyncio.create_subprocess_exec(
            *command, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{output.decode()}")
        return output.decode()
