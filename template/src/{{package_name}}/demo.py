"""A page at ``/`` that opens every stream of the app and shows its events as they arrive."""

from __future__ import annotations

from flask import Blueprint, render_template

from .endpoints import ENDPOINTS

bp = Blueprint("demo", __name__)


@bp.get("/")
def index() -> str:
    """List the endpoints; static/demo.js connects to each one."""
    return render_template("index.html", endpoints=ENDPOINTS)
