"""The database models. Alembic (``app/migrations``) owns the schema they map."""

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
