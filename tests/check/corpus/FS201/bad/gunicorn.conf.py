wsgi_app = "app:app"
workers = 4
