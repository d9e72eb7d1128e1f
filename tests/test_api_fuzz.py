"""The JSON API fuzzed from its own OpenAPI document with schemathesis.

Every operation gets generated requests, valid ones and invalid ones, with a
shopper's API token; none may answer with a server error, and each answer must
match what the document says (status code, content type, body schema).

Known limit: ``schemathesis.pytest.from_fixture`` fails under pytest 9
(``'Function' object has no attribute '_nodeid'``), so each operation's
strategy is drawn through Hypothesis directly.
"""

from __future__ import annotations

import itertools
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from web.openapi import openapi_document

from .conftest import Shopper, csrf_token

EXAMPLES_PER_OPERATION = 40
SCHEMA_PATH = "/api/openapi.json"
# Schemathesis leaves out the operation it loads the document from.
OPERATIONS = [
    label
    for result in schemathesis.openapi.from_dict(
        openapi_document()
    ).get_all_operations()
    if (label := result.ok().label) != f"GET {SCHEMA_PATH}"
]
_emails = (f"fuzz{n}@example.com" for n in itertools.count())


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi(SCHEMA_PATH, app)


@pytest.fixture(scope="module")
def fuzz_token(app):
    client = app.test_client()
    Shopper(client, next(_emails)).register()
    page = client.post(
        "/account/tokens",
        data={"csrf_token": csrf_token(client, "/account"), "name": "fuzz"},
    )
    return re.search(rb'id="new-token" readonly value="([^"]+)"', page.data)[1].decode()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_generated_request_breaks_the_api(api_schema, fuzz_token, label, mode):
    operation = next(
        result.ok()
        for result in api_schema.get_all_operations()
        if result.ok().label == label
    )
    checks = [not_a_server_error, content_type_conformance]
    if mode is GenerationMode.POSITIVE:
        checks += [status_code_conformance, response_schema_conformance]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case):
        case.call_and_validate(
            headers={"Authorization": f"Bearer {fuzz_token}"}, checks=checks
        )

    try:
        call()
    except Unsatisfiable:
        # Nothing this operation takes can be made invalid (a free-form id).
        pytest.skip(f"{label}: the document leaves no invalid request to send")
