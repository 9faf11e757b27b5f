"""The view reads the session first, so Flask adds Vary: Cookie to the headers."""

from flask import Flask, Response, session, stream_with_context

app = Flask(__name__)


@app.get("/greeting")
def greeting():
    user = session.get("user", "stranger")

    @stream_with_context
    def generate():
        yield f"hello {user} ({session.get('lang', 'en')})\n"

    return Response(generate(), mimetype="text/plain")
