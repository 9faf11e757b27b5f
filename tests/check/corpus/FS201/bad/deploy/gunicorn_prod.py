wsgi_app = "app:app"
worker_class = "sync"
timeout = 120
