"""Middleware that does not compress."""

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app)


@app.get("/lines")
def lines():
    def generate():
        yield "a\n"

    return Response(generate(), mimetype="text/plain")
