"""An app with one streaming view, served by gunicorn."""

from flask import Flask, Response

app = Flask(__name__)


@app.get("/lines")
def lines():
    def generate():
        yield "a\n"

    return Response(generate(), mimetype="text/plain", headers={"Cache-Control": "no-cache"})
