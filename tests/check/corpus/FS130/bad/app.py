"""A connection opened in the view and closed in teardown, used while streaming."""

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


@app.get("/rows")
def rows():
    db = get_db()

    @stream_with_context
    def generate():
        for row in db.execute("select name from items"):
            yield f"{row[0]}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/names")
def names():
    @stream_with_context
    def generate():
        for row in get_db().execute("select name from items"):
            yield f"{row[0]}\n"

    return Response(generate(), mimetype="text/plain")
