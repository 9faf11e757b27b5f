"""A camera stream; its test module, an old module and the nginx configuration do not parse."""

from flask import Flask, Response

app = Flask(__name__)


def frames():
    for number in range(3):
        yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + bytes([number]) + b"\r\n"


@app.get("/video")
def video():
    return Response(frames(), mimetype="multipart/x-mixed-replace; boundary=frame")
