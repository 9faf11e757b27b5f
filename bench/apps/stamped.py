"""The generated app, unchanged, with a server timestamp added to every event's payload.

``gunicorn 'bench.apps.stamped:create_app()'`` with ``BENCH_PACKAGE`` naming the generated
package. When ``BENCH_STAMP=1`` the package's ``sse.format_json_event`` is wrapped to add
``"t": time.time_ns()`` as the last key of each payload; everything else (input checks,
session, heartbeat, resume, the encoder itself) runs as generated.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any


def create_app() -> Any:
    package = importlib.import_module(os.environ["BENCH_PACKAGE"])
    if os.environ.get("BENCH_STAMP") == "1":
        sse = importlib.import_module(f"{package.__name__}.sse")
        encode: Callable[..., str] = sse.format_json_event

        def stamped(payload: Mapping[str, object], **fields: Any) -> str:
            return encode({**payload, "t": time.time_ns()}, **fields)

        # The generated code calls it as sse.format_json_event, so replacing the module's
        # attribute stamps every event.
        vars(sse)["format_json_event"] = stamped
    return package.create_app()
