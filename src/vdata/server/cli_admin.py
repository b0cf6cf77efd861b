"""`vdata moderators add|list|revoke`, `vdata costs add|list` and `vdata benchmarks import|list`: the
operator's commands.

They open the server's database directly (`--db`, as for `vdata serve`) and bring its schema up to date
first, so they work before the server has ever started.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vdata.core.errors import UserError
from vdata.server.settings import DB_HELP


def _engine(db: str | None):  # -> sqlalchemy.Engine
    from vdata.server import db as server_db
    from vdata.server.settings import ServerSettings

    settings = ServerSettings.from_env(db)
    engine = server_db.make_engine(settings.db_url)
    server_db.upgrade(engine)
    return engine


def register_admin(app: typer.Typer) -> None:
    """Add the `moderators`, `costs` and `benchmarks` command groups to `app`."""
    moderators_app = typer.Typer(help="Moderator accounts: tokens for the moderation page and API.")
    costs_app = typer.Typer(help="The running costs and donations shown on /about.")
    app.add_typer(moderators_app, name="moderators")
    app.add_typer(costs_app, name="costs")
    benchmarks_app = typer.Typer(
        help="The dataset's bias benchmarks shown at /v1/benchmarks and on the pages."
    )
    app.add_typer(benchmarks_app, name="benchmarks")

    @benchmarks_app.command("import")
    def benchmarks_import(
        file: Path = typer.Argument(..., help="A benchmark.json written by vdata benchmark-dataset."),
        snapshot: str = typer.Option(
            None, "--snapshot", help="The snapshot id the run measured, when the document names none."
        ),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Store a benchmark.json in the server's database (its history and badge show it)."""
        from vdata.server.benchmarks import import_document, read_document

        document = read_document(file)
        benchmark_id = import_document(_engine(db), document, snapshot)
        typer.echo(f"benchmark {benchmark_id} stored from {file}")

    @benchmarks_app.command("list")
    def benchmarks_list(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
        """Print the stored benchmarks: id, created, snapshot, StereoSet bias cut per category."""
        from vdata.server.benchmarks import history

        for entry in history(_engine(db)):
            cuts = ", ".join(
                f"{name} {c['bias_cut_pct']:.0f}%"
                if c["bias_cut_pct"] is not None
                else f"{name} {c['status']}"
                for name, c in entry["categories"].items()
            )
            typer.echo(f"{entry['id']}\t{entry['created']}\t{entry['snapshot_id'] or '-'}\t{cuts}")

    @moderators_app.command("add")
    def add(
        name: str = typer.Argument(..., help="The moderator's name, as shown in the moderation log."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Create a moderator and print their token (once: only its hash is stored)."""
        from vdata.server.moderators import ModeratorError, add_moderator

        try:
            token = add_moderator(_engine(db), name)
        except ModeratorError as e:
            raise UserError(str(e)) from e
        typer.echo(f"moderator {name} added; their token (shown only now, keep it secret):", err=True)
        typer.echo(token)

    @moderators_app.command("list")
    def list_(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
        """List moderators: name, created, revoked."""
        from vdata.server.moderators import list_moderators

        for m in list_moderators(_engine(db)):
            state = f"revoked {m.revoked_at}" if m.revoked_at else "active"
            typer.echo(f"{m.name}\tcreated {m.created_at}\t{state}")

    @moderators_app.command("revoke")
    def revoke(
        name: str = typer.Argument(..., help="The moderator whose token stops working now."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Revoke a moderator's token; their browser sessions end with it."""
        from vdata.server.moderators import ModeratorError, revoke_moderator

        try:
            revoke_moderator(_engine(db), name)
        except ModeratorError as e:
            raise UserError(str(e)) from e
        typer.echo(f"moderator {name} revoked")

    @costs_app.command("add")
    def costs_add(
        month: str = typer.Argument(..., help="The month, YYYY-MM."),
        hosting: str = typer.Option(None, "--hosting", help="Hosting cost of the month."),
        storage: str = typer.Option(None, "--storage", help="Storage and backups."),
        domain: str = typer.Option(None, "--domain", help="Domain name (the month's share)."),
        other: str = typer.Option(None, "--other", help="Anything else (say what in --note)."),
        donations: str = typer.Option(None, "--donations", help="Donations received in the month."),
        note: str = typer.Option("", "--note", help="A note shown with the entry."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Record a month's running costs and donations (entries add up; a negative one corrects)."""
        from vdata.server.costs import add_entries, check_month, to_cents

        given = {
            "hosting": hosting,
            "storage": storage,
            "domain": domain,
            "other": other,
            "donations": donations,
        }
        try:
            check_month(month)
            amounts = {k: to_cents(v, k) for k, v in given.items() if v is not None}
            if not amounts:
                raise ValueError(
                    "nothing to add: give at least one amount, e.g. --hosting 12.50 --donations 30"
                )
            add_entries(_engine(db), month, amounts, note)
        except ValueError as e:
            raise UserError(str(e)) from e
        typer.echo(f"{month}: added {', '.join(f'{k} {v / 100:.2f}' for k, v in amounts.items())}")

    @costs_app.command("list")
    def costs_list(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
        """Print the ledger: per month, costs, donations and balance."""
        from vdata.server.costs import ledger, money

        for m in ledger(_engine(db)):
            typer.echo(
                f"{m.month}\tcosts {money(m.total_costs)}\tdonations {money(m.donations)}\tbalance {money(m.balance)}"
            )
