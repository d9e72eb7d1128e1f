"""Registration, login and logout."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from web import login_manager
from web.db import User

bp = Blueprint("auth", __name__)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


class ShopUser(UserMixin):
    """The logged-in shopper, as flask-login sees them."""

    def __init__(self, user: User):
        self.record = user
        self.id = user.id
        self.name = user.name
        self.email = user.email


@login_manager.user_loader
def load_user(user_id: str) -> ShopUser | None:
    if not user_id.isdigit():
        return None
    user = current_app.extensions["shop"].db.user_by_id(int(user_id))
    return ShopUser(user) if user else None


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else the home page."""
    if not target:
        return url_for("shop.home")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
    ):
        return url_for("shop.home")
    return target


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Create an account and log in."""
    errors: list[str] = []
    form = {"email": "", "name": ""}
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        form = {"email": email, "name": name}
        if not EMAIL.match(email):
            errors.append("Enter a valid email address.")
        if not name:
            errors.append("Enter your name.")
        if len(password) < MIN_PASSWORD:
            errors.append(f"Choose a password of at least {MIN_PASSWORD} characters.")
        if not errors:
            db = current_app.extensions["shop"].db
            try:
                user = db.create_user(email, name, generate_password_hash(password))
            except ValueError:
                errors.append(
                    "An account with that email already exists. Log in instead."
                )
            else:
                login_user(ShopUser(user))
                flash(f"Welcome, {name}!")
                return redirect(url_for("shop.home"))
    status = 400 if errors else 200
    return render_template("register.html", errors=errors, form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in with email and password."""
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        user = current_app.extensions["shop"].db.user_by_email(email)
        if user and check_password_hash(user.password_hash, password):
            login_user(ShopUser(user), remember=bool(request.form.get("remember")))
            return redirect(safe_next(request.args.get("next")))
        error = "That email and password don't match an account."
    status = 401 if error else 200
    return render_template("login.html", error=error, email=email), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Log out and go home."""
    logout_user()
    flash("You are logged out.")
    return redirect(url_for("shop.home"))


def shopper_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None
