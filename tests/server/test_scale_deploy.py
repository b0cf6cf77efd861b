"""docs/deploy.md, the parts that run here: roles from scripts/deploy/roles.sql (as a superuser), the
server on its own unprivileged login (it runs the migrations itself), /v1/query under the read-only
role, and a pg_dump + pg_restore round trip that loses nothing and keeps the counts' triggers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from vdata.server import db

from .conftest import PostgresCluster, _postgres_bin, sample_records, start_server

pytestmark = pytest.mark.postgres

ROLES_SQL = Path(__file__).resolve().parents[2] / "scripts" / "deploy" / "roles.sql"


def run_client(*args: str) -> str:
    """A PostgreSQL client program (psql, pg_dump, pg_restore); these, unlike initdb, run as root."""
    done = subprocess.run(list(args), capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def psql(cluster: PostgresCluster, *args: str) -> str:
    return run_client(
        str(cluster.bin_dir / "psql"),
        *("-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-X", "-q"),
        *args,
    )


def table_digest(url: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM record_store ORDER BY seq")).all()
            counts = conn.execute(text("SELECT * FROM stats ORDER BY 1, 2, 3, 4")).all()
            moderation = conn.execute(text("SELECT count(*) FROM moderation_log")).scalar_one()
        return [*map(tuple, rows), *map(tuple, counts), (moderation,)]
    finally:
        engine.dispose()


@pytest.fixture
def fresh_cluster() -> Iterator[PostgresCluster]:
    """A cluster of its own: roles are cluster-wide, and the session's cluster holds other tests' grants."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb); run scripts/install-postgres.sh")
    cluster = PostgresCluster(bin_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_roles_migrations_readonly_query_and_dump_restore(
    fresh_cluster: PostgresCluster, tmp_path: Path
) -> None:
    cluster = fresh_cluster
    psql(cluster, "-d", "postgres", "-v", "app_password=test-only", "-f", str(ROLES_SQL))

    app_url = f"postgresql+psycopg://vdata_app:test-only@127.0.0.1:{cluster.port}/vdata"
    threaded, server = start_server(app_url)
    try:
        assert server.http.get("/readyz").json()["status"] == "ready"
        assert threaded.server.config.app.state.vdata.query_role == "vdata_readonly"
        ids = server.http.put("/v1/records", json=sample_records(12, "Deployed")).json()["accepted"]
        for record_id in ids[:8]:
            assert server.moderate(record_id).status_code == 200
        count = server.http.get("/v1/query", params={"sql": "SELECT count(*) FROM records"})
        assert count.json()["rows"] == [[8]], count.text
        # The role layer: even a statement the parser would let through cannot read the private table.
        engine = create_engine(app_url)
        with engine.connect() as conn:
            conn.execute(text("SET ROLE vdata_readonly"))
            with pytest.raises(Exception, match="permission denied"):
                conn.execute(text("SELECT count(*) FROM record_store"))
        engine.dispose()
        config = psql(
            cluster,
            "-d",
            "vdata",
            "-At",
            "-c",
            "SELECT rolconfig FROM pg_roles WHERE rolname = 'vdata_readonly'",
        )
        assert "statement_timeout=1s" in config and "default_transaction_read_only=on" in config
        stats_before = server.http.get("/v1/stats").json()
    finally:
        server.close()
        threaded.__exit__(None, None, None)

    # Backup and restore: pg_dump's custom format, restored into a new database owned by the same role.
    dump = tmp_path / "vdata.dump"
    run_client(
        str(cluster.bin_dir / "pg_dump"),
        *("-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-Fc", "-f", str(dump), "vdata"),
    )
    psql(cluster, "-d", "postgres", "-c", "CREATE DATABASE vdata_restored OWNER vdata_app")
    run_client(
        str(cluster.bin_dir / "pg_restore"),
        *(
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "-d",
            "vdata_restored",
            "--exit-on-error",
        ),
        str(dump),
    )
    restored_url = app_url.rsplit("/", 1)[0] + "/vdata_restored"
    assert table_digest(restored_url) == table_digest(app_url)
    restored_engine = create_engine(restored_url)
    assert db.current_revision(restored_engine) == db.head_revision()
    restored_engine.dispose()
    threaded, server = start_server(restored_url)
    try:
        assert server.http.get("/v1/stats").json() == stats_before
        # The restored triggers keep counting.
        assert server.moderate(ids[8]).status_code == 200
        assert server.http.get("/v1/stats").json()["by_status"] == {"approved": 9, "pending": 3}
        assert server.http.get("/v1/query", params={"sql": "SELECT count(*) FROM records"}).json()[
            "rows"
        ] == [[9]]
    finally:
        server.close()
        threaded.__exit__(None, None, None)


def test_the_bench_measures_postgresql_with_this_guides_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench/server_scale.py --pg-settings deploy` runs PostgreSQL with docs/deploy.md's postgresql.conf
    values (bench/server_load.DEPLOY_SETTINGS): the guide and the bench must say the same."""
    import importlib.util
    import re

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("bench_server_load", root / "bench" / "server_load.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    guide = (root / "docs" / "deploy.md").read_text(encoding="utf-8")
    conf = re.search(r"```ini\n(.*?)```", guide, re.DOTALL)
    assert conf is not None
    values = dict(
        (key.strip(), value.strip())
        for key, value in (
            line.split("#")[0].split("=", 1) for line in conf.group(1).splitlines() if "=" in line
        )
    )
    assert {key: values.get(key) for key in bench.DEPLOY_SETTINGS} == bench.DEPLOY_SETTINGS
