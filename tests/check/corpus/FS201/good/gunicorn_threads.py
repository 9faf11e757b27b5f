wsgi_app = "app:app"
workers = 4
threads = 32
