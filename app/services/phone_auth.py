"""Phone numbers and SMS codes: signing in with a code, and binding a number
to an account (``docs/accounts.md``).

A request for a code counts against the number and the client's address,
queues one task, and answers when another may be sent. The task makes the
code (6 digits from :mod:`secrets`), keeps its HMAC
(:mod:`app.extensions.sms_codes`) and sends it. For ``purpose: "login"`` the
task first looks the number up, and sends nothing when no account has bound
it: the request does the same work, and answers the same, either way.
"""

from __future__ import annotations

import secrets

import phonenumbers
from limits import parse_many
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.domain_errors import AlreadyExistsError, NotAuthenticatedError
from app.core.exceptions import RateLimited, ServiceUnavailable, ValidationFailed
from app.core.settings import Settings
from app.extensions.background import dispatch
from app.extensions.rate_limit import Throttle
from app.extensions.sms import Sms
from app.extensions.sms_codes import CODE_TTL, SmsCodes
from app.models import User
from app.schemas.users import MeOut, SmsCodeSent, SmsPurpose, TokenPair
from app.services.accounts import issue_pair, me_out

CODE_TASK = "app.tasks.messages.send_sms_code"
BAD_CODE = "The code is wrong, used or expired"
LOCKED = "Too many wrong codes: ask for a new one"
PHONE_TAKEN = "This number is bound to another account"
DISABLED = "SMS is turned off on this server"


def normalize(raw: str, region: str) -> str:
    """``raw`` in E.164, read in ``region`` when it has no ``+``; a 422 that
    says so when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationFailed(
            details=[{"loc": ["body", "phone"], "msg": "Not a valid phone number", "type": "phone"}]
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def resend_after(settings: Settings) -> int:
    """Seconds before another code may go to a number: the window of the
    first limit of ``SMS_LIMIT_PER_NUMBER``."""
    return parse_many(settings.sms_limit_per_number)[0].get_expiry()


# -- asking for a code ------------------------------------------------------------


def request_code(
    raw_phone: str, purpose: SmsPurpose, *, address: str, settings: Settings, throttle: Throttle
) -> SmsCodeSent:
    """Queue a code for the number; counted against it and the client's ``address``."""
    if settings.resolved_sms_sender is None:
        raise ServiceUnavailable(DISABLED)
    phone = normalize(raw_phone, settings.phone_default_region)
    throttle.take(number=phone, address=address)
    dispatch(CODE_TASK, phone=phone, purpose=purpose)
    return SmsCodeSent(resend_after=resend_after(settings))


def wants_code(session: Session, phone: str, purpose: SmsPurpose) -> bool:
    """Whether a code goes out: not for a sign-in to a number no account has bound."""
    return purpose != "login" or _owner(session, phone) is not None


def new_code(phone: str, purpose: SmsPurpose, *, codes: SmsCodes) -> Sms:
    """A new code for ``phone``, kept (as its HMAC) in place of any earlier
    one, as the message that carries it. The template's parameters are the
    code and its minutes."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    codes.put(purpose, phone, code)
    return Sms(to=[phone], params=[code, str(CODE_TTL // 60)])


# -- using a code -----------------------------------------------------------------


def sign_in(
    session: Session, raw_phone: str, code: str, *, settings: Settings, codes: SmsCodes
) -> TokenPair:
    """Trade a sign-in code for a token pair, as ``/auth/token`` answers."""
    phone = normalize(raw_phone, settings.phone_default_region)
    _spend(codes, "login", phone, code)
    user = _owner(session, phone)
    if user is None:  # unbound since the code was sent
        raise NotAuthenticatedError(BAD_CODE)
    return issue_pair(session, user.id, settings)


def bind(
    session: Session, user: User, raw_phone: str, code: str, *, settings: Settings, codes: SmsCodes
) -> MeOut:
    """Bind the number to ``user``, with a code sent to it for ``bind``."""
    phone = normalize(raw_phone, settings.phone_default_region)
    _spend(codes, "bind", phone, code)
    owner = _owner(session, phone)
    if owner is not None and owner.id != user.id:
        raise AlreadyExistsError(PHONE_TAKEN)
    user.phone = phone
    try:
        session.commit()
    except IntegrityError:  # bound to another account by a concurrent request
        session.rollback()
        raise AlreadyExistsError(PHONE_TAKEN) from None
    return me_out(user)


def unbind(session: Session, user: User) -> None:
    """Forget ``user``'s number; it no longer signs in."""
    user.phone = None
    session.commit()


def _spend(codes: SmsCodes, purpose: SmsPurpose, phone: str, code: str) -> None:
    outcome = codes.use(purpose, phone, code)
    if outcome == "locked":
        raise RateLimited(LOCKED, retry_after=codes.locked_for(purpose, phone))
    if outcome == "wrong":
        raise NotAuthenticatedError(BAD_CODE)


def _owner(session: Session, phone: str) -> User | None:
    return session.scalars(select(User).where(User.phone == phone)).one_or_none()
