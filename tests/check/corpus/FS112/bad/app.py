"""Headers, cookies and status changed while streaming: they were sent already."""

from flask import Flask, Response

app = Flask(__name__)


@app.get("/report")
def report():
    def generate():
        yield "start\n"
        response.headers["X-Total"] = "3"
        response.set_cookie("seen", "1")
        response.status_code = 206

    response = Response(generate(), mimetype="text/plain")
    return response
