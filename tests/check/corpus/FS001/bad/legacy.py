# Kept from the Python 2 version of the app: Latin-1 bytes without a coding line.
from flask import Blueprint

legacy = Blueprint("legacy", __name__)


@legacy.route("/greetings")
def greetings():
    yield "café"
