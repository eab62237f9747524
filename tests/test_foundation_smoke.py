"""First checks that the app builds on the test database and answers /healthz."""


def test_healthz_ok(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ok"
    assert resp.get_json()["migrations"] == "head"
