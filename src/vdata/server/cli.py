"""`vdata serve`, `vdata push`, `vdata pull`."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import typer

from vdata.core.errors import UserError
from vdata.server.cli_admin import register_admin
from vdata.server.cli_archive import register_archive
from vdata.server.cli_snapshot import register_snapshot
from vdata.server.settings import DB_HELP


def _sql_from_editor() -> str:
    """Open $EDITOR (vim if unset) on a temporary .sql file and return what the user wrote."""
    editor = os.environ.get("EDITOR") or "vim"
    with tempfile.NamedTemporaryFile(
        "w", suffix=".sql", prefix="vdata-query-", delete=False, encoding="utf-8"
    ) as f:
        f.write(
            "-- Write one SELECT over the views `records` and `stats`, save and quit.\nSELECT * FROM records\n"
        )
        path = Path(f.name)
    try:
        try:
            status = subprocess.call([*shlex.split(editor), str(path)])
        except FileNotFoundError as e:
            raise UserError(
                f"editor {editor!r} not found; set EDITOR or pass the query: --sql 'SELECT ...'"
            ) from e
        if status != 0:
            raise UserError(f"editor {editor!r} exited with status {status}; nothing was pulled")
        lines = [
            ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.lstrip().startswith("--")
        ]
    finally:
        path.unlink(missing_ok=True)
    sql = "\n".join(lines).strip()
    if not sql:
        raise UserError("the query file was empty; nothing was pulled")
    return sql


def register(app: typer.Typer, *, strategy_names: Callable[[], Sequence[str]] | None = None) -> None:
    """Add serve, push and pull to `app`. `strategy_names`: the strategy names contributed records may
    carry, asked when the server starts (the top-level CLI passes the generate stage's registry); None
    keeps the server's default, the built-in strategies."""

    register_admin(app)

    @app.command()
    def serve(
        db: str = typer.Option(None, "--db", help=DB_HELP),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", help="Port to listen on."),
        workers: int = typer.Option(
            1, "--workers", help="Worker processes (one per core for real deployments)."
        ),
        batch_size: int = typer.Option(
            None, "--batch-size", help="Most records per PUT (env VDATA_BATCH_SIZE)."
        ),
        query_timeout: float = typer.Option(
            None, "--query-timeout", help="Seconds per /v1/query (default 1)."
        ),
        query_row_limit: int = typer.Option(
            None, "--query-row-limit", help="Most rows per /v1/query (default 10000)."
        ),
        snapshots: Path = typer.Option(
            None, "--snapshots", help="Folder of `vdata snapshot` output to serve at /v1/snapshots."
        ),
        gate: bool = typer.Option(
            True,
            "--gate/--no-gate",
            help="Make an automatic report on every contribution batch (after the PUT is answered).",
        ),
        auto_reject: str = typer.Option(
            None,
            "--auto-reject",
            help="Reject flagged records automatically, reason logged: comma-separated rules from "
            "duplicates, near-duplicates, benchmark-overlap, refusals, malformed, other-language.",
        ),
        benchmark_every: str = typer.Option(
            None,
            "--benchmark-every",
            help="Benchmark the latest snapshot this often (e.g. 7d, 12h) with vdata benchmark-dataset.",
        ),
        benchmark_command: str = typer.Option(
            None,
            "--benchmark-command",
            help="The command --benchmark-every runs, with {python}, {snapshot} and {out} "
            "(default: '{python} -m vdata benchmark-dataset {snapshot} --out {out}').",
        ),
        read_db: str = typer.Option(
            None,
            "--read-db",
            help="PostgreSQL streaming replica for public reads (writes go to --db; env VDATA_READ_DB).",
        ),
        snapshot_every: str = typer.Option(
            None,
            "--snapshot-every",
            help="Take a snapshot into --snapshots this often, in the background (e.g. 24h, 30m).",
        ),
    ) -> None:
        """Run the public dataset server (migrations are applied at start)."""
        from vdata.server.serve import configure_logging, make_server, run_workers
        from vdata.server.settings import ServerSettings, parse_auto_reject, parse_duration

        settings = ServerSettings.from_env(
            db,
            batch_size=batch_size,
            query_timeout_s=query_timeout,
            query_row_limit=query_row_limit,
            snapshots_dir=snapshots,
            read_db_url=read_db,
            snapshot_every_s=parse_duration(snapshot_every) if snapshot_every else None,
            strategies=tuple(strategy_names()) if strategy_names else None,
            gate=gate,
            auto_reject=parse_auto_reject(auto_reject) if auto_reject is not None else None,
            benchmark_every_s=parse_duration(benchmark_every) if benchmark_every else None,
            benchmark_command=tuple(shlex.split(benchmark_command)) if benchmark_command else None,
        )
        if settings.benchmark_every_s and settings.snapshots_dir is None:
            raise UserError("--benchmark-every benchmarks the latest snapshot: give --snapshots DIR too")
        configure_logging()
        if not 0 < port < 65536:
            raise UserError(f"--port {port} is out of range; use 1-65535")
        typer.echo(
            f"vdata server on http://{host}:{port} (docs at /docs); database {_safe_url(settings.db_url)}",
            err=True,
        )
        if workers < 1:
            raise UserError(f"--workers {workers}: give at least 1")
        try:
            if workers > 1:
                run_workers(settings, host, port, workers)
            else:
                make_server(settings, host, port).run()
        except OSError as e:
            raise UserError(f"cannot serve on {host}:{port}: {e.strerror or e}; choose another --port") from e

    register_snapshot(app)
    register_archive(app)

    @app.command()
    def push(
        file: Path = typer.Argument(..., help="Records to contribute (.jsonl, .json, .csv or .parquet)."),
        server: str = typer.Option(
            None, "--server", help="Server URL (else env VDATA_SERVER, else the config file)."
        ),
        contributor: str = typer.Option(
            None, "--contributor", help="Your name or handle, stored with the records."
        ),
    ) -> None:
        """Upload records to a vdata server; they are published once a moderator approves them."""
        from rich.console import Console

        from vdata.core.progress import rich_progress_factory
        from vdata.server.client import push_records, resolve_server, validate_rows

        url = resolve_server(server)
        records, rejected = validate_rows(file)
        progress = rich_progress_factory(Console(stderr=True), transient=True)
        report = push_records(records, url, contributor=contributor, progress=progress)
        report.rejected[:0] = rejected
        typer.echo(
            f"accepted {len(report.accepted)} (pending review), duplicates {len(report.duplicates)}, rejected {len(report.rejected)}"
        )
        for where, reason in report.rejected[:50]:
            typer.echo(f"  rejected {where}: {reason}")
        if len(report.rejected) > 50:
            typer.echo(f"  ... and {len(report.rejected) - 50} more")
        for url in report.contributions[:10]:
            typer.echo(f"  status and automatic report: {url}")
        if len(report.contributions) > 10:
            typer.echo(f"  ... and {len(report.contributions) - 10} more batches")

    @app.command()
    def pull(
        out: Path = typer.Argument(
            ..., help="Output file (written atomically); with --snapshot alone, the folder to download into."
        ),
        json_fmt: bool = typer.Option(False, "-j", "--json", help="JSON lines (default)."),
        text_fmt: bool = typer.Option(False, "-t", "--text", help="One sentence per line."),
        csv_fmt: bool = typer.Option(False, "-c", "--csv", help="CSV with a header."),
        sql_flag: bool = typer.Option(
            False,
            "--sql",
            help="Query with read-only SQL over the views records and stats: `--sql 'SELECT ...'`, "
            "or `--sql` alone to write the query in $EDITOR (vim if unset).",
        ),
        sql_text: str = typer.Argument(
            None, metavar="[SQL]", show_default=False, help="The query for --sql."
        ),
        category: list[str] = typer.Option(None, "--category", help="Only these categories (repeatable)."),
        strategy: str = typer.Option(None, "--strategy", help="Only this strategy."),
        provider: str = typer.Option(None, "--provider", help="Only this provider."),
        q: str = typer.Option(None, "--q", help="Only records whose text contains this."),
        server: str = typer.Option(
            None, "--server", help="Server URL (else env VDATA_SERVER, else the config file)."
        ),
        snapshot: str = typer.Option(
            None,
            "--snapshot",
            help="latest or a snapshot ID: download that snapshot's Parquet files into the folder OUT "
            "(resumable, every file's sha256 verified). With --sql: run the query on the latest snapshot "
            "(DuckDB over its Parquet files).",
        ),
    ) -> None:
        """Download approved records (or a SQL result) as JSON lines, text or CSV, or a whole snapshot."""
        from vdata.core.io import check_writable
        from vdata.core.records import validate_category
        from vdata.server.client import pull as do_pull
        from vdata.server.client import resolve_server

        if snapshot is not None and not sql_flag:
            from vdata.server.cli_snapshot import pull_snapshot_command

            if json_fmt or text_fmt or csv_fmt or category or strategy or provider or q:
                raise UserError(
                    "--snapshot downloads whole Parquet files; it takes no format or filter options"
                )
            pull_snapshot_command(out, resolve_server(server), snapshot)
            return
        if sum((json_fmt, text_fmt, csv_fmt)) > 1:
            raise UserError("choose one of -j (JSON lines), -t (text) and -c (CSV)")
        fmt = "text" if text_fmt else "csv" if csv_fmt else "json"
        url = resolve_server(server)
        check_writable(out)
        if sql_text and not sql_flag:
            raise UserError(f"unexpected argument {sql_text!r}; to run SQL, put --sql before the query")
        sql = (sql_text or "") if sql_flag else None
        if snapshot not in (None, "latest"):
            raise UserError("--sql --snapshot queries the latest snapshot; give --snapshot latest")
        if sql is not None and (category or strategy or provider or q):
            raise UserError(
                "--sql cannot be combined with --category/--strategy/--provider/--q; put filters in the SQL"
            )
        categories = []
        for c in category or []:
            try:
                categories.append(validate_category(c))
            except ValueError as e:
                raise UserError(str(e)) from e
        if sql == "":
            sql = _sql_from_editor()
        result = do_pull(
            out,
            url,
            fmt=fmt,
            sql=sql,
            categories=categories,
            strategy=strategy,
            provider=provider,
            q=q,
            engine="snapshot" if snapshot else "live",
        )
        note = " (cut at the server's row limit)" if result.truncated else ""
        typer.echo(f"wrote {result.rows} rows to {out}{note}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
