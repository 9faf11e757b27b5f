worker_class = "gthread"
threads = 32
timeout = 30
graceful_timeout = 10
