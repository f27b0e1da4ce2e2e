"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

CheckStatus = Literal["ok", "down", "disabled"]


class Status(BaseModel):
    status: Literal["ok"]


class CheckResult(BaseModel):
    status: CheckStatus
    latency_ms: float | None


class Checks(BaseModel):
    database: CheckResult
    redis: CheckResult
    search: CheckResult
    broker: CheckResult


class Readiness(BaseModel):
    status: Literal["ok", "down"]
    checks: Checks
