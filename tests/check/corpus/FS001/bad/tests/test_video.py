import pytest
from flask import Response

from app import app


@pytest.fixture
def client():
    with app.test_client() as client:
        yield client


def test_video_streams(client):
    response = client.get("/video", buffered=False)
    assert isinstance(response, Response)
    assert next(response.response).startswith(b"--frame"
    response.close()
