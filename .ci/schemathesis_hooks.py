"""Schemathesis hooks for .ci/extra: reach the operations on existing objects, not only their 404s.

Random UUIDs in a path find nothing, and a referral's `case` must be a case of the caller: on their own,
20 of the API's operations would only ever answer 404 or 400. ``.ci/extra`` seeds the demo data and puts
the ids of the partner's objects in the environment; these hooks draw each id from that pool most of the
time (keeping the generated value otherwise, so that 404s and malformed ids are still tried).
"""

from __future__ import annotations

import os
import re

import schemathesis
from hypothesis import strategies as st

#: Path parameter → the environment variable listing the seeded ids it may take.
POOLS = {
    (r"^/api/v1/referrals/\{id\}/", "id"): "ST_REFERRAL_IDS",
    (r"^/api/v1/cases/\{id\}/", "id"): "ST_CASE_IDS",
    (r"^/api/v1/webhooks/\{id\}/", "id"): "ST_WEBHOOK_IDS",
    (r"^/api/v1/webhooks/\{id\}/deliveries/\{delivery_id\}/", "delivery_id"): "ST_DELIVERY_IDS",
}


def _pool(variable: str) -> list[str]:
    return [value for value in os.environ.get(variable, "").split(",") if value]


def _with_seeded(value, pool: list[str]):
    """The seeded ids three times out of four, the generated value otherwise."""
    if not pool:
        return st.just(value)
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool), st.sampled_from(pool), st.just(value))


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path if context.operation is not None else ""
    strategy = st.just(dict(path_parameters))
    for (pattern, name), variable in POOLS.items():
        if name in path_parameters and re.match(pattern, path):
            pool = _pool(variable)
            strategy = strategy.flatmap(
                lambda params, name=name, pool=pool: _with_seeded(params[name], pool).map(
                    lambda value, params=params, name=name: {**params, name: value}
                )
            )
    return strategy


@schemathesis.hook
def flatmap_body(context, body):
    """A new referral's ``case``: one of the partner's cases, most of the time."""
    operation = context.operation
    if (
        operation is None
        or operation.method.upper() != "POST"
        or operation.path != "/api/v1/referrals/"
        or not isinstance(body, dict)
        or "case" not in body
    ):
        return st.just(body)
    return _with_seeded(body["case"], _pool("ST_CASE_IDS")).map(lambda case: {**body, "case": case})
