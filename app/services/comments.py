"""Comments: who may see and change them, the list, and the writes.

**Who sees what.** An article's comments are as visible as the article
(:func:`app.services.articles.may_read`): a draft's are not found, like the
draft. Anyone signed in may comment on a published article; on a draft that
they may read (theirs, or any as an admin) the answer is a conflict, since
comments open once it is published. Only a comment's author may change it;
its author, the article's author and the admins may delete it.

The notification a comment sends its article's author is not written here: it
is a commit effect (``app/services/notifications.py``, registered in
``create_app``), so every way a comment is written sends it, in the same
transaction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.core.domain_errors import NotFoundError, NotPermittedError, StateConflictError
from app.models import Article, ArticleStatus, User, utcnow
from app.models.comment import Comment
from app.schemas.comments import CommentCreate, CommentOut, CommentPage, CommentQuery, CommentUpdate
from app.services.articles import NO_SUCH_ARTICLE, is_editor, may_read
from app.services.pagination import page_of

NO_SUCH_COMMENT = "No such comment (or one on a draft that is not yours)"
NOT_PUBLISHED = "Comments open once the article is published"

#: The author's id and name, in the same query as the comment.
WITH_AUTHOR = (joinedload(Comment.author).load_only(User.id, User.name),)


def to_out(row: Comment) -> CommentOut:
    return CommentOut.model_validate(
        {
            "id": row.id,
            "article_id": row.article_id,
            "author": {"id": row.author.id, "name": row.author.name},
            "body": row.body,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


# -- reads --------------------------------------------------------------------------


def list_page(
    session: Session, article_id: int, query: CommentQuery, *, viewer: User | None
) -> CommentPage:
    """One page of an article's comments, oldest first, if ``viewer`` may read it."""
    _readable_article(session, article_id, viewer)
    rows, total = page_of(
        session,
        Comment,
        query,
        where=[Comment.article_id == article_id],
        order_by=[Comment.created_at.asc(), Comment.id.asc()],
        options=WITH_AUTHOR,
    )
    return CommentPage.of([to_out(row) for row in rows], query, total)


def _readable_article(session: Session, article_id: int, viewer: User | None) -> Article:
    article = session.get(Article, article_id)
    if article is None or not may_read(viewer, article.status, article.author_id):
        raise NotFoundError(NO_SUCH_ARTICLE)
    return article


def _find(session: Session, comment_id: int, viewer: User) -> tuple[Comment, Article]:
    """The comment and its article, if ``viewer`` may read the article."""
    found = session.execute(
        select(Comment, Article)
        .join(Article, Comment.article_id == Article.id)
        .where(Comment.id == comment_id)
        .options(*WITH_AUTHOR)
    ).one_or_none()
    if found is None:
        raise NotFoundError(NO_SUCH_COMMENT)
    comment, article = found
    if not may_read(viewer, article.status, article.author_id):
        raise NotFoundError(NO_SUCH_COMMENT)
    return comment, article


# -- writes -------------------------------------------------------------------------


def create(session: Session, *, article_id: int, author: User, fields: CommentCreate) -> CommentOut:
    """Write ``author``'s comment on a published article."""
    article = _readable_article(session, article_id, author)
    if article.status != ArticleStatus.PUBLISHED:
        raise StateConflictError(NOT_PUBLISHED)
    now = utcnow()
    row = Comment(
        article_id=article.id, author_id=author.id, body=fields.body, created_at=now, updated_at=now
    )
    row.author = author
    session.add(row)
    session.commit()
    return to_out(row)


def update(session: Session, comment_id: int, *, actor: User, changes: CommentUpdate) -> CommentOut:
    """Change the comment's body; only its author may."""
    row, _article = _find(session, comment_id, actor)
    if row.author_id != actor.id:
        raise NotPermittedError("Only the comment's author may change it")
    if changes.body is not None and changes.body != row.body:
        row.body = changes.body
        session.commit()
    return to_out(row)


def delete(session: Session, comment_id: int, *, actor: User) -> None:
    """Delete the comment: its author, the article's editors (author, admins) may."""
    row, article = _find(session, comment_id, actor)
    if row.author_id != actor.id and not is_editor(actor, article.author_id):
        raise NotPermittedError("Only the comment's author, the article's author or an admin")
    session.delete(row)
    session.commit()
