"""Flask-Compress told to leave streamed responses alone."""

from flask import Flask, Response
from flask_compress import Compress

app = Flask(__name__)
app.config["COMPRESS_STREAMS"] = False
Compress(app)


@app.get("/lines")
def lines():
    def generate():
        yield "a\n"

    return Response(generate(), mimetype="text/plain")
