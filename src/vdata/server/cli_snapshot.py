"""`vdata snapshot` (the approved records as Parquet files with a dataset card) and `vdata publish`."""

from __future__ import annotations

from pathlib import Path

import typer

from vdata.core.errors import UserError
from vdata.server.settings import DB_HELP


def register_snapshot(app: typer.Typer) -> None:
    """Add snapshot and publish to `app`."""
    register_publish(app)

    @app.command()
    def snapshot(
        out_dir: Path = typer.Argument(..., help="Folder of snapshots; each snapshot is a new folder in it."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
        max_shard_mb: float = typer.Option(
            None, "--max-shard-mb", help="Largest Parquet shard, in MB (default 500)."
        ),
        audit_report: Path = typer.Option(
            None, "--audit-report", help="report.json of the latest `vdata audit`, for the dataset card."
        ),
        license: str = typer.Option(
            None, "--license", help="Licence of the dataset, as a Hub identifier (default cc-by-4.0)."
        ),
        settle: float = typer.Option(
            None,
            "--settle",
            help="Seconds: records approved this recently wait for the next snapshot (default 60).",
        ),
    ) -> None:
        """Write the approved records as zstd Parquet shards (one config per category), manifest.json, a dataset
        card (README.md) and croissant.json. Incremental: only what changed since the previous snapshot is
        written; unchanged shards are hard-linked."""
        import os

        from vdata.server.settings import normalise_db_url
        from vdata.server.snapshot import make_settings, take_snapshot

        given = {
            "max_shard_bytes": None if max_shard_mb is None else int(max_shard_mb * 1024 * 1024),
            "audit_report": audit_report,
            "license": license,
            "settle_s": settle,
        }
        settings = make_settings(
            db_url=normalise_db_url(db or os.environ.get("VDATA_DB")),
            out_dir=out_dir,
            **{k: v for k, v in given.items() if v is not None},
        )
        manifest = take_snapshot(settings)
        if manifest is None:
            typer.echo("nothing changed since the latest snapshot; nothing written")
            return
        added = len(manifest["files_added"])
        typer.echo(
            f"snapshot {manifest['snapshot_id']}: {manifest['rows']:,} records in {len(manifest['files'])} "
            f"files ({added} new) in {out_dir / manifest['snapshot_id']}"
        )


def pull_snapshot_command(out_dir: Path, server: str, which: str) -> None:
    """`vdata pull OUT_DIR --snapshot latest|ID`, with a progress bar on stderr."""
    from rich.console import Console

    from vdata.core.progress import rich_progress_factory
    from vdata.server.snapshot_client import pull_snapshot

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; --snapshot downloads into a folder, give a folder name")
    progress = rich_progress_factory(Console(stderr=True), transient=True)
    pulled = pull_snapshot(server, out_dir, which, progress=progress)
    if pulled.already_here:
        typer.echo(f"snapshot {pulled.snapshot_id} is already complete in {pulled.folder}")
        return
    typer.echo(
        f"snapshot {pulled.snapshot_id}: {pulled.files} files in {pulled.folder} "
        f"({pulled.downloaded_bytes:,} bytes downloaded, {pulled.linked} shards reused), all sha256 verified"
    )


def register_publish(app: typer.Typer) -> None:
    @app.command()
    def publish(
        out_dir: Path = typer.Argument(..., help="Folder of snapshots (what vdata snapshot writes)."),
        to_hub: str = typer.Option(..., "--to-hub", help="Dataset repository on the Hub: NAMESPACE/NAME."),
        snapshot: str = typer.Option("latest", "--snapshot", help="latest or a snapshot ID."),
        private: bool = typer.Option(False, "--private", help="Create the repository private."),
    ) -> None:
        """Upload a snapshot to the Hugging Face Hub as a dataset (token: HF_TOKEN or `hf auth login`)."""
        from vdata.server.publish import publish_snapshot

        published = publish_snapshot(out_dir, to_hub, snapshot=snapshot, private=private)
        typer.echo(
            f"published snapshot {published.snapshot_id} to {published.repo_url} ({published.commit_url})"
        )
