from flask import Flask, Response

app = Flask(__name__)


def frames():
    while True:
        yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n\r\n"


@app.get("/video")
def video():
    return Response(frames(), mimetype="multipart/x-mixed-replace; boundary=frame")
