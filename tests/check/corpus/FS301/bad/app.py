"""Streams that do not send X-Accel-Buffering: no, behind nginx."""

from flask import Blueprint, Flask, Response

app = Flask(__name__)
feeds = Blueprint("feeds", __name__, url_prefix="/feeds")


def lines():
    yield "a\n"


@app.get("/events")
def events():
    return Response(lines(), mimetype="application/x-ndjson", headers={"Cache-Control": "no-cache"})


@feeds.route("/<int:feed_id>")
def feed(feed_id):
    return Response(lines(), mimetype="text/plain", headers={"Cache-Control": "no-cache"})


app.register_blueprint(feeds)
