"""The session is written in the view, before the headers go out."""

from flask import Flask, Response, session, stream_with_context

app = Flask(__name__)


@app.get("/counter")
def counter():
    count = session.get("n", 0) + 1
    session["n"] = count
    session.pop("flash", None)

    @stream_with_context
    def generate():
        yield f"{count} {session.get('n')}\n"

    return Response(generate(), mimetype="text/plain")
