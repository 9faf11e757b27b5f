worker_class = "gevent"
timeout = 3600
