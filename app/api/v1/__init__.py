"""``/api/v1``: the contract in ``docs/api.md``. One module per resource."""

from __future__ import annotations

from typing import cast

from flask.blueprints import BlueprintSetupState

from app.api.v1 import articles, auth, docs, health, users
from app.core.application import APIBlueprint, APIFlask
from app.extensions.search import is_enabled as search_is_enabled
from app.services import articles as article_service
from app.services import indexing

api_v1 = APIBlueprint("api_v1", __name__, url_prefix="/api/v1")
for module in (health, auth, users, articles, docs):
    api_v1.register_blueprint(module.bp)


@api_v1.record_once
def _start_services(state: BlueprintSetupState) -> None:
    app = cast("APIFlask", state.app)
    article_service.init_app(app)
    if search_is_enabled(app.settings):
        indexing.init_app(app)
