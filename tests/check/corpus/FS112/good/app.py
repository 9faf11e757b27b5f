"""Everything the headers carry is settled in the view."""

from flask import Flask, Response

app = Flask(__name__)


@app.get("/report")
def report():
    def generate():
        yield "start\n"

    response = Response(generate(), mimetype="text/plain")
    response.headers["X-Total"] = "3"
    response.set_cookie("seen", "1")
    response.status_code = 206
    return response


@app.get("/jobs")
def jobs():
    job = {"state": "queued"}

    class Task:
        status = "queued"

    task = Task()

    def generate():
        # Not the response: plain objects the stream updates as it goes.
        task.status = "running"
        job["headers"] = {}
        yield f"{task.status}\n"

    return Response(generate(), mimetype="text/plain")
