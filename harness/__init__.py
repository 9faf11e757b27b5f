"""The server harness shared by the tests and the benchmarks.

It renders generated projects and runs them on the real stack, on 127.0.0.1 with free ports:
gunicorn and the proxies (`stack`), redis-server (`redis_stack`), stream clients (`client`),
and the channels' fault-injection run with its checker (`chaos`). Every process it starts is
a direct child, stopped by its pid.
"""
