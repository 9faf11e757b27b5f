import os

access_log_format = '%(h)s %(l)s %(t)s "%(r)s" %(s)s %(b)s'

if os.environ.get("JSON_LOGGER"):
    logconfig_dict = {"version": 1, "disable_existing_loggers": False}
