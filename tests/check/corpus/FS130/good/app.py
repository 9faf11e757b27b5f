"""The stream opens and closes its own connection; other views keep the teardown."""

import sqlite3

from flask import Flask, Response, g

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
