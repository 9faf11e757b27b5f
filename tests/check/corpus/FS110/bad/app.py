"""Session writes inside the streamed generator: lost, the cookie went out already."""

from flask import Flask, Response, session, stream_with_context

app = Flask(__name__)


@app.get("/counter")
def counter():
    session.get("n")

    @stream_with_context
    def generate():
        session["n"] = session.get("n", 0) + 1
        session.pop("flash", None)
        session.modified = True
        yield "done\n"

    return Response(generate(), mimetype="text/plain")
