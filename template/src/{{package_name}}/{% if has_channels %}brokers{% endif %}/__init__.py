"""Message brokers behind one small interface: publish to a topic, subscribe from a position.

``open_broker(url, ...)`` picks the backend from the URL's scheme:

* ``memory://``: in this process only (`MemoryBroker`), for development, tests and a single
  worker;
* ``redis://`` and ``rediss://``: Redis Streams (`RedisBroker`), shared by every worker and
  host. It needs the ``redis`` package (the project's ``redis`` extra).
"""

from __future__ import annotations

from ._base import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    Closed,
    Event,
    Item,
    Position,
    Reset,
    Subscription,
)
from ._memory import MemoryBroker

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerUnavailable",
    "Closed",
    "Event",
    "Item",
    "MemoryBroker",
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
    merge_reads: bool = True,
) -> Broker:
    """The broker *url* names; ``ValueError`` for a scheme no backend serves.

    *history* is how many events each topic keeps for replay, *queue_size* how many live
    events a subscriber may fall behind before its stream is ended, *block_seconds* how long
    the Redis reader blocks waiting for entries (keep it at or below the heartbeat
    interval), *tick_seconds* how often every stream is woken to check on itself,
    *retry_seconds* how long the Redis reader retries a broker that does not answer before
    it ends the streams, and *replay_limit* the most events one stream replays before it
    gets a reset instead. *merge_reads* off makes every stream read its history from the
    log itself (see `MergedReads`): only to measure what merging saves.
    """
    scheme = url.partition("://")[0]
    if scheme == "memory" and url in ("memory://", "memory:"):
        return MemoryBroker(
            history=history,
            queue_size=queue_size,
            tick_seconds=tick_seconds,
            replay_limit=replay_limit,
            merge_reads=merge_reads,
        )
    if scheme in ("redis", "rediss"):
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
            merge_reads=merge_reads,
        )
    # The scheme alone: the rest of a URL can hold a password.
    raise ValueError(
        f"STREAM_BROKER_URL names no broker ({scheme}://...): use memory:// or redis://HOST:PORT/DB"
    )
