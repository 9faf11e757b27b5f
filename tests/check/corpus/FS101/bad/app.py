"""Generators that read the request context after the view has returned."""

from flask import Flask, Response, current_app, g, render_template, request, session, url_for
from flask_login import current_user

app = Flask(__name__)


@app.get("/wrapper")
def wrapper_style():
    def generate():
        yield request.args.get("q", "")

    return Response(generate(), mimetype="text/plain")


def module_generator():
    yield f"{g.user}\n"


@app.get("/returned")
def returned():
    return module_generator()


def user_name():
    return session.get("user", "anonymous")


@app.get("/helper")
def through_helper():
    session.get("user")

    def generate():
        yield user_name()

    return Response(generate(), mimetype="text/plain")


def make_stream():
    def generate():
        yield current_app.name

    return generate()


@app.get("/made")
def made_by_helper():
    return Response(make_stream(), mimetype="text/plain")


@app.get("/genexp")
def generator_expression():
    return Response((f"{request.path} {n}\n" for n in range(3)), mimetype="text/plain")


@app.get("/template")
def template():
    page = app.jinja_env.get_template("page.html")
    return Response(page.generate(), mimetype="text/html")


@app.get("/template-stream")
def template_stream():
    return Response(app.jinja_env.from_string("{{ request.path }}").stream(), mimetype="text/html")


@app.get("/direct")
def direct():
    # The view is the generator: Flask iterates it after the view has returned.
    yield "q=" + request.args.get("q", "")


@app.get("/page")
def page_parts():
    def generate():
        yield render_template("header.html")
        yield url_for("direct")

    return Response(generate(), mimetype="text/html")


@app.get("/mine")
def mine():
    def generate():
        yield f"hello {current_user.name}\n"

    return Response(generate(), mimetype="text/plain")
