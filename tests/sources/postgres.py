"""A real PostgreSQL server for the tests (Debian's package), on 127.0.0.1, in a temp dir.

``make test`` installs PostgreSQL when it is missing; if it still cannot be found, the
fixture fails loudly (never skips): the scale-out path must be tested in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.tempdirs import reachable_temp_root


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server programs are not installed."""


@dataclass
class Postgres:
    """A running cluster."""

    folder: Path
    port: int
    bin_dir: Path

    def uri(self, database: str = "mlflow") -> str:
        """SQLAlchemy URI of ``database`` (trust auth on loopback: no password)."""
        return f"postgresql://runreview@127.0.0.1:{self.port}/{database}"


def find_bin_dir() -> Path:
    """The folder with initdb / pg_ctl (Debian keeps them out of PATH)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if versions:
        return versions[0].parent
    found = shutil.which("pg_ctl")
    if found and (Path(found).parent / "initdb").exists():
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed, so the PostgreSQL-backed MLflow server cannot be "
        "tested: run `make test` (it installs Debian's postgresql) or `apt-get install postgresql`"
    )


def _as_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_postgres(port: int) -> Postgres:
    """initdb + start a cluster listening on 127.0.0.1:``port``; creates database mlflow."""
    bin_dir = find_bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="runreview-pg-", dir=reachable_temp_root()))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"

    def run(*cmd):
        return subprocess.run(
            _as_owner([str(c) for c in cmd]), check=True, capture_output=True, timeout=120
        )

    run(
        bin_dir / "initdb",
        "-D",
        data,
        "-U",
        "runreview",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
    )
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
    run(
        bin_dir / "pg_ctl",
        "-D",
        data,
        "-l",
        folder / "server.log",
        "-o",
        options,
        "-w",
        "-t",
        "60",
        "start",
    )
    pg = Postgres(folder, port, bin_dir)
    try:
        _wait_ready(pg)
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "runreview", "mlflow")
    except BaseException:
        stop_postgres(pg)  # never leave a server behind
        raise
    return pg


def _wait_ready(pg: Postgres, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    ready = pg.bin_dir / "pg_isready"
    while time.monotonic() < deadline:
        done = subprocess.run(
            [str(ready), "-h", "127.0.0.1", "-p", str(pg.port)], capture_output=True
        )
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(
        f"PostgreSQL did not start: {(pg.folder / 'server.log').read_text()[-2000:]}"
    )


def stop_postgres(pg: Postgres) -> None:
    """Stop the cluster and delete its folder."""
    subprocess.run(
        _as_owner(
            [str(pg.bin_dir / "pg_ctl"), "-D", str(pg.folder / "data"), "-m", "immediate", "stop"]
        ),
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(pg.folder, ignore_errors=True)
