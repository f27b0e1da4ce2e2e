"""Refusing a body of many unknown keys: ``validated()`` against pydantic alone,
in one run.

    python -m bench.validation --rounds 5

The body is what an anonymous caller can send to ``POST /auth/register``: a
JSON object of N unknown keys (the 1 MiB body limit admits about 87,000 keys
like ``"k00001": 1``). Rivals, each from the parsed dict to the 422's details:

* ``pydantic``    ``Register.model_validate(data)``, then the capped details of
                  its ``ValidationError`` (one pydantic error built per key);
* ``validated``   ``app.core.validation.validated``: past 50 unknown keys it
                  validates the known ones and counts the rest;
* ``parse``       ``orjson.loads`` of the body alone: the floor any refusal pays.

Rivals run interleaved, round after round; each figure is the median over rounds,
in milliseconds, with its ratio to ``parse``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from app.core.errors import validation_details
from app.core.exceptions import ValidationFailed
from app.core.validation import validated
from app.schemas.users import Register


def by_pydantic(data: dict[str, Any]) -> int:
    try:
        Register.model_validate(data)
    except ValidationError as exc:
        return len(validation_details(exc, location="body"))
    raise AssertionError("the body should be refused")


def by_validated(data: dict[str, Any]) -> int:
    try:
        validated(Register, data, location="body")
    except ValidationFailed as exc:
        return len(exc.details or [])
    raise AssertionError("the body should be refused")


def timed(call: Callable[[Any], object], argument: Any) -> float:
    start = time.perf_counter()
    call(argument)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(f"ms per refusal, median of {args.rounds} rounds")
    print(
        f"{'unknown keys':>12} {'body':>9} {'parse':>8} {'pydantic':>10} {'validated':>10}  ratios"
    )
    for count in (60, 1_000, 10_000, 87_000):
        body = orjson.dumps({f"k{i:05d}": 1 for i in range(count)})
        data: dict[str, Any] = orjson.loads(body)
        assert by_pydantic(data) == by_validated(data) == 51
        samples: dict[str, list[float]] = {"parse": [], "pydantic": [], "validated": []}
        for _ in range(args.rounds):
            samples["parse"].append(timed(orjson.loads, body))
            samples["pydantic"].append(timed(by_pydantic, data))
            samples["validated"].append(timed(by_validated, data))
        median = {name: statistics.median(values) for name, values in samples.items()}
        print(
            f"{count:>12,} {len(body):>8,}B {median['parse']:>8.2f} {median['pydantic']:>10.2f}"
            f" {median['validated']:>10.2f}  pydantic {median['pydantic'] / median['parse']:.1f}x"
            f" parse, validated {median['validated'] / median['parse']:.1f}x parse,"
            f" pydantic/validated {median['pydantic'] / median['validated']:.1f}x"
        )


if __name__ == "__main__":
    main()
