"""``flask`` commands beyond Flask's own, one module per group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.commands.cache import cache_cli
from app.commands.db import db_cli
from app.commands.search import search_cli
from app.commands.users import seed_command, tokens_cli, users_cli

if TYPE_CHECKING:
    from flask import Flask


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(seed_command)
    app.cli.add_command(search_cli)
    app.cli.add_command(cache_cli)
