"""The shopper's own page: ratings and likes with undo, and API tokens."""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("account", __name__, url_prefix="/account")

MAX_TOKEN_NAME = 60
MAX_TOKENS = 20


def render_account(new_token: str | None = None, status: int = 200):
    shop = services()
    ratings = shop.db.ratings(current_user.id)
    likes = shop.db.likes(current_user.id)
    products = shop.backend.fetch([i for i, *_ in ratings] + likes)
    undo = session.get("undo")
    return render_template(
        "account.html",
        ratings=[(products.get(i), i, stars) for i, stars, _ts in ratings],
        liked=[(products.get(i), i) for i in likes],
        tokens=shop.db.tokens(current_user.id),
        new_token=new_token,
        undo=undo if undo and undo.get("user_id") == current_user.id else None,
    ), status


@bp.get("")
@login_required
def overview():
    """The shopper's ratings, likes and API tokens."""
    return render_account()


@bp.post("/ratings/<item_id>/remove")
@login_required
def remove_rating(item_id: str):
    """Take back a rating; the page offers to undo it."""
    stars = services().db.remove_rating(current_user.id, item_id)
    if stars is not None:
        session["undo"] = {
            "user_id": current_user.id,
            "kind": "rating",
            "item_id": item_id,
            "stars": stars,
        }
        flash("Rating removed.")
    return redirect(url_for("account.overview"), 303)


@bp.post("/likes/<item_id>/remove")
@login_required
def remove_like(item_id: str):
    """Take back a like; the page offers to undo it."""
    db = services().db
    if item_id in db.likes(current_user.id):
        db.set_like(current_user.id, item_id, False)
        session["undo"] = {
            "user_id": current_user.id,
            "kind": "like",
            "item_id": item_id,
        }
        flash("Like removed.")
    return redirect(url_for("account.overview"), 303)


@bp.post("/undo")
@login_required
def undo():
    """Restore the rating or like removed last."""
    last = session.pop("undo", None)
    if not last or last.get("user_id") != current_user.id:
        flash("There is nothing to undo.")
        return redirect(url_for("account.overview"), 303)
    db = services().db
    if last["kind"] == "rating":
        db.rate(current_user.id, last["item_id"], int(last["stars"]))
        flash("Rating restored.")
    else:
        db.set_like(current_user.id, last["item_id"], True)
        flash("Like restored.")
    return redirect(url_for("account.overview"), 303)


@bp.post("/tokens")
@login_required
def create_token():
    """Create an API token and show it once."""
    db = services().db
    name = request.form.get("name", "").strip()[:MAX_TOKEN_NAME] or "API token"
    if len(db.tokens(current_user.id)) >= MAX_TOKENS:
        flash(f"You have {MAX_TOKENS} tokens already; revoke one first.")
        return redirect(url_for("account.overview"), 303)
    token = db.create_token(current_user.id, name)
    log.info("user %s created API token %r", current_user.id, name)
    # Shown in this response only: it never goes into the session cookie.
    return render_account(new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """Revoke one of the shopper's own API tokens."""
    if not services().db.revoke_token(current_user.id, token_id):
        abort(404, "You have no token with that number.")
    flash("Token revoked; programs using it can no longer act for you.")
    return redirect(url_for("account.overview"), 303)
