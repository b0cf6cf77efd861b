"""Server test fixtures: a throw-away PostgreSQL cluster on loopback, and real uvicorn servers.

The PostgreSQL cluster is created with the Debian server binaries (scripts/install-postgres.sh). initdb
refuses to run as root, so as root the cluster directory belongs to the `postgres` user and the
binaries run through `runuser -u postgres --`.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from vdata.server.db import record_store
from vdata.server.serve import ThreadedServer
from vdata.server.settings import ServerSettings

MODERATOR_TOKEN = "test-moderator-token"
_db_counter = itertools.count()


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="vdata-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.sockets.mkdir()
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            user = pwd.getpwnam("postgres")
            for path in (self.base, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.base / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        # Throw-away cluster: no shutdown checkpoint needed.
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            # Tens of thousands of files (one database per test): removed in the background, because
            # deleting them took ~30 s of the suite's wall time on a loaded machine.
            subprocess.Popen(["rm", "-rf", str(self.base)], start_new_session=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"vdata_test_{next(_db_counter)}"
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))  # test-owned name, not user input
        engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb); run scripts/install-postgres.sh to test PostgreSQL"
        )
    cluster = PostgresCluster(bin_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def new_db_url(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'server.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database()


def server_settings(db_url: str, **overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {
        "db_url": db_url,
        "moderator_token": MODERATOR_TOKEN,
        "put_rate": 10_000.0,
        "put_burst": 10_000,
        "batch_size": 200,
        "max_body_bytes": 256 * 1024,
        "query_row_limit": 1000,
    }
    values.update(overrides)
    return ServerSettings(**values)


class Server:
    """A running server plus direct database access for checks (never used to drive the API)."""

    def __init__(self, threaded: ThreadedServer, settings: ServerSettings) -> None:
        self.url = threaded.url
        self.settings = settings
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.engine = create_engine(settings.db_url)

    def snapshot(self) -> str:
        """Digest of every stored row and the schema objects: any change at all changes it."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(record_store).order_by(record_store.c.seq)).all()
            if self.engine.dialect.name == "sqlite":
                schema = conn.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name")).all()
            else:
                schema = conn.execute(
                    text(
                        "SELECT table_name, table_type FROM information_schema.tables "
                        "WHERE table_schema = 'public' ORDER BY table_name"
                    )
                ).all()
        return hashlib.sha256(repr((rows, schema)).encode()).hexdigest()

    def count(self, status: str | None = None) -> int:
        stmt = select(record_store.c.id)
        if status:
            stmt = stmt.where(record_store.c.status == status)
        with self.engine.connect() as conn:
            return len(conn.execute(stmt).all())

    def moderate(self, record_id: str, status: str = "approved") -> httpx.Response:
        return self.http.put(
            f"/v1/records/{record_id}/status",
            json={"status": status},
            headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"},
        )

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()


def start_server(db_url: str, **overrides: Any) -> tuple[ThreadedServer, Server]:
    settings = server_settings(db_url, **overrides)
    threaded = ThreadedServer(settings).__enter__()
    return threaded, Server(threaded, settings)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """An empty server on a new database, per test, on each backend."""
    threaded, server = start_server(new_db_url(request.param, request, tmp_path_factory))
    try:
        yield server
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def run_in_threads(worker: Callable[[int], None], n: int) -> None:
    """Call worker(0..n-1) in n threads released together; re-raise the first error in the test thread."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            worker(i)
        except BaseException as e:  # a thread's failure must fail the test, not just print
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def sample_records(n: int, prefix: str = "Sample", category: str = "gender") -> list[dict[str, Any]]:
    return [
        {
            "text": f"{prefix} {category} sentence number {i}: nurses and engineers can be anyone.",
            "target": "nurses",
            "attribute": "anyone",
            "category": category,
            "strategy": "targeted",
            "provider": "test",
            "model": "none",
        }
        for i in range(n)
    ]


SEED_APPROVED = 40
SEED_PENDING = 10


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server holding SEED_APPROVED approved and SEED_PENDING pending records, per module and backend."""
    threaded, server = start_server(new_db_url(request.param, request, tmp_path_factory))
    try:
        approved = sample_records(SEED_APPROVED // 2, "Approved", "gender") + sample_records(
            SEED_APPROVED // 2, "Approved", "race"
        )
        pending = sample_records(SEED_PENDING, "Pending", "religion")
        response = server.http.put("/v1/records", json=approved + pending, params={"contributor": "seed"})
        assert response.status_code == 200, response.text
        for record_id in response.json()["accepted"][:SEED_APPROVED]:
            assert server.moderate(record_id).status_code == 200
        yield server
    finally:
        server.close()
        threaded.__exit__(None, None, None)
