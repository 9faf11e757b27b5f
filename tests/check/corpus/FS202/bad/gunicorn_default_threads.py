worker_class = "gthread"
