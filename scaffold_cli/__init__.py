"""flask-stream-scaffold: generate Flask projects whose streaming endpoints are done right."""
