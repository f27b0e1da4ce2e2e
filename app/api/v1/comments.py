"""Comments: an article's list and new comments, and one comment's edit and
deletion. Who may do what is :mod:`app.services.comments`' to say; these views
only speak HTTP."""

from __future__ import annotations

from flask import url_for

from app.auth.guards import current_user, optional_auth, require_user, signed_in
from app.core.application import APIBlueprint
from app.extensions.database import get_database
from app.schemas.comments import CommentCreate, CommentOut, CommentPage, CommentQuery, CommentUpdate
from app.services import comments as service
from app.services.articles import NO_SUCH_ARTICLE
from app.services.comments import NO_SUCH_COMMENT, NOT_PUBLISHED

bp = APIBlueprint("comments", __name__)


@bp.operation(
    "GET",
    "/articles/<id:article_id>/comments",
    "listComments",
    guard=optional_auth,
    query=CommentQuery,
    responses={200: CommentPage, 404: NO_SUCH_ARTICLE},
)
def list_comments(article_id: int, query: CommentQuery) -> CommentPage:
    """A page of an article's comments, oldest first."""
    return service.list_page(get_database().session(), article_id, query, viewer=current_user())


@bp.operation(
    "POST",
    "/articles/<id:article_id>/comments",
    "createComment",
    guard=signed_in,
    body=CommentCreate,
    responses={201: CommentOut, 404: NO_SUCH_ARTICLE, 409: NOT_PUBLISHED},
    headers={201: {"Location": "The new comment's URL"}},
)
def create_comment(article_id: int, body: CommentCreate) -> tuple[CommentOut, int, dict[str, str]]:
    """Comment on a published article. Its author is notified."""
    comment = service.create(
        get_database().session(), article_id=article_id, author=require_user(), fields=body
    )
    return comment, 201, {"Location": url_for(".update_comment", comment_id=comment.id)}


@bp.operation(
    "PATCH",
    "/comments/<id:comment_id>",
    "updateComment",
    guard=signed_in,
    body=CommentUpdate,
    responses={
        200: CommentOut,
        403: "Only the comment's author may change it",
        404: NO_SUCH_COMMENT,
    },
)
def update_comment(comment_id: int, body: CommentUpdate) -> CommentOut:
    """Change your comment's body."""
    return service.update(get_database().session(), comment_id, actor=require_user(), changes=body)


@bp.operation(
    "DELETE",
    "/comments/<id:comment_id>",
    "deleteComment",
    guard=signed_in,
    responses={
        204: "Deleted",
        403: "Only the comment's author, the article's author or an admin may delete it",
        404: NO_SUCH_COMMENT,
    },
)
def delete_comment(comment_id: int) -> None:
    """Delete a comment: yours, one on your article, or any as an admin."""
    service.delete(get_database().session(), comment_id, actor=require_user())
