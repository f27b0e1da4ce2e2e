"""``flask`` commands beyond Flask's own, one module per group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.commands.db import db_cli

if TYPE_CHECKING:
    from flask import Flask


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_cli)
