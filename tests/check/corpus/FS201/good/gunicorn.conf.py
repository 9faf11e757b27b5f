wsgi_app = "app:app"
worker_class = "gevent"
worker_connections = 1000
