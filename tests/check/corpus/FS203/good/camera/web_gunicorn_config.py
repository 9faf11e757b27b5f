import os

bind = "0.0.0.0:8080"
worker_class = "gevent"
# Set by the deployment: not known here, so not judged.
timeout = int(os.environ.get("WORKER_TIMEOUT", "30"))
