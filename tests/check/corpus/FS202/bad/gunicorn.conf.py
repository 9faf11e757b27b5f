worker_class = "gthread"
threads = 4
