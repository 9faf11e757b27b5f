"""The session is read only while streaming: the response has no Vary: Cookie."""

from flask import Flask, Response, session, stream_with_context

app = Flask(__name__)


@app.get("/greeting")
def greeting():
    @stream_with_context
    def generate():
        yield f"hello {session.get('user', 'stranger')}\n"

    return Response(generate(), mimetype="text/plain")
