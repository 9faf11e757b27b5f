"""Blocking Redis reads longer than the client's socket timeout."""

import redis

BLOCK_MS = 10_000
client = redis.Redis.from_url("redis://localhost:6379/0")
slow = redis.Redis(socket_timeout=2)


def read_events(last_id):
    while True:
        for _stream, entries in client.xread({"events": last_id}, block=BLOCK_MS) or []:
            for entry_id, _fields in entries:
                last_id = entry_id
                yield entry_id


def next_job():
    return slow.blpop(["jobs"], timeout=0)
