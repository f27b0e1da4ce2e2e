"""A stand-in for Tencent Cloud SMS's ``SendSms`` (2021-01-11), for the tests:
no Tencent endpoint is reachable from here, so the SDK's endpoint is pointed
at this HTTP server instead.

It checks what Tencent documents and answers as Tencent does:

* the TC3-HMAC-SHA256 signature (https://cloud.tencent.com/document/api/382/52072),
  recomputed from the request with the secret key it knows, so a wrong secret
  fails as it would for real (``AuthFailure.SignatureFailure``); an unknown
  secret id is ``AuthFailure.SecretIdNotFound``, a stale timestamp
  ``AuthFailure.SignatureExpire``;
* the action, version and region headers, and the payload's fields;
* answers with HTTP 200 and ``{"Response": {...}}``: the ``SendStatusSet``,
  one status per number, or an ``Error``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_ID = "AKIDstandin000000000000000000000000"
SECRET_KEY = "standin-secret-key-0000000000000"
REGION = "ap-guangzhou"
APP_ID = "1400000000"
SIGN_NAME = "Example"
TEMPLATE_ID = "100001"
SERVICE = "sms"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str, *, timestamp: int, content_type: str, host: str, payload: bytes
) -> str:
    """The signature Tencent computes for a POST to ``/`` (TC3-HMAC-SHA256)."""
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{date}/{SERVICE}/tc3_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    secret_date = _hmac(f"TC3{secret_key}".encode(), date)
    secret_signing = _hmac(_hmac(secret_date, SERVICE), "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencentSms:
    """The server. Set ``codes`` (number → status code) for numbers that must
    fail, ``error`` for an error of the whole request, ``delay`` to answer
    late. ``requests`` holds each payload it accepted as signed; ``refusals``
    each error it answered."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.error: tuple[str, str] | None = None
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                answer = fake.answer(dict(self.headers.items()), body)
                if fake.delay:
                    time.sleep(fake.delay)
                data = json.dumps({"Response": answer}).encode()
                try:
                    self.send_response(200)
                    # Exactly this: the SDK reads an error only from this type.
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def settings(self) -> dict[str, Any]:
        """The app's settings for sending through this stand-in."""
        return {
            "sms_sender": "tencent",
            "tencent_sms_secret_id": SECRET_ID,
            "tencent_sms_secret_key": SECRET_KEY,
            "tencent_sms_region": REGION,
            "tencent_sms_endpoint": self.endpoint,
            "tencent_sms_app_id": APP_ID,
            "tencent_sms_sign_name": SIGN_NAME,
            "tencent_sms_template_id": TEMPLATE_ID,
            "tencent_sms_timeout": 1,
        }

    # -- what Tencent checks -----------------------------------------------------

    def answer(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        problem = self._authenticate(headers, body) or self._check(headers, body)
        if problem is None and self.error is not None:
            problem = self.error
        if problem is not None:
            self.refusals.append(problem[0])
            return {"Error": {"Code": problem[0], "Message": problem[1]}, "RequestId": request_id}
        payload: dict[str, Any] = json.loads(body)
        self.requests.append(payload)
        statuses = []
        for number in payload["PhoneNumberSet"]:
            code = self.codes.get(number, "Ok")
            statuses.append(
                {
                    "SerialNo": uuid.uuid4().hex if code == "Ok" else "",
                    "PhoneNumber": number,
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": "",
                    "Code": code,
                    "Message": "send success" if code == "Ok" else f"{code} (stand-in)",
                    "IsoCode": "CN",
                }
            )
        return {"SendStatusSet": statuses, "RequestId": request_id}

    def _authenticate(self, headers: dict[str, str], body: bytes) -> tuple[str, str] | None:
        authorization = headers.get("Authorization", "")
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return "AuthFailure.InvalidAuthorization", "Authorization is not TC3-HMAC-SHA256"
        fields = dict(part.strip().split("=", 1) for part in rest.split(","))
        secret_id, date, service, terminator = fields["Credential"].split("/")
        if secret_id != SECRET_ID:
            return "AuthFailure.SecretIdNotFound", "The SecretId is not found"
        timestamp = int(headers.get("X-TC-Timestamp", "0"))
        if abs(time.time() - timestamp) > 300:
            return "AuthFailure.SignatureExpire", "The signature expired"
        scope = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if (date, service, terminator) != (scope, SERVICE, "tc3_request"):
            return "AuthFailure.InvalidAuthorization", "The credential scope is wrong"
        if fields["SignedHeaders"] != "content-type;host":
            return "AuthFailure.InvalidAuthorization", "The signed headers are wrong"
        expected = tc3_signature(
            SECRET_KEY,
            timestamp=timestamp,
            content_type=headers.get("Content-Type", ""),
            host=headers.get("Host", ""),
            payload=body,
        )
        if not hmac.compare_digest(expected, fields["Signature"]):
            return "AuthFailure.SignatureFailure", "The provided credentials could not be validated"
        return None

    def _check(self, headers: dict[str, str], body: bytes) -> tuple[str, str] | None:
        if headers.get("X-TC-Action") != "SendSms":
            return "InvalidAction", f"No action {headers.get('X-TC-Action')!r}"
        if headers.get("X-TC-Version") != "2021-01-11":
            return "NoSuchVersion", f"No version {headers.get('X-TC-Version')!r}"
        if headers.get("X-TC-Region") != REGION:
            return "InvalidParameterValue", f"Region {headers.get('X-TC-Region')!r} is wrong"
        payload: dict[str, Any] = json.loads(body)
        numbers = payload.get("PhoneNumberSet")
        if not isinstance(numbers, list) or not numbers or len(numbers) > 200:
            return "MissingParameter", "PhoneNumberSet is required (1 to 200 numbers)"
        for number in numbers:
            if not (isinstance(number, str) and number.startswith("+") and number[1:].isdigit()):
                return "InvalidParameterValue.IncorrectPhoneNumber", f"{number!r} is not E.164"
        if payload.get("SmsSdkAppId") != APP_ID:
            return "InvalidParameterValue.SdkAppIdNotExist", "The SmsSdkAppId does not exist"
        if payload.get("SignName") != SIGN_NAME:
            return "FailedOperation.SignatureIncorrectOrUnapproved", "The sign is not approved"
        if payload.get("TemplateId") != TEMPLATE_ID:
            return "FailedOperation.TemplateIncorrectOrUnapproved", "The template is not approved"
        params = payload.get("TemplateParamSet")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return "InvalidParameterValue.TemplateParameterFormatError", "Parameters are strings"
        return None
