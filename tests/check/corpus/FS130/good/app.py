"""The stream opens and closes its own connection; other views keep the teardown."""

import sqlite3

from flask import Flask, Response, g, stream_with_context

app = Flask(__name__)


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect("app.db")
    return g.db


@app.teardown_appcontext
def close_db(exception):
    db = g.pop("db", None)
    if db is not None:
        db.close()


@app.get("/count")
def count():
    return str(get_db().execute("select count(*) from items").fetchone()[0])


@app.get("/rows")
def rows():
    def generate():
        db = sqlite3.connect("app.db")
        try:
            for row in db.execute("select name from items"):
                yield f"{row[0]}\n"
        finally:
            db.close()

    return Response(generate(), mimetype="text/plain")


@app.teardown_request
def log_request(exception):
    # Reads g, closes nothing: the stream may use g.request_id.
    app.logger.info("request %s done", g.get("request_id"))


@app.get("/traced")
def traced():
    g.request_id = "r1"

    @stream_with_context
    def generate():
        yield f"{g.request_id}\n"

    return Response(generate(), mimetype="text/plain")
