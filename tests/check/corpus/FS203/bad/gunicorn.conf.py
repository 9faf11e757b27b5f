# Long streams need a long timeout (they do not: this watches the worker).
worker_class = "gthread"
threads = 32
timeout = 0
