"""Settings read with app.config.from_object: pages, styles and JSON are compressed."""

COMPRESS_MIMETYPES = [
    "text/html",
    "text/css",
    "text/xml",
    "text/javascript",
    "application/json",
    "application/javascript",
]
