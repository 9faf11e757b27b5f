worker_class = "gthread"
threads = 32
