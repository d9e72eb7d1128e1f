"""The health check for load balancers and operators: each dependency's state."""

from __future__ import annotations

from flask import Blueprint, jsonify

from web.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the shop can serve, 503 when something it needs is down."""
    ready, checks = services().health()
    degraded = not all(check["ok"] for check in checks.values())
    status = "down" if not ready else "degraded" if degraded else "ok"
    response = jsonify({"status": status, "checks": checks})
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if ready else 503
