"""The OpenAPI 3 document of the JSON API, built from the bounds the views enforce."""

from __future__ import annotations

import logging

from indexer.search.base import MAX_RESULT_WINDOW, SEARCH_MODES, SORTS
from web.params import (
    FEEDBACK_KINDS,
    MAX_ITEM_ID_LENGTH,
    MAX_PER_PAGE,
    MAX_QUERY_LENGTH,
    MAX_SUGGEST,
    MAX_SUGGEST_LENGTH,
    MAX_TOP_K,
)

log = logging.getLogger(__name__)

MAX_PRICE = 1e9


def query(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def integer(low: int, high: int, default: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default}


def number(low: float, high: float) -> dict:
    return {"type": "number", "minimum": low, "maximum": high}


TOP_K = query("k", integer(1, MAX_TOP_K, 10), "How many products to return.")
ITEM_ID = {
    "name": "item_id",
    "in": "path",
    "required": True,
    "description": "A product id, as in the catalog.",
    "schema": {"type": "string"},
}

SEARCH_PARAMETERS = [
    query(
        "q",
        {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH},
        "The text to search for.",
        required=True,
    ),
    query(
        "mode",
        {"type": "string", "enum": list(SEARCH_MODES), "default": "hybrid"},
        "keyword (BM25), semantic (embeddings) or hybrid (both, fused).",
    ),
    query(
        "page",
        integer(1, MAX_RESULT_WINDOW, 1),
        f"Page number; page * per_page may be at most {MAX_RESULT_WINDOW}.",
    ),
    query("per_page", integer(1, MAX_PER_PAGE, 20), "Results per page."),
    query(
        "sort",
        {"type": "string", "enum": list(SORTS), "default": "relevance"},
        "Result order.",
    ),
    query("price_min", number(0, MAX_PRICE), "Lowest price, inclusive."),
    query(
        "price_max",
        number(0, MAX_PRICE),
        "Highest price, inclusive; not below price_min.",
    ),
    query(
        "category",
        {"type": "array", "items": {"type": "string"}},
        "A category path (levels joined by ' > '); matches it and every "
        "category below it. Repeat for any of several.",
    ),
    query(
        "brand",
        {"type": "array", "items": {"type": "string"}},
        "A brand; repeat for any of several.",
    ),
    query("rating_min", number(0, 5), "Lowest average rating, inclusive."),
]

PRODUCT = {
    "type": "object",
    "required": ["item_id", "title", "available"],
    "properties": {
        "item_id": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "price": {"type": "number", "nullable": True},
        "category": {"type": "string", "description": "levels joined by ' > '"},
        "brand": {"type": "string"},
        "image_url": {"type": "string"},
        "rating_avg": {"type": "number", "nullable": True},
        "rating_count": {"type": "integer"},
        "popularity": {"type": "number"},
        "available": {"type": "boolean"},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "score": {"type": "number", "description": "in lists: higher is better"},
    },
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def products_list(extra: dict | None = None) -> dict:
    item = ref("Product")
    if extra:
        item = {"allOf": [ref("Product"), {"type": "object", "properties": extra}]}
    return {
        "type": "object",
        "properties": {
            "item_id": {"type": "string"},
            "k": {"type": "integer"},
            "results": {"type": "array", "items": item},
        },
    }


def ok(schema: dict, description: str = "Success") -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def errors(*statuses: int) -> dict:
    meaning = {
        400: "A parameter or body field is missing, malformed, out of bounds "
        "or unknown; `parameter` names it.",
        401: "Not logged in, or the bearer token is unknown or revoked.",
        403: "A session-cookie request without the X-CSRFToken header.",
        404: "No such product or path.",
        405: "The path does not accept this method.",
        413: "The request body is too large.",
        500: "An unexpected error on the server.",
        503: "The search engine is unavailable; try again shortly.",
    }
    return {
        str(status): {
            "description": meaning[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
        for status in statuses
    }


def operation(summary: str, parameters: list, responses: dict, **extra) -> dict:
    return {
        "summary": summary,
        "parameters": parameters,
        "responses": responses,
        **extra,
    }


def openapi_document() -> dict:
    """The whole document; `tests/test_api.py` checks it against the routes."""
    similar = operation(
        "Products most like this one by content",
        [ITEM_ID, TOP_K],
        {"200": ok(products_list()), **errors(400, 404, 405, 500, 503)},
    )
    personal = [{"session": []}, {"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Shop recommender API",
            "version": "1",
            "description": "Search, similar products and recommendations. "
            "Every error is JSON: {error: {code, message, parameter?}}.",
        },
        "paths": {
            "/api/search": {
                "get": operation(
                    "Search products with filters, facets, sorting and pages",
                    SEARCH_PARAMETERS,
                    {
                        "200": ok(ref("SearchResults")),
                        **errors(400, 405, 500, 503),
                    },
                )
            },
            "/api/suggest": {
                "get": operation(
                    "Categories and product titles for a half-typed query",
                    [
                        query(
                            "q",
                            {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_SUGGEST_LENGTH,
                            },
                            "What the shopper has typed so far.",
                            required=True,
                        ),
                        query("k", integer(1, MAX_SUGGEST, 8), "How many suggestions."),
                    ],
                    {"200": ok(ref("Suggestions")), **errors(400, 405, 500, 503)},
                )
            },
            "/similar/{item_id}": {"get": similar},
            "/api/products/{item_id}/similar": {"get": similar},
            "/api/products/{item_id}": {
                "get": operation(
                    "One product",
                    [ITEM_ID],
                    {"200": ok(ref("Product")), **errors(400, 404, 405, 500, 503)},
                )
            },
            "/api/products/{item_id}/bought-together": {
                "get": operation(
                    "Products most often in the same basket as this one",
                    [ITEM_ID, TOP_K],
                    {
                        "200": ok(
                            products_list({"shared_baskets": {"type": "integer"}})
                        ),
                        **errors(400, 404, 405, 500, 503),
                    },
                )
            },
            "/api/users/me/recommendations": {
                "get": operation(
                    "For-you recommendations of the logged-in shopper",
                    [TOP_K],
                    {
                        "200": ok(ref("Recommendations")),
                        **errors(400, 401, 405, 500, 503),
                    },
                    security=personal,
                )
            },
            "/api/users/me/feedback": {
                "post": operation(
                    "Like, unlike or rate a product; the next recommendations "
                    "reflect it at once",
                    [],
                    {"200": ok(ref("FeedbackState")), **errors(400, 401, 403, 404)},
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": ref("Feedback")}},
                    },
                    security=personal,
                    description="With a session cookie, send the page's CSRF "
                    "token in the X-CSRFToken header; a bearer token needs none.",
                )
            },
            "/api/openapi.json": {
                "get": operation(
                    "This document",
                    [],
                    {"200": ok({"type": "object"}), **errors(400, 405)},
                )
            },
        },
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Create a token on your account page.",
                },
            },
            "schemas": {
                "Product": PRODUCT,
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {
                                    "type": "string",
                                    "example": "bad_parameter",
                                    "description": "bad_parameter, bad_body, "
                                    "unauthorized, invalid_token, csrf_failed, "
                                    "not_found, method_not_allowed, "
                                    "request_entity_too_large, internal_error, "
                                    "search_unavailable",
                                },
                                "message": {"type": "string"},
                                "parameter": {
                                    "type": "string",
                                    "description": "the offending parameter",
                                },
                            },
                        }
                    },
                },
                "Facet": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "key": {"type": "string"},
                            "count": {"type": "integer"},
                        },
                    },
                },
                "SearchResults": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string"},
                        "mode": {"type": "string", "enum": list(SEARCH_MODES)},
                        "total": {"type": "integer"},
                        "page": {"type": "integer"},
                        "per_page": {"type": "integer"},
                        "results": {"type": "array", "items": ref("Product")},
                        "facets": {
                            "type": "object",
                            "properties": {
                                name: ref("Facet")
                                for name in ("category", "brand", "price", "rating")
                            },
                        },
                    },
                },
                "Suggestions": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string"},
                        "suggestions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "text": {"type": "string"},
                                    "kind": {
                                        "type": "string",
                                        "enum": ["product", "category"],
                                    },
                                    "item_id": {"type": "string", "nullable": True},
                                },
                            },
                        },
                    },
                },
                "Recommendations": {
                    "type": "object",
                    "properties": {
                        "user": {"type": "integer"},
                        "results": {
                            "type": "array",
                            "items": {
                                "allOf": [
                                    ref("Product"),
                                    {
                                        "type": "object",
                                        "properties": {
                                            "sources": {
                                                "type": "array",
                                                "items": {
                                                    "type": "string",
                                                    "enum": [
                                                        "collaborative",
                                                        "content",
                                                        "popularity",
                                                    ],
                                                },
                                            }
                                        },
                                    },
                                ]
                            },
                        },
                    },
                },
                "Feedback": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["item_id", "kind"],
                    "properties": {
                        "item_id": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_ITEM_ID_LENGTH,
                        },
                        "kind": {"type": "string", "enum": list(FEEDBACK_KINDS)},
                        "stars": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 5,
                            "description": "required for a rating, refused otherwise",
                        },
                    },
                },
                "FeedbackState": {
                    "type": "object",
                    "properties": {
                        "item_id": {"type": "string"},
                        "liked": {"type": "boolean"},
                        "rating": {"type": "integer", "nullable": True},
                    },
                },
            },
        },
    }
