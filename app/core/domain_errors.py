"""Errors a service raises when a rule of the domain says no.

Services know nothing of HTTP: they raise these, and the error layer
(:mod:`app.core.errors`) answers each with its status and catalogue entry:

* :class:`NotFoundError`: 404, no such thing, or one the caller may not see;
* :class:`NotPermittedError`: 403, the caller may see it, and may not do this to it;
* :class:`AlreadyExistsError`: 409, it would duplicate something unique (an email);
* :class:`EditConflictError`: 409, someone else changed it meanwhile;
* :class:`StateConflictError`: 409, its state forbids this now (a comment on a draft);
* :class:`VersionMismatchError`: 412, the version the caller named is no longer current;
* :class:`NotAuthenticatedError`: 401, the credentials or the token are not valid;
* :class:`LinkInvalidError`: 400, an emailed link's token is not valid, or was used;
* :class:`LinkExpiredError`: 410, an emailed link's token is too old.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the domain's refusals; ``message`` is safe to show the caller."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotFoundError(DomainError):
    pass


class NotPermittedError(DomainError):
    pass


class AlreadyExistsError(DomainError):
    pass


class EditConflictError(DomainError):
    pass


class StateConflictError(DomainError):
    pass


class VersionMismatchError(DomainError):
    """``current_tag`` is the current version's entity tag, when there still is one."""

    def __init__(self, message: str, *, current_tag: str | None = None) -> None:
        super().__init__(message)
        self.current_tag = current_tag


class NotAuthenticatedError(DomainError):
    pass


class LinkInvalidError(DomainError):
    pass


class LinkExpiredError(DomainError):
    pass
