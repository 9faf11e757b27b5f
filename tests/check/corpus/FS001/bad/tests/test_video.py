from flask import Response

from app import app


def test_video_streams():
    response = app.test_client().get("/video", buffered=False)
    assert isinstance(response, Response)
    assert next(response.response).startswith(b"--frame"
    response.close()
