"""The JSON API for other services: search, similar products, recommendations."""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    render_template,
    request,
)
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from indexer.catalog import Product
from indexer.search.base import SearchError
from web.params import (
    FEEDBACK_FIELDS,
    FEEDBACK_KINDS,
    MAX_ITEM_ID_LENGTH,
    MAX_SUGGEST,
    MAX_SUGGEST_LENGTH,
    MAX_TOP_K,
    SEARCH_PARAMS,
    BadParameter,
    integer,
    reject_unknown,
    search_request,
)
from web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str, **extra):
    return jsonify({"error": {"code": code, "message": message, **extra}}), status


def register_error_handlers(app: Flask) -> None:
    def is_api() -> bool:
        return request.path.startswith(("/api/", "/similar/"))

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        body, status = error_response(exc.status, exc.code, exc.message)
        if status == 401:
            body.headers["WWW-Authenticate"] = 'Bearer realm="shop"'
        return body, status

    @app.errorhandler(BadParameter)
    def bad_parameter(exc: BadParameter):
        if is_api():
            return error_response(400, "bad_parameter", str(exc), parameter=exc.name)
        return str(exc), 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if is_api():
            code = (exc.name or "error").lower().replace(" ", "_")
            response = error_response(
                exc.code or 500, code, exc.description or exc.name
            )
            if exc.code == 401:
                response[0].headers["WWW-Authenticate"] = 'Bearer realm="shop"'
            # Keep what the exception says about itself, e.g. 405's Allow.
            for name, value in exc.get_headers():
                if name.lower() != "content-type":
                    response[0].headers[name] = value
            return response
        if exc.code in (400, 403, 404, 405, 413, 429):
            return render_template(
                "error.html", code=exc.code, title=exc.name, detail=exc.description
            ), exc.code
        return exc

    @app.errorhandler(SearchError)
    def search_unavailable(exc: SearchError):
        current_app.logger.warning("search unavailable: %s", exc)
        if is_api():
            # The details (addresses, connection errors) are for the log only.
            return error_response(
                503,
                "search_unavailable",
                "search is unavailable right now; try again shortly",
            )
        return render_template("error.html", code=503, title=UNAVAILABLE), 503

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api():
            return error_response(
                500, "internal_error", "something went wrong on our side; try again"
            )
        return render_template("error.html", code=500, title=BROKEN), 500


UNAVAILABLE = "Search is unavailable right now; please try again shortly."
BROKEN = "Something went wrong on our side. Please try again in a moment."


def product_json(product: Product, score: float | None = None) -> dict:
    doc = product.to_doc()
    if score is not None:
        doc["score"] = round(score, 6)
    return doc


@bp.get("/api/search")
def search():
    """Search products: keyword, semantic or hybrid, with filters and facets."""
    reject_unknown(request.args, SEARCH_PARAMS)
    if not (request.args.get("q") or "").strip():
        raise BadParameter("q", "required: the text to search for")
    search_request_ = search_request(request.args)
    response = services().search(search_request_)
    return jsonify(
        {
            "query": search_request_.query,
            "mode": response.mode,
            "total": response.total,
            "page": search_request_.page,
            "per_page": search_request_.per_page,
            "results": [
                product_json(product, hit.score)
                for hit, product in services().hit_products(response.hits)
            ],
            "facets": {
                name: [{"key": b.key, "count": b.count} for b in buckets]
                for name, buckets in response.facets.items()
            },
        }
    )


@bp.get("/similar/<item_id>")
@bp.get("/api/products/<item_id>/similar")
def similar(item_id: str):
    """Products most like ``item_id`` by content (kNN over embeddings)."""
    reject_unknown(request.args, ("k",))
    top_k = integer(request.args, "k", 10, 1, MAX_TOP_K)
    try:
        hits = services().backend.similar(item_id, top_k)
    except KeyError:
        raise ApiError(404, "not_found", f"no product with id {item_id!r}") from None
    return jsonify(
        {
            "item_id": item_id,
            "k": top_k,
            "results": [
                product_json(product, hit.score)
                for hit, product in services().hit_products(hits)
            ],
        }
    )


@bp.get("/api/products/<item_id>")
def product(item_id: str):
    """One product's details."""
    reject_unknown(request.args, ())
    found = services().product(item_id)
    if found is None:
        raise ApiError(404, "not_found", f"no product with id {item_id!r}")
    return jsonify(product_json(found))


@bp.get("/api/products/<item_id>/bought-together")
def bought_together(item_id: str):
    """Products most often in the same basket as ``item_id``."""
    reject_unknown(request.args, ("k",))
    top_k = integer(request.args, "k", 10, 1, MAX_TOP_K)
    if services().product(item_id) is None:
        raise ApiError(404, "not_found", f"no product with id {item_id!r}")
    pairs = services().bought_together(item_id, top_k)
    products = services().backend.fetch([i for i, _ in pairs])
    return jsonify(
        {
            "item_id": item_id,
            "k": top_k,
            "results": [
                {**product_json(products[i]), "shared_baskets": n}
                for i, n in pairs
                if i in products
            ],
        }
    )


@bp.get("/api/suggest")
def suggest():
    """Categories and product titles for a half-typed query."""
    reject_unknown(request.args, ("q", "k"))
    text = (request.args.get("q") or "").strip()
    if not text:
        raise BadParameter("q", "required: the start of a query")
    if len(text) > MAX_SUGGEST_LENGTH:
        raise BadParameter("q", f"at most {MAX_SUGGEST_LENGTH} characters")
    top_k = integer(request.args, "k", 8, 1, MAX_SUGGEST)
    suggestions = services().suggest(text, top_k)
    return jsonify(
        {
            "query": text,
            "suggestions": [
                {"text": s.text, "kind": s.kind, "item_id": s.item_id}
                for s in suggestions
            ],
        }
    )


def authenticated_shopper():
    """The shopper a request speaks for: the bearer token's owner when an
    ``Authorization`` header is sent, else the session's.

    Sets ``g.auth_via`` to ``"token"`` or ``"session"``.
    """
    from web.auth import ShopUser

    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "unauthorized", "send the header as 'Authorization: Bearer TOKEN'"
            )
        user = services().db.user_by_token(token.strip())
        if user is None:
            raise ApiError(
                401,
                "invalid_token",
                "that API token is unknown or revoked; create one on your account page",
            )
        g.auth_via = "token"
        return ShopUser(user)
    if current_user.is_authenticated:
        g.auth_via = "session"
        return current_user
    raise ApiError(
        401,
        "unauthorized",
        "log in, or send an API token as 'Authorization: Bearer TOKEN'",
    )


@bp.get("/api/users/me/recommendations")
def my_recommendations():
    """For-you recommendations for the logged-in shopper or the token's owner."""
    reject_unknown(request.args, ("k",))
    top_k = integer(request.args, "k", 10, 1, MAX_TOP_K)
    shopper = authenticated_shopper()
    history = services().db.history(shopper.id)
    recommendations = services().recommender.for_you(
        history, top_k, session_only=services().db.only_views(shopper.id)
    )
    return jsonify(
        {
            "user": shopper.id,
            "results": [
                {**product_json(r.product, r.score), "sources": r.sources}
                for r in recommendations
            ],
        }
    )


def feedback_body() -> tuple[str, str, int | None]:
    """``(item_id, kind, stars)`` from the JSON body, every field checked."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        # The JSON decoder recurses once per nesting level.
        raise ApiError(400, "bad_body", "the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "bad_body",
            "send a JSON object such as "
            '{"item_id": "71053", "kind": "rating", "stars": 5} '
            "with Content-Type: application/json",
        )
    reject_unknown(body, FEEDBACK_FIELDS)
    item_id = body.get("item_id")
    if not isinstance(item_id, str) or not 1 <= len(item_id) <= MAX_ITEM_ID_LENGTH:
        raise BadParameter(
            "item_id", f"required: a product id of 1 to {MAX_ITEM_ID_LENGTH} characters"
        )
    kind = body.get("kind")
    if kind not in FEEDBACK_KINDS:
        raise BadParameter(
            "kind", f"must be one of {', '.join(FEEDBACK_KINDS)}, got {kind!r}"
        )
    stars = body.get("stars")
    if kind == "rating":
        if isinstance(stars, bool) or not isinstance(stars, int):
            raise BadParameter("stars", f"required for a rating: 1 to 5, got {stars!r}")
        if not 1 <= stars <= 5:
            raise BadParameter("stars", f"must be between 1 and 5, got {stars}")
    elif stars is not None:
        raise BadParameter("stars", f"only a rating has stars, not {kind!r}")
    return item_id, kind, stars


@bp.post("/api/users/me/feedback")
def my_feedback():
    """Save a like, an unlike or a 1-5 star rating; counts at once."""
    shopper = authenticated_shopper()
    if g.auth_via == "session":
        # The API is exempt from form CSRF checks, so a cookie-borne session
        # must prove it comes from the shop's own pages.
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError:
            raise ApiError(
                403,
                "csrf_failed",
                "send the page's CSRF token in an X-CSRFToken header, "
                "or use an API token",
            ) from None
    item_id, kind, stars = feedback_body()
    shop = services()
    if shop.product(item_id) is None:
        raise ApiError(404, "not_found", f"no product with id {item_id!r}")
    if kind == "rating":
        shop.db.rate(shopper.id, item_id, stars)
    else:
        shop.db.set_like(shopper.id, item_id, kind == "like")
    return jsonify(
        {
            "item_id": item_id,
            "liked": item_id in shop.db.likes(shopper.id),
            "rating": shop.db.rating_of(shopper.id, item_id),
        }
    )


@bp.get("/api/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API."""
    from web.openapi import openapi_document

    reject_unknown(request.args, ())
    return jsonify(openapi_document())
