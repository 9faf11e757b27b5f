"""A test that makes its app's heartbeat an hour long: not the deployed app's heartbeat."""

from app import app


def test_a_quiet_stream_opens():
    app.config.update(HEARTBEAT_SECONDS=3600)
    response = app.test_client().get("/events", buffered=False)
    assert response.status_code == 200
    response.close()
