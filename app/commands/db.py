"""``flask db ...``: apply and inspect the migrations on the app's database."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app import migrations
from app.extensions.database import get_database

db_cli = AppGroup("db", help="Apply and inspect the database migrations.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    engine = get_database().engine
    before = migrations.current_revision(engine)
    migrations.upgrade(engine, revision)
    after = migrations.current_revision(engine)
    if before == after:
        click.echo(f"Database already at {after or 'base'}; nothing to do.")
    else:
        click.echo(f"Upgraded the database from {before or 'base'} to {after}.")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Revert migrations down to REVISION ("base" for an empty database)."""
    engine = get_database().engine
    before = migrations.current_revision(engine)
    migrations.downgrade(engine, revision)
    click.echo(
        f"Downgraded the database from {before or 'base'} to {migrations.current_revision(engine) or 'base'}."
    )


@db_cli.command("current")
def current_command() -> None:
    """Show the database's revision and the latest one."""
    current = migrations.current_revision(get_database().engine)
    head = migrations.head_revision()
    state = "up to date" if current == head else "behind: run `flask db upgrade`"
    click.echo(f"Database at {current or 'base'}; latest is {head} ({state}).")


@db_cli.command("check")
def check_command() -> None:
    """Fail if the models and the migrated database differ."""
    drift = migrations.schema_drift(get_database().engine)
    if drift:
        for difference in drift:
            click.echo(f"  {difference}", err=True)
        raise click.ClickException(
            f"{len(drift)} difference(s) between the models and the database"
        )
    click.echo("The models match the migrated database.")
