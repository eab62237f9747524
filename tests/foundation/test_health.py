"""/healthz answers 200 at head, 503 when migrations are behind or the database is unreachable."""

from __future__ import annotations

from sqlalchemy import text

from plugin import create_app
from plugin.migrate import head_revision
from tests.conftest import make_settings


def test_healthz_ok(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok", "migrations": "head", "revision": head_revision()}


def test_healthz_reports_migrations_behind(client, database):
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        resp = client.get("/healthz")
        assert resp.status_code == 503
        assert resp.get_json()["migrations"] == "behind"
        assert resp.get_json()["current"] == "older"
    finally:
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()})


def test_healthz_reports_unreachable_database(tmp_path):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    app = create_app(make_settings(url, tmp_path / "instance"))
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "error", "database": "unreachable"}
