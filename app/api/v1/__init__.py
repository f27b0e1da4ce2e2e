"""``/api/v1``: the contract in ``docs/api.md``. One module per resource.

Every module of this package that defines a blueprint named ``bp`` is
registered under ``/api/v1``, in alphabetical order: adding
``app/api/v1/comments.py`` is all it takes to serve its routes.
"""

from __future__ import annotations

import importlib
import pkgutil

from flask import Blueprint

from app.core.application import APIBlueprint


def resource_blueprints() -> list[Blueprint]:
    """The ``bp`` of every module in this package, by module name."""
    found: list[Blueprint] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        blueprint = getattr(module, "bp", None)
        if isinstance(blueprint, Blueprint):
            found.append(blueprint)
    return found


api_v1 = APIBlueprint("api_v1", __name__, url_prefix="/api/v1")
for resource in resource_blueprints():
    api_v1.register_blueprint(resource)
