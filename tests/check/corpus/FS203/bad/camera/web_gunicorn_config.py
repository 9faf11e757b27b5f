bind = "0.0.0.0:8080"
worker_class = "gevent"
# The MJPEG stream never ends: no timeout (it does not need one, this watches the worker).
timeout = 0
