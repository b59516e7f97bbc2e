"""A real PostgreSQL for the tests: ``initdb`` in a temporary folder and ``pg_ctl`` on a free
127.0.0.1 port, trust authentication, run as the unprivileged ``postgres`` user when the tests run
as root (PostgreSQL refuses root). ``unavailable()`` says why it cannot be had here (the tests that
need it are then skipped with that reason)."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _tool(name: str) -> str | None:
    for folder in ["/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which(name)


def unavailable() -> str | None:
    """Why a PostgreSQL server cannot be started here; None when it can."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg / psycopg_pool are not installed (pip install '.[postgres]')"
    for tool in ("initdb", "pg_ctl"):
        if _tool(tool) is None:
            return f"no {tool} (install Debian's postgresql package)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to run PostgreSQL as the postgres user"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, on 127.0.0.1:``port``; ``stop`` and ``start``
    again keep its data (the fault tests); ``close`` removes everything."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="errortaxa-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        os.chmod(self.folder, 0o700)
        self._run(_tool("initdb") or "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        self.start()

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder} " \
                  "-c max_connections=200 -c fsync=on"
        self._run(_tool("pg_ctl") or "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(_tool("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)


_shared: list[PostgresServer] = []


def shared_database() -> str:
    """A new database on a PostgreSQL shared by the whole process (started on first use, removed at
    exit): ``ERRORTAXA_TEST_STORE=postgresql`` runs the service suite's servers on one each."""
    if not _shared:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"ERRORTAXA_TEST_STORE=postgresql, but PostgreSQL: {reason}")
        _shared.append(PostgresServer())
        atexit.register(_shared[0].close)
    return _shared[0].new_database()
