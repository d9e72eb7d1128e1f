"""The shop's own database: accounts, ratings, likes and views (SQLite).

Every write is committed before the request that made it returns, and the
database runs in WAL mode, so a crash loses no feedback.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass

from indexer.catalog import Interaction
from recs.collaborative import event_strength

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS session_generations (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    user_id INTEGER NOT NULL REFERENCES users(id),
    item_id TEXT NOT NULL,
    stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    ts REAL NOT NULL,
    PRIMARY KEY (user_id, item_id)
);
CREATE TABLE IF NOT EXISTS likes (
    user_id INTEGER NOT NULL REFERENCES users(id),
    item_id TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (user_id, item_id)
);
CREATE TABLE IF NOT EXISTS views (
    user_id INTEGER NOT NULL REFERENCES users(id),
    item_id TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS views_user ON views(user_id, ts);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL
);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(key, ts);
"""

# Shop accounts appear in the interaction history under this prefix, apart
# from the customer ids of imported exports.
SHOP_USER_PREFIX = "shop:"


@dataclass
class User:
    id: int
    email: str
    name: str
    password_hash: str


@dataclass
class ApiToken:
    id: int
    name: str
    created_at: float
    last_used_at: float | None


def token_digest(token: str) -> str:
    """What is stored of an API token: its SHA-256.

    A token is 256 random bits, so a fast hash is enough; a slow password
    hash protects guessable secrets, which a token is not.
    """
    return hashlib.sha256(token.encode()).hexdigest()


class ShopDatabase:
    """Accounts and feedback, one SQLite connection per thread."""

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        self.connection.executescript(SCHEMA)

    @property
    def connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=10)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # Accounts

    def create_user(self, email: str, name: str, password_hash: str) -> User:
        """Raises ``ValueError`` when the email is already registered."""
        try:
            with self.connection as db:
                cursor = db.execute(
                    "INSERT INTO users (email, name, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (email, name, password_hash, time.time()),
                )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"an account for {email} already exists") from exc
        return User(cursor.lastrowid, email, name, password_hash)

    def user_by_id(self, user_id: int) -> User | None:
        row = self.connection.execute(
            "SELECT id, email, name, password_hash FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return User(*row) if row else None

    def session_generation(self, user_id: int) -> int:
        """Sessions carry this number; ending them all moves it on."""
        row = self.connection.execute(
            "SELECT generation FROM session_generations WHERE user_id = ?",
            (user_id,),
        ).fetchone()
        return row[0] if row else 0

    def end_sessions(self, user_id: int) -> None:
        """Make every session and remember-me cookie of ``user_id`` invalid."""
        with self.connection as db:
            db.execute(
                "INSERT INTO session_generations VALUES (?, 1) ON CONFLICT(user_id) "
                "DO UPDATE SET generation = generation + 1",
                (user_id,),
            )

    def user_by_email(self, email: str) -> User | None:
        row = self.connection.execute(
            "SELECT id, email, name, password_hash FROM users WHERE email = ?", (email,)
        ).fetchone()
        return User(*row) if row else None

    # Feedback

    def rate(self, user_id: int, item_id: str, stars: int) -> None:
        if not 1 <= stars <= 5:
            raise ValueError(f"stars must be 1 to 5, got {stars}")
        with self.connection as db:
            db.execute(
                "INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?)",
                (user_id, item_id, stars, time.time()),
            )

    def set_like(self, user_id: int, item_id: str, liked: bool) -> None:
        with self.connection as db:
            if liked:
                db.execute(
                    "INSERT OR REPLACE INTO likes VALUES (?, ?, ?)",
                    (user_id, item_id, time.time()),
                )
            else:
                db.execute(
                    "DELETE FROM likes WHERE user_id = ? AND item_id = ?",
                    (user_id, item_id),
                )

    def record_view(self, user_id: int, item_id: str) -> None:
        with self.connection as db:
            db.execute(
                "INSERT INTO views VALUES (?, ?, ?)", (user_id, item_id, time.time())
            )

    def rating_of(self, user_id: int, item_id: str) -> int | None:
        row = self.connection.execute(
            "SELECT stars FROM ratings WHERE user_id = ? AND item_id = ?",
            (user_id, item_id),
        ).fetchone()
        return row[0] if row else None

    def remove_rating(self, user_id: int, item_id: str) -> int | None:
        """Delete one rating; returns the stars it had, None when there was none."""
        stars = self.rating_of(user_id, item_id)
        with self.connection as db:
            db.execute(
                "DELETE FROM ratings WHERE user_id = ? AND item_id = ?",
                (user_id, item_id),
            )
        return stars

    def ratings(self, user_id: int) -> list[tuple[str, int, float]]:
        """``(item_id, stars, ts)`` of every rating, newest first."""
        rows = self.connection.execute(
            "SELECT item_id, stars, ts FROM ratings WHERE user_id = ? ORDER BY ts DESC",
            (user_id,),
        )
        return list(rows)

    def recent_views(self, user_id: int, limit: int) -> list[str]:
        """Products the shopper viewed, most recent first, each once."""
        rows = self.connection.execute(
            "SELECT item_id FROM views WHERE user_id = ? GROUP BY item_id "
            "ORDER BY MAX(ts) DESC LIMIT ?",
            (user_id, limit),
        )
        return [item_id for (item_id,) in rows]

    def likes(self, user_id: int) -> list[str]:
        rows = self.connection.execute(
            "SELECT item_id FROM likes WHERE user_id = ? ORDER BY ts DESC", (user_id,)
        )
        return [item_id for (item_id,) in rows]

    def interactions_of(self, user_id: int) -> list[Interaction]:
        """One shopper's ratings, likes and views as interactions."""
        shop_user = f"{SHOP_USER_PREFIX}{user_id}"
        rows = self.connection.execute(
            "SELECT item_id, 'rating', stars, ts FROM ratings WHERE user_id = ? "
            "UNION ALL SELECT item_id, 'like', 1, ts FROM likes WHERE user_id = ? "
            "UNION ALL SELECT item_id, 'view', 1, ts FROM views WHERE user_id = ?",
            (user_id, user_id, user_id),
        )
        return [Interaction(shop_user, *row) for row in rows]

    def only_views(self, user_id: int) -> bool:
        """Whether the shopper has looked at products but never rated or
        liked one: a new shopper known by this visit alone."""
        row = self.connection.execute(
            "SELECT EXISTS(SELECT 1 FROM ratings WHERE user_id = ?) "
            "OR EXISTS(SELECT 1 FROM likes WHERE user_id = ?)",
            (user_id, user_id),
        ).fetchone()
        return not row[0]

    def history(self, user_id: int) -> dict[str, float]:
        """Item id to summed strength; a disliked item maps to a negative value."""
        history: dict[str, float] = {}
        disliked = set()
        for interaction in self.interactions_of(user_id):
            strength = event_strength(interaction)
            if strength < 0:
                disliked.add(interaction.item_id)
            history[interaction.item_id] = (
                history.get(interaction.item_id, 0.0) + strength
            )
        for item_id in disliked:
            history[item_id] = -1.0
        return history

    def all_interactions(self) -> list[Interaction]:
        """Every shopper's feedback, for training."""
        rows = self.connection.execute(
            "SELECT user_id, item_id, 'rating', stars, ts FROM ratings "
            "UNION ALL SELECT user_id, item_id, 'like', 1, ts FROM likes "
            "UNION ALL SELECT user_id, item_id, 'view', 1, ts FROM views"
        )
        return [
            Interaction(f"{SHOP_USER_PREFIX}{user_id}", item_id, kind, weight, ts)
            for user_id, item_id, kind, weight, ts in rows
        ]

    # API tokens

    def create_token(self, user_id: int, name: str) -> str:
        """A new API token for ``user_id``; only its digest is kept."""
        token = secrets.token_urlsafe(32)
        with self.connection as db:
            db.execute(
                "INSERT INTO api_tokens (user_id, token_hash, name, created_at) "
                "VALUES (?, ?, ?, ?)",
                (user_id, token_digest(token), name, time.time()),
            )
        return token

    def user_by_token(self, token: str) -> User | None:
        digest = token_digest(token)
        row = self.connection.execute(
            "SELECT users.id, email, users.name, password_hash FROM api_tokens "
            "JOIN users ON users.id = api_tokens.user_id WHERE token_hash = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        with self.connection as db:
            db.execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?",
                (time.time(), digest),
            )
        return User(*row)

    def tokens(self, user_id: int) -> list[ApiToken]:
        rows = self.connection.execute(
            "SELECT id, name, created_at, last_used_at FROM api_tokens "
            "WHERE user_id = ? ORDER BY created_at DESC",
            (user_id,),
        )
        return [ApiToken(*row) for row in rows]

    def revoke_token(self, user_id: int, token_id: int) -> bool:
        """Delete one of ``user_id``'s own tokens; False when it is not theirs."""
        with self.connection as db:
            cursor = db.execute(
                "DELETE FROM api_tokens WHERE id = ? AND user_id = ?",
                (token_id, user_id),
            )
        return cursor.rowcount > 0

    # Login throttling

    def record_login_failure(self, keys: list[str]) -> None:
        now = time.time()
        with self.connection as db:
            db.executemany(
                "INSERT INTO login_failures VALUES (?, ?)", ((k, now) for k in keys)
            )

    def login_failures(self, key: str, window: float) -> tuple[int, float | None]:
        """Failures for ``key`` in the last ``window`` seconds, and the oldest."""
        count, oldest = self.connection.execute(
            "SELECT COUNT(*), MIN(ts) FROM login_failures WHERE key = ? AND ts > ?",
            (key, time.time() - window),
        ).fetchone()
        return count, oldest

    def clear_login_failures(self, key: str) -> None:
        with self.connection as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (key,))

    def prune_login_failures(self, older_than: float) -> None:
        """Drop failures recorded before ``older_than`` (seconds since the epoch)."""
        with self.connection as db:
            db.execute("DELETE FROM login_failures WHERE ts < ?", (older_than,))
