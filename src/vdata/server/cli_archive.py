"""`vdata archive` (months older than an age leave the hot table after a verified snapshot) and
`vdata archive restore MONTH` (a month comes back from the snapshot). The logic is in archive.py."""

from __future__ import annotations

from pathlib import Path

import typer

from vdata.core.errors import UserError
from vdata.server.settings import DB_HELP

SNAPSHOT_HELP = (
    "Folder of snapshots (what vdata snapshot writes; the latest is used) or one snapshot's folder."
)


def _engine(db: str | None):  # -> sqlalchemy.Engine
    from vdata.server.cli_admin import _engine as admin_engine

    return admin_engine(db)


def register_archive(app: typer.Typer) -> None:
    archive_app = typer.Typer(help="Archive old months into snapshots, or bring one back.")
    app.add_typer(archive_app, name="archive")

    @archive_app.callback(invoke_without_command=True)
    def archive(
        ctx: typer.Context,
        older_than: str = typer.Option(
            None, "--older-than", help="Archive the months older than this: 12mo, 365d, 8w, 2y."
        ),
        month: list[str] = typer.Option(None, "--month", help="Archive this month (YYYY-MM); repeatable."),
        snapshot: Path = typer.Option(None, "--snapshot", help=SNAPSHOT_HELP),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Verify and list what would go; change nothing."
        ),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Move the months (of submission) older than --older-than out of the hot table, after checking that
        the snapshot holds every approved record of each month unchanged. All or nothing."""
        if ctx.invoked_subcommand is not None:
            return
        from vdata.server.archive import archive as run_archive

        if snapshot is None:
            raise UserError("--snapshot DIR is required: the snapshot that holds the months to archive")
        if (older_than is None) == (not month):
            raise UserError("give either --older-than AGE (like 12mo) or --month YYYY-MM")
        result = run_archive(
            _engine(db), snapshot, older_than=older_than, months=month or None, dry_run=dry_run
        )
        if not result.months:
            typer.echo("nothing to archive: no month in the hot table is that old")
            return
        verb = "would archive" if result.dry_run else "archived"
        for plan in result.months:
            typer.echo(
                f"{plan.month}\t{verb} {plan.rows:,} records ({plan.approved:,} approved, {plan.other:,} "
                f"unpublished kept in archived_records), verified against snapshot {result.snapshot_id}"
            )

    @archive_app.command("restore")
    def restore(
        month: str = typer.Argument(..., help="The archived month, YYYY-MM."),
        snapshot: Path = typer.Option(..., "--snapshot", help=SNAPSHOT_HELP),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Bring an archived month back into the hot table from the snapshot's Parquet files."""
        from vdata.server.archive import restore as run_restore

        rows = run_restore(_engine(db), month, snapshot)
        typer.echo(f"{month}: restored {rows:,} records into the hot table")
