"""The shop front: home, search, product pages and feedback."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from indexer.search.base import PRICE_BUCKETS
from web.params import BadParameter, search_request

bp = Blueprint("shop", __name__)

RAIL_SIZE = 12


def services():
    return current_app.extensions["shop"]


@bp.get("/")
def home():
    """Trending products, and the shopper's own rail when logged in."""
    shop = services()
    for_you = []
    if current_user.is_authenticated:
        history = shop.db.history(current_user.id)
        if any(strength > 0 for strength in history.values()):
            recommendations = shop.recommender.for_you(history, RAIL_SIZE)
            products = shop.backend.fetch([r.item_id for r in recommendations])
            for_you = [
                (products[r.item_id], r.sources)
                for r in recommendations
                if r.item_id in products
            ]
    trending = shop.products(shop.recommender.trending(RAIL_SIZE))
    return render_template("home.html", trending=trending, for_you=for_you)


@bp.get("/search")
def search():
    """Search results with price facets and pages."""
    try:
        query = search_request(request.args)
    except BadParameter as exc:
        return render_template(
            "search.html", error=str(exc), query=None, args=request.args
        ), 400
    if not query.query:
        return render_template(
            "search.html", query=None, response=None, args=request.args
        )
    shop = services()
    response = shop.search(query)
    products = shop.products([hit.item_id for hit in response.hits])
    pages = max(1, -(-min(response.total, 1000) // query.per_page))
    return render_template(
        "search.html",
        query=query,
        response=response,
        products=products,
        pages=pages,
        price_buckets=PRICE_BUCKETS,
        args=request.args,
    )


@bp.get("/product/<item_id>")
def product(item_id: str):
    """A product's details, similar products and what its buyers also bought."""
    shop = services()
    found = shop.product(item_id)
    if found is None:
        abort(404)
    similar = shop.products([i for i, _ in shop.recommender.similar(item_id, 8)])
    also_bought = shop.products(
        [i for i, _ in shop.recommender.also_bought(item_id, 8)]
    )
    my_rating = liked = None
    if current_user.is_authenticated:
        shop.db.record_view(current_user.id, item_id)
        my_rating = shop.db.rating_of(current_user.id, item_id)
        liked = item_id in shop.db.likes(current_user.id)
    return render_template(
        "product.html",
        product=found,
        similar=similar,
        also_bought=also_bought,
        my_rating=my_rating,
        liked=liked,
    )


@bp.post("/product/<item_id>/rate")
@login_required
def rate(item_id: str):
    """Save the shopper's 1-5 star rating."""
    shop = services()
    if shop.product(item_id) is None:
        abort(404)
    try:
        stars = int(request.form.get("stars", ""))
        shop.db.rate(current_user.id, item_id, stars)
    except ValueError:
        flash("Choose 1 to 5 stars.")
        return redirect(url_for("shop.product", item_id=item_id), 303)
    flash(f"Thanks! You rated this {stars} star{'s' if stars != 1 else ''}.")
    return redirect(url_for("shop.product", item_id=item_id), 303)


@bp.post("/product/<item_id>/like")
@login_required
def like(item_id: str):
    """Like or unlike a product."""
    shop = services()
    if shop.product(item_id) is None:
        abort(404)
    liked = request.form.get("liked", "1") == "1"
    shop.db.set_like(current_user.id, item_id, liked)
    flash("Added to your likes." if liked else "Removed from your likes.")
    return redirect(url_for("shop.product", item_id=item_id), 303)


@bp.app_template_filter("money")
def money(value) -> str:
    return "price on request" if value is None else f"£{value:,.2f}"
