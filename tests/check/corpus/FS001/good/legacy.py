# -*- coding: latin-1 -*-
# Kept from the Python 2 version of the app, with its coding line.
from flask import Blueprint

legacy = Blueprint("legacy", __name__)


@legacy.route("/greetings")
def greetings():
    yield "café"
