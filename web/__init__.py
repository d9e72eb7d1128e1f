"""The shop front and JSON API, as a Flask application factory."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from indexer.config import DEFAULT_SECRET_KEY, Settings
from indexer.embeddings import Embedder

log = logging.getLogger(__name__)

csrf = CSRFProtect()
login_manager = LoginManager()


MIN_SECRET_KEY = 32


def check_secret_key(settings: Settings) -> None:
    """Refuse, outside development, a secret key anyone could guess.

    Raises
    ------
    RuntimeError
        Naming the setting and how to make a good one.
    """
    if settings.environment == "development":
        return
    if settings.secret_key == DEFAULT_SECRET_KEY:
        problem = "is the default"
    elif len(settings.secret_key) < MIN_SECRET_KEY:
        problem = f"has fewer than {MIN_SECRET_KEY} characters"
    else:
        return
    raise RuntimeError(
        f"SHOP_ENV={settings.environment} but SECRET_KEY {problem}; set it to a "
        'long random value, e.g. python -c "import secrets; '
        'print(secrets.token_hex(32))"'
    )


def create_app(
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    test_config: dict | None = None,
) -> Flask:
    """Build the shop app.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to the environment.
    embedder : Embedder, optional
        Shared query embedder (tests pass one to load the model once).
    test_config : dict, optional
        Flask config overrides for tests.
    """
    from web.services import ShopServices

    settings = settings or Settings()
    testing = bool(test_config and test_config.get("TESTING"))
    check_secret_key(settings)
    if not logging.getLogger().handlers and not testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        # Each failed call to a down node would log a traceback per try; the
        # shop's own warning names the outage once a minute.
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.environment == "production",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if test_config:
        app.config.update(test_config)

    services = ShopServices(settings, embedder)
    app.extensions["shop"] = services

    @app.after_request
    def security_headers(response):
        # No framing (the rate and like buttons must not be clickjacked), no
        # content sniffing, and no full URLs leaked to other sites.
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."

    from web import account, api, auth, health, shop

    app.register_blueprint(auth.bp)
    app.register_blueprint(shop.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    csrf.exempt(api.bp)
    api.register_error_handlers(app)

    if not testing:
        threading.Thread(target=services.warm_up, daemon=True).start()
    return app
