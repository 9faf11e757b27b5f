"""The servers the benchmark runs: two reference apps and a shim around the generated one.

All three serve ``GET /events?count=N&interval=S&topic=T`` with the same event payload
(``{"seq":..,"of":..,"topic":..,"streams_opened":..}``), ids from 0, and a final ``end`` event.
With ``BENCH_STAMP=1`` in the environment, every payload also carries ``"t"``: the server's
``time.time_ns()`` when the event was encoded, so the client can measure delivery latency.
"""
