"""Socket timeouts above the blocking time, or none."""

import redis

BLOCK_MS = 10_000
client = redis.Redis.from_url("redis://localhost:6379/0", socket_timeout=BLOCK_MS / 1000 + 5)
patient = redis.Redis(socket_timeout=None)
pool = redis.ConnectionPool(socket_timeout=30)
pooled = redis.Redis(connection_pool=pool)


def read_events(last_id):
    while True:
        for _stream, entries in client.xread({"events": last_id}, block=BLOCK_MS) or []:
            for entry_id, _fields in entries:
                last_id = entry_id
                yield entry_id


def next_job():
    return patient.blpop(["jobs"], timeout=0)


def next_batch():
    return pooled.xread({"batches": "$"}, block=20_000)


OPTIONS = {"socket_timeout": 30}
configured = redis.Redis(**OPTIONS)


def next_entry():
    return configured.xread({"entries": "$"}, block=20_000)
