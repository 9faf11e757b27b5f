"""A compressing WSGI middleware around an app that streams."""

from flask import Flask, Response

app = Flask(__name__)


class GzipMiddleware:
    """Stands for any compressing WSGI middleware: it buffers to compress."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        return self.wsgi_app(environ, start_response)


app.wsgi_app = GzipMiddleware(app.wsgi_app)


@app.get("/lines")
def lines():
    def generate():
        yield "a\n"

    return Response(generate(), mimetype="text/plain")
