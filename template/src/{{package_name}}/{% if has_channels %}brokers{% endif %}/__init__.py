"""Message brokers behind one small interface: publish to a topic, subscribe from a position.

``open_broker(url, ...)`` picks the backend from the URL's scheme:

* ``memory://``: in this process only (`MemoryBroker`), for development, tests and a single
  worker;
* ``redis://`` and ``rediss://``: Redis Streams (`RedisBroker`), shared by every worker and
  host. It needs the ``redis`` package (the project's ``redis`` extra);
* ``redis+sentinel://``: the same on the primary of a Sentinel group, followed across
  failovers; ``redis+cluster://``: the same on a Redis Cluster, topics spread over its
  shards (see ``_topology`` for every form).
"""

from __future__ import annotations

from ._base import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    Closed,
    Event,
    Item,
    NotReplicated,
    Position,
    Reset,
    Subscription,
)
from ._memory import MemoryBroker

# The Redis broker's URL schemes: one server, the primary of a Sentinel group, a Cluster.
SERVER_SCHEMES = ("redis", "rediss")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerUnavailable",
    "Closed",
    "Event",
    "Item",
    "MemoryBroker",
    "NotReplicated",
    "Position",
    "Reset",
    "Subscription",
    "open_broker",
]


def open_broker(  # noqa: PLR0913  (each a setting of its own)
    url: str,
    *,
    history: int,
    queue_size: int,
    block_seconds: float,
    tick_seconds: float,
    retry_seconds: float,
    replay_limit: int,
    publish_replicas: int = 0,
    publish_wait_seconds: float = 1.0,
    merge_reads: bool = True,
) -> Broker:
    """The broker *url* names; ``ValueError`` for a scheme no backend serves.

    *history* is how many events each topic keeps for replay, *queue_size* how many live
    events a subscriber may fall behind before its stream is ended, *block_seconds* how long
    the Redis reader blocks waiting for entries (keep it at or below the heartbeat
    interval), *tick_seconds* how often every stream is woken to check on itself,
    *retry_seconds* how long the Redis reader retries a broker that does not answer before
    it ends the streams, and *replay_limit* the most events one stream replays before it
    gets a reset instead. With *publish_replicas*, a Redis publish returns only once that
    many replicas have the event (waiting *publish_wait_seconds* at most, else
    `NotReplicated`). *merge_reads* off makes every stream read its history from the
    log itself (see `MergedReads`): only to measure what merging saves.
    """
    scheme = url.partition("://")[0]
    if scheme == "memory" and url in ("memory://", "memory:"):
        if publish_replicas:
            raise ValueError("STREAM_PUBLISH_REPLICAS needs a Redis broker: memory:// has none")
        return MemoryBroker(
            history=history,
            queue_size=queue_size,
            tick_seconds=tick_seconds,
            replay_limit=replay_limit,
            merge_reads=merge_reads,
        )
    if scheme in SERVER_SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        # Imported here: the memory broker needs no Redis client installed.
        from ._redis import RedisBroker  # noqa: PLC0415

        return RedisBroker(
            url,
            history=history,
            queue_size=queue_size,
            block_seconds=block_seconds,
            tick_seconds=tick_seconds,
            retry_seconds=retry_seconds,
            replay_limit=replay_limit,
            publish_replicas=publish_replicas,
            publish_wait_seconds=publish_wait_seconds,
            merge_reads=merge_reads,
        )
    # The scheme alone: the rest of a URL can hold a password.
    raise ValueError(
        f"STREAM_BROKER_URL names no broker ({scheme}://...): use memory://, "
        "redis://HOST:PORT/DB, redis+sentinel://HOST:26379/SERVICE or redis+cluster://HOST:PORT"
    )
