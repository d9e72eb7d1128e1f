"""Registration, login and logout."""

from __future__ import annotations

import logging
import math
import re
import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from web import login_manager
from web.db import User

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_NAME = 100
MAX_PASSWORD = 1024

# Failed logins are counted in the shop database rather than in memory, so
# that every gunicorn worker and a restarted server see the same count.
LOGIN_WINDOW_SECONDS = 300
# Per account: a password guesser gets five tries in five minutes.
MAX_FAILURES_PER_EMAIL = 5
# Per client address: higher, as a household or an office shares one address.
MAX_FAILURES_PER_ADDRESS = 20


class ShopUser(UserMixin):
    """The logged-in shopper, as flask-login sees them."""

    def __init__(self, user: User, generation: int | None = None):
        self.record = user
        self.id = user.id
        self.name = user.name
        self.email = user.email
        if generation is None:
            generation = current_app.extensions["shop"].db.session_generation(user.id)
        self.generation = generation

    def get_id(self) -> str:
        # The session generation rides in the cookie: logging out moves it
        # on, so a copy of an old cookie no longer logs anyone in.
        return f"{self.id}:{self.generation}"


@login_manager.user_loader
def load_user(user_id: str) -> ShopUser | None:
    user_part, _, generation_part = user_id.partition(":")
    if not (user_part.isdigit() and generation_part.isdigit()):
        return None
    db = current_app.extensions["shop"].db
    user = db.user_by_id(int(user_part))
    if user is None or db.session_generation(user.id) != int(generation_part):
        return None
    return ShopUser(user, int(generation_part))


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
        if not name or len(name) > MAX_NAME:
            errors.append(f"Enter your name (at most {MAX_NAME} characters).")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
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


def throttle_keys(email: str) -> list[tuple[str, int]]:
    """What failed logins are counted by, each with its limit."""
    config = current_app.config
    return [
        (
            f"email:{email}",
            config.get("LOGIN_MAX_FAILURES_PER_EMAIL", MAX_FAILURES_PER_EMAIL),
        ),
        (
            f"address:{request.remote_addr}",
            config.get("LOGIN_MAX_FAILURES_PER_ADDRESS", MAX_FAILURES_PER_ADDRESS),
        ),
    ]


def locked_out_for(email: str) -> int:
    """Seconds until another login attempt is allowed; 0 when it is now."""
    db = current_app.extensions["shop"].db
    db.prune_login_failures(time.time() - LOGIN_WINDOW_SECONDS)
    wait = 0.0
    for key, limit in throttle_keys(email):
        count, oldest = db.login_failures(key, LOGIN_WINDOW_SECONDS)
        if count >= limit and oldest is not None:
            wait = max(wait, oldest + LOGIN_WINDOW_SECONDS - time.time())
    return math.ceil(wait) if wait > 0 else 0


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in with email and password."""
    error = None
    status = 200
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()[:254]
        password = request.form.get("password", "")[:MAX_PASSWORD]
        db = current_app.extensions["shop"].db
        wait = locked_out_for(email)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            log.warning("login throttled for %s from %s", email, request.remote_addr)
            error = (
                "Too many failed attempts. Wait "
                f"{minutes} minute{'s' if minutes != 1 else ''} and try again."
            )
            response = render_template("login.html", error=error, email=email)
            return response, 429, {"Retry-After": str(wait)}
        user = db.user_by_email(email)
        if user and check_password_hash(user.password_hash, password):
            db.clear_login_failures(f"email:{email}")
            login_user(ShopUser(user), remember=bool(request.form.get("remember")))
            return redirect(safe_next(request.args.get("next")))
        db.record_login_failure([key for key, _limit in throttle_keys(email)])
        error = "That email and password don't match an account."
        status = 401
    return render_template("login.html", error=error, email=email), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Log out and go home."""
    current_app.extensions["shop"].db.end_sessions(current_user.id)
    logout_user()
    session.pop("undo", None)
    flash("You are logged out.")
    return redirect(url_for("shop.home"))


def shopper_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None
