"""The JSON API against its OpenAPI document, and the endpoints added with it."""

from __future__ import annotations

import itertools
import re

import pytest

from .conftest import Shopper, csrf_token

_emails = (f"api{n}@example.com" for n in itertools.count())
ITEM = "71053"  # White Metal Lantern, in the shipped sample
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Values that make a required parameter's request valid.
REQUIRED_VALUES = {"q": "lantern"}


@pytest.fixture(scope="module")
def document(app):
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture()
def token(client):
    """A fresh shopper's API token, made on their account page."""
    person = Shopper(client, next(_emails))
    person.register()
    page = client.post(
        "/account/tokens",
        data={"csrf_token": csrf_token(client, "/account"), "name": "tests"},
    )
    assert page.status_code == 200
    token = re.search(rb'id="new-token" readonly value="([^"]+)"', page.data)[1]
    person.logout()
    return token.decode()


def api_routes(app) -> set[tuple[str, str]]:
    """Every (OpenAPI path, method) the app serves under /api and /similar."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/similar/")):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - IGNORED_METHODS:
                routes.add((path, method.lower()))
    return routes


def documented(document) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
    }


def concrete(path: str) -> str:
    return path.replace("{item_id}", ITEM)


def query_parameters(operation) -> dict[str, dict]:
    return {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}


def get_operations(document):
    for path, operations in document["paths"].items():
        if "get" in operations:
            yield path, operations["get"]


def test_document_lists_every_route_and_method(app, document):
    assert document["openapi"].startswith("3.")
    assert documented(document) == api_routes(app)


def test_document_lists_every_query_parameter(client, document):
    """Each GET names, in its unknown-parameter error, the parameters the code
    accepts; they must be the documented ones."""
    for path, operation in get_operations(document):
        response = client.get(concrete(path) + "?zz_unknown=1")
        assert response.status_code == 400, path
        error = response.get_json()["error"]
        assert error["parameter"] == "zz_unknown"
        known = error["message"].rpartition("; known: ")[2]
        accepted = set() if known == "none" else set(known.split(", "))
        assert accepted == set(query_parameters(operation)), path


def valid_args(operation) -> dict[str, str]:
    args = {}
    for name, parameter in query_parameters(operation).items():
        if parameter["required"]:
            args[name] = REQUIRED_VALUES[name]
    return args


def bound_cases(operation):
    """(parameter, value, should the code accept it) for every documented bound."""
    for name, parameter in query_parameters(operation).items():
        schema = parameter["schema"]
        if schema["type"] in ("integer", "number"):
            low, high = schema["minimum"], schema["maximum"]
            step = 1 if schema["type"] == "integer" else 0.5
            yield name, low, True
            yield name, high, True
            yield name, low - step, False
            yield name, high + step, False
            yield name, "abc", False
        if "enum" in schema:
            for value in schema["enum"]:
                yield name, value, True
            yield name, "no-such-choice", False
        if "maxLength" in schema:
            yield name, "a" * schema["maxLength"], True
            yield name, "a" * (schema["maxLength"] + 1), False
        if parameter["required"]:
            yield name, None, False


def test_every_documented_bound_is_enforced(client, document):
    for path, operation in get_operations(document):
        for name, value, accepted in bound_cases(operation):
            args = valid_args(operation)
            if name == "page":
                args["per_page"] = "1"  # the window allows page 1000 at 1 per page
            if value is None:
                args.pop(name)
            else:
                args[name] = str(value)
            response = client.get(concrete(path), query_string=args)
            body = response.get_json()
            where = f"{path} {name}={value!r}: {response.status_code} {body}"
            if accepted:
                assert response.status_code != 400, where
            else:
                assert response.status_code == 400, where
                assert body["error"]["parameter"] == name, where
            assert str(response.status_code) in operation["responses"], where


def test_every_operation_documents_its_errors(document):
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "200" in responses, (path, method)
            assert "400" in responses, (path, method)
            for status, response in responses.items():
                if not status.startswith("2"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == error, (path, method, status)


def test_feedback_body_fields_match_the_document(client, document, token):
    schema = document["components"]["schemas"]["Feedback"]
    response = client.post(
        "/api/users/me/feedback",
        json={"zz_unknown": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["parameter"] == "zz_unknown"
    assert set(error["message"].rpartition("; known: ")[2].split(", ")) == set(
        schema["properties"]
    )
    assert schema["properties"]["kind"]["enum"] == ["like", "unlike", "rating"]


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"kind": "like"}, "item_id"),
        ({"item_id": "", "kind": "like"}, "item_id"),
        ({"item_id": ITEM, "kind": "love"}, "kind"),
        ({"item_id": ITEM, "kind": "rating"}, "stars"),
        ({"item_id": ITEM, "kind": "rating", "stars": 6}, "stars"),
        ({"item_id": ITEM, "kind": "rating", "stars": 0}, "stars"),
        ({"item_id": ITEM, "kind": "rating", "stars": 4.5}, "stars"),
        ({"item_id": ITEM, "kind": "rating", "stars": True}, "stars"),
        ({"item_id": ITEM, "kind": "like", "stars": 5}, "stars"),
        ({"item_id": ITEM, "kind": "like", "colour": "red"}, "colour"),
    ],
)
def test_feedback_refuses_a_bad_body_naming_the_field(client, token, body, parameter):
    response = client.post(
        "/api/users/me/feedback",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_parameter"
    assert error["parameter"] == parameter


def test_feedback_needs_a_json_object(client, token):
    response = client.post(
        "/api/users/me/feedback",
        data="stars=5",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_body"


def test_feedback_for_an_unknown_product_is_404(client, token):
    response = client.post(
        "/api/users/me/feedback",
        json={"item_id": "NO-SUCH", "kind": "like"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_token_rates_likes_and_gets_new_recommendations(client, token):
    headers = {"Authorization": f"Bearer {token}"}
    cold = client.get("/api/users/me/recommendations?k=10", headers=headers)
    assert cold.status_code == 200
    state = client.post(
        "/api/users/me/feedback",
        json={"item_id": ITEM, "kind": "rating", "stars": 5},
        headers=headers,
    ).get_json()
    assert state == {"item_id": ITEM, "liked": False, "rating": 5}
    state = client.post(
        "/api/users/me/feedback",
        json={"item_id": ITEM, "kind": "like"},
        headers=headers,
    ).get_json()
    assert state["liked"] is True and state["rating"] == 5
    warm = client.get("/api/users/me/recommendations?k=10", headers=headers)
    ids = [r["item_id"] for r in warm.get_json()["results"]]
    assert ids != [r["item_id"] for r in cold.get_json()["results"]]
    assert ITEM not in ids
    assert any("collaborative" in r["sources"] for r in warm.get_json()["results"])
    state = client.post(
        "/api/users/me/feedback",
        json={"item_id": ITEM, "kind": "unlike"},
        headers=headers,
    ).get_json()
    assert state["liked"] is False


def test_bought_together(client):
    body = client.get(f"/api/products/{ITEM}/bought-together?k=5").get_json()
    assert body["item_id"] == ITEM and body["k"] == 5
    assert 0 < len(body["results"]) <= 5
    shared = [r["shared_baskets"] for r in body["results"]]
    assert shared == sorted(shared, reverse=True) and shared[-1] >= 2
    assert ITEM not in [r["item_id"] for r in body["results"]]
    missing = client.get("/api/products/NO-SUCH/bought-together")
    assert missing.status_code == 404


def test_suggest_completes_a_half_typed_word(client):
    body = client.get("/api/suggest?q=lant&k=5").get_json()
    assert 0 < len(body["suggestions"]) <= 5
    for suggestion in body["suggestions"]:
        assert suggestion["kind"] == "product"
        assert "lant" in suggestion["text"].lower()


def test_suggest_falls_back_to_a_keyword_search(client):
    # No title has a word starting "lanterns", but the keyword search finds
    # lanterns by their stem.
    body = client.get("/api/suggest?q=metal lanterns").get_json()
    assert any("Lantern" in s["text"] for s in body["suggestions"])


def test_wrong_method_is_json(client):
    response = client.post("/api/search?q=x")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_a_too_large_body_is_refused(client, token):
    response = client.post(
        "/api/users/me/feedback",
        json={"item_id": "x" * 100_000, "kind": "like"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"


def test_wrong_method_names_the_allowed_ones(client):
    response = client.post("/api/search?q=lantern")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("value", ["1_0", "\u0665", "1e1", " 10"])
def test_numbers_are_plain_ascii(client, value):
    response = client.get(
        "/api/search", query_string={"q": "lantern", "per_page": value}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["parameter"] == "per_page"


def test_deeply_nested_json_is_a_bad_body(client, token):
    body = "[" * 5000 + "]" * 5000
    response = client.post(
        "/api/users/me/feedback",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_body"
