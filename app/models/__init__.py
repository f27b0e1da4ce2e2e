"""The database models. Alembic (``app/migrations``) owns the schema they map.

Every module of this package is imported with it, so ``Base.metadata`` (and so
``flask db check`` and the migration tests) knows every table: a new model needs
only its own module. Import it from there (``from app.models.comment import
Comment``); the names below are the ones the whole app uses.
"""

import importlib
import pkgutil

from app.models.article import Article, ArticleStatus, Tag, article_tags
from app.models.base import Base, UTCDateTime, utcnow
from app.models.refresh_token import RefreshToken
from app.models.search import SearchOutbox, SearchReindex
from app.models.user import User

__all__ = [
    "Article",
    "ArticleStatus",
    "Base",
    "RefreshToken",
    "SearchOutbox",
    "SearchReindex",
    "Tag",
    "UTCDateTime",
    "User",
    "article_tags",
    "utcnow",
]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
