"""The JSON API for other services: search, similar products, recommendations."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from indexer.catalog import Product
from indexer.search.base import SearchError
from web.params import (
    MAX_TOP_K,
    SEARCH_PARAMS,
    BadParameter,
    integer,
    reject_unknown,
    search_request,
)

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
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(BadParameter)
    def bad_parameter(exc: BadParameter):
        if is_api():
            return error_response(400, "bad_parameter", str(exc), parameter=exc.name)
        return str(exc), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if is_api():
            code = (exc.name or "error").lower().replace(" ", "_")
            return error_response(exc.code or 500, code, exc.description or exc.name)
        return exc

    @app.errorhandler(SearchError)
    def search_unavailable(exc: SearchError):
        current_app.logger.warning("search unavailable: %s", exc)
        if is_api():
            return error_response(503, "search_unavailable", str(exc))
        return "Search is unavailable right now; please try again shortly.", 503


def product_json(product: Product, score: float | None = None) -> dict:
    doc = product.to_doc()
    if score is not None:
        doc["score"] = round(score, 6)
    return doc


def services():
    return current_app.extensions["shop"]


@bp.get("/api/search")
def search():
    """Search products: keyword, semantic or hybrid, with filters and facets."""
    reject_unknown(request.args, SEARCH_PARAMS)
    if not (request.args.get("q") or "").strip():
        raise BadParameter("q", "required: the text to search for")
    search_request_ = search_request(request.args)
    response = services().search(search_request_)
    products = services().backend.fetch([hit.item_id for hit in response.hits])
    return jsonify(
        {
            "query": search_request_.query,
            "mode": response.mode,
            "total": response.total,
            "page": search_request_.page,
            "per_page": search_request_.per_page,
            "results": [
                product_json(products[hit.item_id], hit.score)
                for hit in response.hits
                if hit.item_id in products
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
        hits = services().recommender.similar(item_id, top_k)
    except KeyError:
        raise ApiError(404, "not_found", f"no product with id {item_id!r}") from None
    products = services().backend.fetch([i for i, _ in hits])
    return jsonify(
        {
            "item_id": item_id,
            "k": top_k,
            "results": [product_json(products[i], s) for i, s in hits if i in products],
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


@bp.get("/api/users/me/recommendations")
def my_recommendations():
    """For-you recommendations for the logged-in shopper."""
    reject_unknown(request.args, ("k",))
    top_k = integer(request.args, "k", 10, 1, MAX_TOP_K)
    if not current_user.is_authenticated:
        raise ApiError(401, "unauthorized", "log in to get personal recommendations")
    history = services().db.history(current_user.id)
    recommendations = services().recommender.for_you(history, top_k)
    products = services().backend.fetch([r.item_id for r in recommendations])
    return jsonify(
        {
            "user": current_user.id,
            "results": [
                {**product_json(products[r.item_id], r.score), "sources": r.sources}
                for r in recommendations
                if r.item_id in products
            ],
        }
    )
