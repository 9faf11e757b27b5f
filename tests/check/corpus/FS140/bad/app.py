"""Flask-Compress with its default COMPRESS_STREAMS = True in an app that streams."""

from flask import Flask, Response
from flask_compress import Compress

app = Flask(__name__)
Compress(app)


@app.get("/lines")
def lines():
    def generate():
        yield "a\n"

    return Response(generate(), mimetype="text/plain")
