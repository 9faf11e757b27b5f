"""The mutation catalogue: each safeguard of a generated project, broken on purpose.

Every mutant breaks one safeguard of a rendered project (or a few lines that together make
one) and names the project's own tests that must then fail. test_catalogue.py applies each
mutant to a copy of its project and runs those tests: a mutant they do not catch fails the
suite with its name. A mutant that no test can tell from the original (an *equivalent*
mutant) says why instead of naming tests; its edit is still applied, so that it keeps
pointing at real code.

The edits find their place by meaning (see edits.py). When the code moves on and an edit
no longer finds its place, its mutant fails naming itself, the file and the pattern
("matches 0 places"): bring the pattern up to date, do not drop the mutant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .edits import (
    AnchorLost,
    Code,
    Delete,
    DeleteLine,
    Directive,
    Edit,
    Insert,
    InsertLine,
    Replace,
    ReplaceLine,
    Undecorate,
    Unprotect,
)

# --------------------------------------------------------------------------- projects


def _endpoint_record(
    name: str, style: str, stream_format: str, *, session: bool, source: str = "ticks"
) -> dict[str, Any]:
    """An ``endpoints`` answer of one endpoint, served at ``/<name>``."""
    return {
        "name": name,
        "path": f"/{name}",
        "style": style,
        "format": stream_format,
        "session": session,
        "source": source,
    }


# The project kinds the mutants are applied to, as Copier answers. Each is small (one to
# three endpoints) so that the tests a mutant names run in a fraction of a second.
PROJECTS: dict[str, dict[str, Any]] = {
    # Copier's defaults: /events, decorator style, SSE, with a session; gthread and nginx.
    "defaults": {},
    "wrapper-ndjson": {
        "project_name": "live-ndjson",
        "server": "gthread",
        "proxy": "none",
        "endpoints": [_endpoint_record("progress", "wrapper", "ndjson", session=True)],
    },
    "text-caddy": {
        "project_name": "tail",
        "package_name": "log_tail",
        "server": "gthread",
        "proxy": "caddy",
        "endpoints": [_endpoint_record("lines", "decorator", "text", session=False)],
    },
    "gevent-apache": {
        "project_name": "live-gevent",
        "server": "gevent",
        "proxy": "apache",
        "endpoints": [_endpoint_record("ticker", "wrapper", "sse", session=False)],
    },
    # Channels only (no ticks endpoint), in both styles, with and without a session.
    "channels": {
        "project_name": "live-channels",
        "server": "gthread",
        "proxy": "nginx",
        "endpoints": [
            _endpoint_record("news", "decorator", "sse", session=True, source="channel"),
            _endpoint_record("feed", "wrapper", "ndjson", session=True, source="channel"),
            _endpoint_record("alerts", "wrapper", "sse", session=False, source="channel"),
        ],
    },
}

# ---------------------------------------------------------------------------- mutants


@dataclass(frozen=True)
class Change:
    """One file of a project (``{package}`` stands for its package) and the edits to it."""

    path: str
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class Mutant:
    """A safeguard broken on purpose, and the tests of its project that must notice."""

    name: str
    project: str
    broken: str
    changes: tuple[Change, ...]
    # pytest node ids in the project: at least one of them must fail.
    tests: tuple[str, ...] = ()
    # A pytest -k expression narrowing *tests* (e.g. to the memory broker).
    keyword: str | None = None
    # Why no test can tell this mutant from the original; then it names no tests.
    equivalent: str | None = None

    def apply(self, project: Path) -> None:
        """Make this mutant's changes to the rendered *project*.

        An edit that finds no place (the code moved on) raises `AnchorLost` naming this
        mutant and the file, so that its anchor can be brought up to date.
        """
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        for change in self.changes:
            path = change.path.format(package=answers["package_name"])
            text = original = (project / path).read_text()
            for edit in change.edits:
                try:
                    text = edit.apply(text)
                except AnchorLost as lost:
                    raise AnchorLost(
                        f"mutant {self.name}: {path}: {lost}; "
                        "update its anchor in tests/mutants/catalogue.py"
                    ) from None
            assert text != original, f"{self.name}: its edits leave {path} unchanged"
            (project / path).write_text(text)


def at(path: str, *edits: Edit) -> Change:
    """The *edits* to make, in order, to the file *path* of a project."""
    return Change(path, edits)


def _package(name: str) -> str:
    return f"src/{{package}}/{name}"


SSE = _package("sse.py")
STREAMING = _package("streaming.py")
TICKS = _package("ticks.py")
APP = _package("__init__.py")
HEALTH = _package("health.py")
METRICS = _package("metrics.py")
CHANNELS = _package("channels.py")
BROKER_BASE = _package("brokers/_base.py")
BROKER_CLUSTER = _package("brokers/_cluster.py")
GUNICORN = "deploy/gunicorn.conf.py"
NGINX = "deploy/nginx.conf"
CADDY = "deploy/Caddyfile"
APACHE = "deploy/apache.conf"


def _endpoint(name: str) -> str:
    return _package(f"endpoints/{name}.py")


def _tests(module: str) -> str:
    return f"tests/{module}.py"


T_SSE = _tests("test_sse")
T_STREAMING = _tests("test_streaming")
T_ENDPOINTS = _tests("test_endpoints")
T_APP = _tests("test_app")
T_METRICS = _tests("test_metrics")
T_PROXY = _tests("test_proxy")
T_CHANNELS = _tests("test_channels")
T_PROMISES = _tests("test_channel_promises")
T_LIMITS = _tests("test_channel_limits")
T_BROKERS = _tests("test_brokers")

# The channel tests of these mutants need no Redis: the in-process broker shows them.
MEMORY = "not redis"

MUTANTS: list[Mutant] = []


def mutant(
    name: str,
    project: str,
    broken: str,
    tests: str | tuple[str, ...],
    *changes: Change,
    keyword: str | None = None,
) -> None:
    """Add a mutant that *tests* (node ids of *project*) must catch."""
    named = (tests,) if isinstance(tests, str) else tests
    MUTANTS.append(Mutant(name, project, broken, changes, named, keyword))


def equivalent(name: str, project: str, broken: str, reason: str, *changes: Change) -> None:
    """Add a mutant that behaves as the original does, for *reason*."""
    MUTANTS.append(Mutant(name, project, broken, changes, equivalent=reason))


# ---- sse.py: the encoder -------------------------------------------------------------

mutant(
    "sse-cr-only-data-unsplit",
    "defaults",
    "data with only CR line breaks is sent as one line, so its CRs inject fields",
    f"{T_SSE}::test_data_with_only_cr_line_breaks_is_split_too",
    at(SSE, Replace(Code(r'"\n" in data or "\r" in data', "format_event"), r'"\n" in data')),
)
mutant(
    "sse-data-split-by-splitlines",
    "defaults",
    "data is split with str.splitlines(), at U+2028 and without a final empty line",
    f"{T_SSE}::test_a_line_break_at_the_end_of_the_data_is_kept",
    at(SSE, Replace(Code("_LINE_BREAK.split(data)", "format_event"), "data.splitlines()")),
)
mutant(
    "sse-line-breaks-lf-only",
    "defaults",
    "only LF counts as a line break, not CR or CRLF",
    f"{T_SSE}::test_data_splits_on_cr_lf_and_crlf_only",
    at(SSE, Replace(Code("_LINE_BREAK = re.compile(...)", part="value"), r're.compile("\n")')),
)
mutant(
    "sse-field-with-cr-accepted",
    "defaults",
    "an event name or id with a CR is sent, ending the field early",
    f"{T_SSE}::test_line_breaks_in_event_or_id_are_refused",
    at(SSE, Replace(Code(r'"\n" in value or "\r" in value', "_single_line"), r'"\n" in value')),
)
mutant(
    "sse-nul-in-id-accepted",
    "defaults",
    "an id with NUL is sent, which the browser ignores",
    f"{T_SSE}::test_nul_in_id_is_refused",
    at(SSE, Delete(Code(r'"\0" in id', "_head"))),
)
mutant(
    "sse-retry-bool-accepted",
    "defaults",
    "retry=True is sent as 'retry: True', which no client reads",
    f"{T_SSE}::test_retry_must_be_a_non_negative_int",
    at(SSE, Replace(Code("isinstance(retry, bool)", "_head"), "False")),
)
mutant(
    "sse-retry-zero-refused",
    "defaults",
    "retry 0 (reconnect at once) is refused",
    f"{T_SSE}::test_retry_zero_is_valid",
    at(SSE, Replace(Code("retry < 0", "_head"), "retry <= 0")),
)
mutant(
    "sse-retry-negative-accepted",
    "defaults",
    "a negative retry is sent",
    f"{T_SSE}::test_retry_must_be_a_non_negative_int",
    at(SSE, Replace(Code("retry < 0", "_head"), "retry < -1")),
)
mutant(
    "sse-leading-space-lost",
    "defaults",
    "no space after the colon: the parser eats a value's own leading space",
    f"{T_SSE}::test_leading_space_in_a_value_survives",
    at(SSE, Replace(Code('f"{name}: {value}\\n"', "_field"), 'f"{{name}}:{{value}}\\n"')),
)
mutant(
    "sse-id-zero-dropped",
    "defaults",
    "an id of '0' or '' is not sent (flask-sse's bug)",
    f"{T_SSE}::test_id_zero_and_empty_id_are_kept",
    at(SSE, Replace(Code("id is not None", "_head"), "id")),
)
mutant(
    "sse-lone-surrogate-sent",
    "defaults",
    "a lone surrogate reaches the stream and breaks it mid-write",
    f"{T_SSE}::test_lone_surrogates_are_refused",
    at(SSE, Delete(Code('value.encode("utf-8")', "_check_utf8"))),
)
mutant(
    "sse-json-nan-sent",
    "defaults",
    "NaN and Infinity are sent in SSE JSON, which JSON.parse rejects",
    f"{T_SSE}::test_json_events_must_be_real_json",
    at(
        SSE,
        Replace(Code("json.JSONEncoder(..., allow_nan=False)", part="keywords.allow_nan"), "True"),
    ),
)
mutant(
    "sse-json-lone-surrogate-sent",
    "defaults",
    "a lone surrogate in an SSE JSON payload reaches the stream",
    f"{T_SSE}::test_json_events_refuse_lone_surrogates",
    at(SSE, Delete(Code('_check_utf8("data", data)', "format_json_event"))),
)
mutant(
    "sse-comment-unsplit",
    "defaults",
    "a comment with a line break injects fields",
    f"{T_SSE}::test_comment_lines_cannot_inject_fields",
    at(SSE, Replace(Code("_LINE_BREAK.split(text)", "format_comment"), "[text]")),
)

# ---- streaming.py: headers, first byte, heartbeats, lifetime, shutdown, places -------

HEADERS_TEST = f"{T_ENDPOINTS}::test_headers_keep_the_stream_uncached_unbuffered_and_unsniffed"
for header in ("Cache-Control", "X-Accel-Buffering", "X-Content-Type-Options"):
    mutant(
        f"header-{header.lower()}-dropped",
        "defaults",
        f"streams are sent without {header}",
        HEADERS_TEST,
        at(STREAMING, Delete(Code(f'response.headers["{header}"] = ...', "_stream_headers"))),
    )
mutant(
    "header-connection-sent",
    "wrapper-ndjson",
    "streams carry Connection: keep-alive, hop-by-hop and refused by HTTP/2",
    HEADERS_TEST,
    at(
        STREAMING,
        Insert(
            Code('response.headers["X-Accel-Buffering"] = ...', "_stream_headers"),
            'response.headers["Connection"] = "keep-alive"',
        ),
    ),
)
mutant(
    "sse-media-type-wrong",
    "defaults",
    "SSE goes out as text/plain, which EventSource refuses",
    HEADERS_TEST,
    at(STREAMING, Replace(Code('"text/event-stream"'), '"text/plain"')),
)
mutant(
    "first-byte-waits-for-the-first-event",
    "defaults",
    "nothing is sent before the first event, so proxies hold the headers back",
    f"{T_ENDPOINTS}::test_first_byte_goes_out_before_the_first_event_is_made",
    at(STREAMING, Delete(Code("yield first", "_pump"))),
)
mutant(
    "retry-hint-ignores-the-setting",
    "defaults",
    "the first retry hint is not STREAM_RETRY_MS",
    f"{T_ENDPOINTS}::test_events_are_numbered_and_carry_a_retry_hint",
    at(
        STREAMING,
        Replace(Code("sse.format_retry(settings.retry_ms)", "_pump"), "sse.format_retry(3000)"),
    ),
)
mutant(
    "heartbeats-never-sent",
    "defaults",
    "a quiet stream sends no heartbeat: proxies cut it, departed clients are never noticed",
    f"{T_STREAMING}::test_a_source_that_waits_by_itself_gets_heartbeats",
    at(STREAMING, Replace(Code("silent_for >= settings.heartbeat", "_wait"), "False")),
)
mutant(
    "pauses-not-waited",
    "text-caddy",
    "a pause ends at once: events go out as fast as they are made",
    f"{T_STREAMING}::test_without_a_shutdown_the_pause_runs_its_course",
    at(
        STREAMING,
        Replace(Code("left <= 0 or shutting_down.wait(...)", "_wait", part="values.0"), "True"),
    ),
)
mutant(
    "lifetime-never-enforced-between-events",
    "defaults",
    "a source that never pauses is never cut at the lifetime cap",
    f"{T_STREAMING}::test_a_source_that_never_pauses_is_cut_too",
    at(
        STREAMING,
        Replace(Code("now >= cutoff", "_pump"), "False"),
    ),
)
mutant(
    "lifetime-pause-not-cut",
    "defaults",
    "a long pause runs past the lifetime cap",
    f"{T_STREAMING}::test_a_long_pause_ends_at_the_lifetime_cap",
    at(STREAMING, Replace(Code("min(scheduled, deadline)", "_pump"), "scheduled")),
)
mutant(
    "lifetime-event-after-the-cap",
    "defaults",
    "after a pause cut at the cap, one more event is taken and sent",
    f"{T_STREAMING}::test_an_event_due_at_the_lifetime_cap_goes_out_and_none_after_it",
    at(STREAMING, Delete(Code("scheduled > deadline + _SLACK", "_pump"))),
)
mutant(
    "lifetime-no-slack-for-rounding",
    "gevent-apache",
    "pauses added up in floating point end the stream before an event due at the cap",
    f"{T_STREAMING}::test_an_event_due_at_the_lifetime_cap_goes_out_and_none_after_it",
    at(STREAMING, Replace(Code("deadline + _SLACK", "_pump"), "deadline")),
)
mutant(
    "lifetime-event-due-at-the-cap-dropped",
    "wrapper-ndjson",
    "an event due right at the lifetime cap is dropped",
    f"{T_STREAMING}::test_an_event_due_at_the_lifetime_cap_goes_out_and_none_after_it",
    at(STREAMING, Replace(Code("deadline + settings.heartbeat", "_pump"), "deadline")),
)
mutant(
    "cadence-drifts",
    "defaults",
    "a pause counts from the end of the work, not from the schedule",
    f"{T_STREAMING}::test_pauses_keep_a_steady_cadence",
    at(
        STREAMING,
        Replace(
            Code("max(scheduled + item.seconds, now)", "_pump"),
            "now + item.seconds",
        ),
    ),
)
mutant(
    "shutdown-sleeps-through-a-pause",
    "defaults",
    "a shutdown does not end a pause: the stream holds the worker until graceful_timeout",
    f"{T_STREAMING}::test_a_shutdown_ends_a_long_pause_at_once",
    at(STREAMING, Replace(Code("shutting_down.wait(...)", "_wait"), "time.sleep({args[0]})")),
)
mutant(
    "shutdown-not-checked-between-events",
    "defaults",
    "after a shutdown the stream goes on taking events",
    f"{T_ENDPOINTS}::test_shutdown_ends_the_stream_at_once_without_losing_an_event",
    at(STREAMING, Replace(Code("now >= cutoff or shutting_down.is_set()", "_pump"), "{values[0]}")),
)
mutant(
    "shutdown-without-a-reconnection-hint",
    "defaults",
    "a stream cut short ends without its retry hint",
    f"{T_ENDPOINTS}::test_shutdown_ends_the_stream_at_once_without_losing_an_event",
    at(STREAMING, Delete(Code("yield hint", "_pump"))),
)
mutant(
    "end-hint-without-jitter",
    "defaults",
    "streams cut together are all told the same delay, and come back together",
    f"{T_STREAMING}::test_streams_cut_together_come_back_at_different_times",
    at(STREAMING, Replace(Code("jittered(settings.retry_ms)", "_pump"), "settings.retry_ms")),
)
mutant(
    "refusal-without-jitter",
    "defaults",
    "clients turned away together are told the same delay",
    f"{T_ENDPOINTS}::test_clients_turned_away_together_come_back_at_different_times",
    at(STREAMING, Replace(Code("secrets.randbelow(...)", "jittered"), "0")),
)
mutant(
    "refusal-jitter-too-wide",
    "wrapper-ndjson",
    "the random part of a delay exceeds the delay itself",
    f"{T_ENDPOINTS}::test_clients_turned_away_together_come_back_at_different_times",
    at(
        STREAMING,
        Replace(Code("secrets.randbelow(...)", "jittered", part="args.0"), "3 * retry_ms"),
    ),
)
mutant(
    "stream-cap-off-by-one",
    "defaults",
    "a worker holds one stream more than STREAM_MAX_OPEN",
    f"{T_ENDPOINTS}::test_a_full_worker_turns_the_next_stream_away_before_streaming",
    at(
        STREAMING,
        Replace(
            Code("self.count >= self.limit", "OpenStreams.try_open"), "self.count > self.limit"
        ),
    ),
)
mutant(
    "stream-place-never-given-back",
    "defaults",
    "a closed stream keeps its place: the worker fills up for good",
    f"{T_ENDPOINTS}::test_a_full_worker_turns_the_next_stream_away_before_streaming",
    at(STREAMING, Delete(Code("self.count -= 1", "OpenStreams.close"))),
)
mutant(
    "stream-place-kept-after-close",
    "text-caddy",
    "the response does not give its place back when it closes",
    f"{T_ENDPOINTS}::test_a_full_worker_turns_the_next_stream_away_before_streaming",
    at(STREAMING, Delete(Code("response.call_on_close(place.release)", "stream_response"))),
)
mutant(
    "stream-place-given-back-when-the-view-returns",
    "defaults",
    "a streaming request's place is given back by the teardown, while it still streams",
    f"{T_ENDPOINTS}::test_a_full_worker_turns_the_next_stream_away_before_streaming",
    at(STREAMING, Delete(Code("self.streaming = True", "_Place.stream"))),
)
equivalent(
    "stream-place-given-back-twice",
    "defaults",
    "a place may be given back more than once",
    "every path gives a place back once already: the response's close for a stream (the "
    "request's teardown skips a streaming place), the teardown otherwise; the guard only "
    "protects against a server that closes a response twice",
    at(STREAMING, Replace(Code("if self._held: ...", "_Place.release", part="test"), "True")),
)
mutant(
    "sse-refusal-not-a-200",
    "defaults",
    "an SSE client turned away gets a 503, and EventSource never retries",
    f"{T_ENDPOINTS}::test_a_full_worker_turns_the_next_stream_away_before_streaming",
    at(STREAMING, Replace(Code('stream_format == "sse"', "refuse"), "False")),
)
mutant(
    "refusal-without-retry-after",
    "wrapper-ndjson",
    "a 503 without Retry-After",
    f"{T_ENDPOINTS}::test_a_full_worker_turns_the_next_stream_away_before_streaming",
    at(
        STREAMING,
        Replace(Code("ServiceUnavailable(...)", "refuse"), "ServiceUnavailable({args[0]})"),
    ),
)
mutant(
    "admitted-during-a-shutdown",
    "text-caddy",
    "a stream asked for during a shutdown is started on the stopping worker",
    f"{T_ENDPOINTS}::test_a_stream_asked_for_during_a_shutdown_is_sent_elsewhere",
    at(STREAMING, Delete(Code("if shutting_down.is_set(): ...", "admit"))),
)
mutant(
    "writes-unbounded",
    "defaults",
    "a client that reads nothing holds its thread for as long as it likes",
    f"{T_STREAMING}::test_a_stream_bounds_each_write_to_its_client",
    at(
        STREAMING,
        Replace(Code("if sock is not None: ...", "stream_response", part="test"), "False"),
    ),
)
mutant(
    "write-bound-kept-after-the-stream",
    "defaults",
    "the send timeout stays on the connection after the stream, for keep-alive waits too",
    f"{T_STREAMING}::test_a_stream_bounds_each_write_to_its_client",
    at(STREAMING, Delete(Code("restore()", "_bounded_writes"))),
)
mutant(
    "stream-cut-short-leaves-its-connection-open",
    "defaults",
    "a stream cut short leaves its connection for the client to close",
    f"{T_STREAMING}::test_a_stream_cut_short_shuts_its_connection",
    at(STREAMING, Delete(Code("sock.shutdown(socket.SHUT_RDWR)", "_bounded_writes"))),
)
mutant(
    "ndjson-nan-sent",
    "wrapper-ndjson",
    "NaN and Infinity are sent in NDJSON",
    f"{T_STREAMING}::test_records_must_be_real_json",
    at(
        STREAMING,
        Replace(Code("json.JSONEncoder(..., allow_nan=False)", part="keywords.allow_nan"), "True"),
    ),
)
mutant(
    "text-line-break-sent",
    "text-caddy",
    "a text line with a line break is sent as two lines",
    f"{T_STREAMING}::test_text_line_refuses_line_breaks",
    at(STREAMING, Delete(Code(r'"\n" in text or "\r" in text', "text_line"))),
)
mutant(
    "settings-infinite-accepted",
    "defaults",
    "an infinite STREAM_MAX_SECONDS is accepted",
    f"{T_APP}::test_bad_stream_settings_fail_at_start_up",
    at(STREAMING, Delete(Code("math.isinf(value)", "positive_seconds"))),
)
mutant(
    "settings-below-minimum-accepted",
    "defaults",
    "STREAM_MAX_OPEN=0 or STREAM_RETRY_MS=-1 is accepted",
    f"{T_APP}::test_bad_stream_settings_fail_at_start_up",
    at(STREAMING, Replace(Code("value < low", "_whole"), "False")),
)

# ---- input bounds: streaming.py's readers and ticks.py --------------------------------

BAD_QUERY = f"{T_ENDPOINTS}::test_bad_query_parameters_are_a_400_before_streaming"
LIMITS_ALLOWED = f"{T_ENDPOINTS}::test_the_limits_themselves_are_allowed"
mutant(
    "integer-guard-lets-anything-through",
    "defaults",
    "count takes what int() takes: '1_0', ' 5 '",
    BAD_QUERY,
    at(STREAMING, Replace(Code("_INTEGER = re.compile(...)", part="value"), 're.compile(".+")')),
)
mutant(
    "number-guard-lets-anything-through",
    "wrapper-ndjson",
    "interval takes what float() takes ('1e1', ' 1 ') and 'abc' is a 500",
    BAD_QUERY,
    at(STREAMING, Replace(Code("_NUMBER = re.compile(...)", part="value"), 're.compile(".+")')),
)
mutant(
    "count-maximum-refused",
    "defaults",
    "count=1000, the maximum, is refused",
    LIMITS_ALLOWED,
    at(STREAMING, Replace(Code("low <= int(raw) <= high", "int_arg"), "low <= int(raw) < high")),
)
mutant(
    "count-minimum-refused",
    "text-caddy",
    "count=1, the minimum, is refused",
    LIMITS_ALLOWED,
    at(STREAMING, Replace(Code("low <= int(raw) <= high", "int_arg"), "low < int(raw) <= high")),
)
mutant(
    "interval-maximum-refused",
    "gevent-apache",
    "interval=60, the maximum, is refused",
    LIMITS_ALLOWED,
    at(
        STREAMING,
        Replace(Code("low <= float(raw) <= high", "float_arg"), "low <= float(raw) < high"),
    ),
)
mutant(
    "interval-beyond-maximum-accepted",
    "defaults",
    "an interval above the maximum is accepted",
    BAD_QUERY,
    at(STREAMING, Replace(Code("low <= float(raw) <= high", "float_arg"), "low <= float(raw)")),
)
mutant(
    "topic-longest-refused",
    "defaults",
    "a topic of the longest length allowed is refused",
    LIMITS_ALLOWED,
    at(STREAMING, Replace(Code("len(value) > max_length", "str_arg"), "len(value) >= max_length")),
)
mutant(
    "topic-unprintable-accepted",
    "wrapper-ndjson",
    "a topic with a line break is accepted",
    BAD_QUERY,
    at(STREAMING, Replace(Code("not value.isprintable()", "str_arg"), "False")),
)
mutant(
    "last-event-id-maximum-refused",
    "defaults",
    "resuming after the last possible event number is a 400, not a 204",
    f"{T_ENDPOINTS}::test_every_event_number_is_a_place_to_resume_from",
    at(STREAMING, Replace(Code("0 <= int(raw) <= high", "last_event_id"), "0 <= int(raw) < high")),
)
mutant(
    "last-event-id-unchecked",
    "gevent-apache",
    "a malformed Last-Event-ID is a 500, or resumes somewhere",
    f"{T_ENDPOINTS}::test_malformed_last_event_id_is_a_400",
    at(STREAMING, Replace(Code("not _INTEGER.fullmatch(raw) or ...", "last_event_id"), "False")),
)
mutant(
    "resume-repeats-the-last-event",
    "defaults",
    "a resumed stream starts with the event the client already has",
    f"{T_ENDPOINTS}::test_resumes_after_last_event_id",
    at(TICKS, Replace(Code("last + 1", "read_ticks"), "last")),
)
mutant(
    "resume-skips-an-event",
    "gevent-apache",
    "a resumed stream skips the event after the client's last",
    f"{T_ENDPOINTS}::test_resumes_after_last_event_id",
    at(TICKS, Replace(Code("last + 1", "read_ticks"), "last + 2")),
)
mutant(
    "resume-after-the-last-event-streams-again",
    "defaults",
    "resuming after the last event is a 200, so EventSource reconnects for ever",
    f"{T_ENDPOINTS}::test_resuming_after_the_last_event_tells_the_browser_to_stop",
    at(
        TICKS,
        Replace(Code("self.start >= self.count", "Ticks.finished"), "self.start > self.count"),
    ),
)
mutant(
    "lifetime-request-limit-off-by-one",
    "defaults",
    "a request exactly as long as STREAM_MAX_SECONDS is refused",
    f"{T_ENDPOINTS}::test_a_request_longer_than_the_lifetime_limit_is_a_400",
    at(TICKS, Replace(Code("ticks.seconds > limit", "read_ticks"), "ticks.seconds >= limit")),
)
mutant(
    "lifetime-request-unchecked",
    "text-caddy",
    "a request longer than STREAM_MAX_SECONDS is accepted, to be cut off later",
    f"{T_ENDPOINTS}::test_a_request_longer_than_the_lifetime_limit_is_a_400",
    at(TICKS, Delete(Code("ticks.seconds > limit", "read_ticks"))),
)
mutant(
    "lifetime-request-counts-a-pause-too-many",
    "wrapper-ndjson",
    "N events are taken to last N intervals, not N - 1",
    f"{T_ENDPOINTS}::test_a_request_longer_than_the_lifetime_limit_is_a_400",
    at(
        TICKS,
        Replace(Code("self.count - self.start - 1", "Ticks.seconds"), "self.count - self.start"),
    ),
)
mutant(
    "count-limit-raised",
    "defaults",
    "count above 1000 is accepted",
    BAD_QUERY,
    at(TICKS, Replace(Code("MAX_COUNT = ...", part="value"), "{node} + 1")),
)

# ---- the endpoints: stream_with_context, the session, clean-up, ids -------------------

DISCONNECT_TEST = f"{T_ENDPOINTS}::test_generator_reads_the_request_and_cleans_up_on_disconnect"
SESSION_TEST = f"{T_ENDPOINTS}::test_the_session_is_settled_in_the_view"
for project, name in (("defaults", "events"), ("text-caddy", "lines")):
    mutant(
        f"decorator-without-stream-with-context-{name}",
        project,
        "the generator runs without the request context: 'Working outside of request context'",
        DISCONNECT_TEST,
        at(_endpoint(name), Undecorate(Code("stream_with_context", "stream.generate"))),
    )
for project, name in (("wrapper-ndjson", "progress"), ("gevent-apache", "ticker")):
    mutant(
        f"wrapper-without-stream-with-context-{name}",
        project,
        "the generator runs without the request context: 'Working outside of request context'",
        DISCONNECT_TEST,
        at(_endpoint(name), Replace(Code("stream_with_context(...)", "stream"), "{args[0]}")),
    )
for project, name in (("defaults", "events"), ("wrapper-ndjson", "progress")):
    mutant(
        f"session-written-in-the-generator-{name}",
        project,
        "the session is written while streaming, after the cookie has gone out: lost",
        SESSION_TEST,
        at(
            _endpoint(name),
            Delete(Code('session["streams_opened"] = ...', "stream")),
            Insert(Code("sent = 0", "generate"), 'session["streams_opened"] = opened', before=True),
        ),
    )
mutant(
    "session-never-written",
    "defaults",
    "the view reads the session but never writes it",
    SESSION_TEST,
    at(_endpoint("events"), Delete(Code('session["streams_opened"] = ...', "stream"))),
)
for project, name in (("defaults", "events"), ("gevent-apache", "ticker")):
    mutant(
        f"clean-up-skipped-on-disconnect-{name}",
        project,
        "the stream's clean-up runs only when it ends by itself, not when its client leaves",
        DISCONNECT_TEST,
        at(_endpoint(name), Unprotect(Code("logger.debug(...)", "generate"))),
    )
mutant(
    "resume-ignores-last-event-id",
    "defaults",
    "an SSE endpoint starts over on reconnect",
    f"{T_ENDPOINTS}::test_resumes_after_last_event_id",
    at(_endpoint("events"), Replace(Code("read_ticks(resumable=True)", "stream"), "read_ticks()")),
)
mutant(
    "finished-stream-not-a-204",
    "defaults",
    "a client that has every event is sent an empty stream, and reconnects for ever",
    f"{T_ENDPOINTS}::test_resuming_after_the_last_event_tells_the_browser_to_stop",
    at(_endpoint("events"), Delete(Code("ticks.finished", "stream"))),
)
mutant(
    "sse-end-event-missing",
    "defaults",
    "a complete stream ends without its 'end' event, so the page reconnects",
    f"{T_ENDPOINTS}::test_events_are_numbered_and_carry_a_retry_hint",
    at(
        _endpoint("events"),
        Replace(Code("event_stream(..., end=...)", "stream"), "event_stream({args[0]}, {args[1]})"),
    ),
)
mutant(
    "sse-event-without-id",
    "gevent-apache",
    "events carry no id: a reconnect starts over",
    f"{T_ENDPOINTS}::test_events_are_numbered_and_carry_a_retry_hint",
    at(
        _endpoint("ticker"),
        Replace(Code("Event(record, id=str(seq))", "generate"), "Event(record)"),
    ),
)
mutant(
    "sse-event-id-off-by-one",
    "gevent-apache",
    "event ids are one ahead of the events",
    f"{T_ENDPOINTS}::test_events_are_numbered_and_carry_a_retry_hint",
    at(_endpoint("ticker"), Replace(Code("str(seq)", "generate"), "str(seq + 1)")),
)

# ---- deploy/gunicorn.conf.py ------------------------------------------------------------

GUNICORN_TEST = f"{T_APP}::test_gunicorn_settings_suit_long_lived_streams"
SIGTERM_TEST = f"{T_APP}::test_sigterm_in_a_worker_ends_the_streams_then_stops_the_worker"
KEEP_ALIVE_TEST = f"{T_APP}::test_a_stopping_worker_ends_every_keep_alive_wait"
mutant(
    "gunicorn-sync-worker",
    "defaults",
    "the sync worker: one stream per worker, killed by its timeout",
    GUNICORN_TEST,
    at(GUNICORN, Replace(Code("worker_class = ...", part="value"), '"sync"')),
)
mutant(
    "gunicorn-gevent-project-on-threads",
    "gevent-apache",
    "a gevent project is served by gthread",
    GUNICORN_TEST,
    at(GUNICORN, Replace(Code("worker_class = ...", part="value"), '"gthread"')),
)
mutant(
    "gunicorn-threads-all-taken-by-streams",
    "defaults",
    "threads no more than STREAM_MAX_OPEN: streams take every thread",
    GUNICORN_TEST,
    at(GUNICORN, Replace(Code("threads = ...", part="value"), "48")),
)
mutant(
    "gunicorn-connections-all-taken-by-streams",
    "gevent-apache",
    "worker_connections no more than STREAM_MAX_OPEN",
    GUNICORN_TEST,
    at(GUNICORN, Replace(Code("worker_connections = ...", part="value"), "900")),
)
mutant(
    "gunicorn-shared-control-socket",
    "text-caddy",
    "gunicorn's per-user control socket is left on, taken over by the next gunicorn",
    GUNICORN_TEST,
    at(GUNICORN, Replace(Code("control_socket_disable = ...", part="value"), "False")),
)
mutant(
    "sigterm-leaves-streams-open",
    "defaults",
    "SIGTERM does not end the streams: each holds its worker until graceful_timeout",
    SIGTERM_TEST,
    at(GUNICORN, Delete(Code("shutting_down.set()", "post_worker_init.handle_exit"))),
)
mutant(
    "sigterm-worker-keeps-accepting",
    "gevent-apache",
    "gunicorn's own SIGTERM handling is replaced, not extended",
    SIGTERM_TEST,
    at(GUNICORN, Delete(Code("stop_worker(sig, frame)", "handle_exit"))),
)
mutant(
    "sigterm-handler-not-installed",
    "text-caddy",
    "the SIGTERM handler is never installed",
    SIGTERM_TEST,
    at(GUNICORN, Delete(Code("signal.signal(signal.SIGTERM, handle_exit)", "post_worker_init"))),
)
mutant(
    "sigint-leaves-streams-open",
    "defaults",
    "SIGINT or SIGQUIT kills the worker without the streams' reconnection hint",
    f"{T_APP}::test_sigint_or_sigquit_in_a_worker_ends_the_streams_too",
    at(GUNICORN, Delete(Code("shutting_down.set()", "worker_int"))),
)
mutant(
    "gevent-keep-alive-waits-outlive-sigterm",
    "gevent-apache",
    "kept-alive connections hold a stopping gevent worker until graceful_timeout",
    KEEP_ALIVE_TEST,
    at(GUNICORN, Delete(Code("_end_keep_alive(connection)", "handle_exit"))),
)
mutant(
    "gevent-stopping-worker-keeps-alive",
    "gevent-apache",
    "a connection that finishes a response while the worker stops is kept alive",
    KEEP_ALIVE_TEST,
    at(GUNICORN, Replace(Code("worker.alive", "post_request"), "True")),
)
mutant(
    "gevent-busy-connection-ended-on-sigterm",
    "gevent-apache",
    "a connection serving a stream is taken for an idle one and cut on SIGTERM",
    KEEP_ALIVE_TEST,
    at(GUNICORN, Delete(Code("_kept_alive.pop(...)", "pre_request"))),
)
mutant(
    "memory-broker-on-two-workers",
    "channels",
    "gunicorn starts two workers with the in-process broker: events do not cross them",
    f"{T_CHANNELS}::test_gunicorn_refuses_several_workers_with_the_memory_broker",
    at(
        GUNICORN,
        Replace(
            Code("server.cfg.workers > 1", "_one_broker_for_every_worker"), "server.cfg.workers > 2"
        ),
    ),
)
mutant(
    "replacement-worker-needs-the-broker",
    "channels",
    "a worker started while Redis is away fails to start, and gunicorn stops the server",
    f"{T_CHANNELS}::test_gunicorn_starts_every_worker_but_the_first_without_the_broker",
    at(GUNICORN, Replace(Code("if worker.age > ...: ...", "pre_fork", part="test"), "False")),
)

# ---- health probes and metrics -----------------------------------------------------------

mutant(
    "ready-during-a-shutdown",
    "defaults",
    "/readyz answers 200 while the worker stops: a load balancer sends reconnections to it",
    f"{T_METRICS}::test_readiness_fails_first_during_a_shutdown",
    at(HEALTH, Delete(Code("if shutting_down.is_set(): ...", "readyz"))),
)
mutant(
    "heartbeats-not-counted",
    "defaults",
    "heartbeats go out uncounted: the metrics show a quiet stream as a dead one",
    f"{T_METRICS}::test_heartbeats_are_counted",
    at(METRICS, Delete(Code("self.heartbeats += 1", "StreamAccount.heartbeat"))),
)
mutant(
    "metrics-of-an-earlier-run-kept",
    "wrapper-ndjson",
    "a restart keeps the metrics files of the last run: its counts add up with the new ones",
    f"{T_METRICS}::test_each_run_starts_clean_and_a_dead_workers_gauges_go",
    at(GUNICORN, Delete(Code("leftover.unlink()", "on_starting"))),
)

# ---- the application factory ---------------------------------------------------------------

mutant(
    "secret-key-not-required",
    "defaults",
    "production starts without FLASK_SECRET_KEY",
    f"{T_APP}::test_production_without_a_secret_key_is_refused",
    at(APP, Delete(Code("raise RuntimeError(...)", "_ensure_secret_key"))),
)
mutant(
    "session-cookie-sent-over-http",
    "defaults",
    "the session cookie is not Secure in production",
    f"{T_APP}::test_session_cookie_is_secure_and_same_site_in_production",
    at(APP, Replace(Code("not (app.debug or app.testing)", "create_app"), "False")),
)
mutant(
    "error-detail-shown",
    "wrapper-ndjson",
    "a crash's message reaches the client",
    f"{T_APP}::test_every_http_error_is_json",
    at(APP, Delete(Code("error = InternalServerError()", "_json_error"))),
)
mutant(
    "error-headers-dropped",
    "defaults",
    "a 405 loses its Allow header (and a 503 its Retry-After)",
    f"{T_APP}::test_every_http_error_is_json",
    at(APP, Delete(Code("response.headers[name] = value", "_json_error"))),
)
mutant(
    "trusted-proxies-ignored",
    "defaults",
    "TRUSTED_PROXIES=1 does not make the app read X-Forwarded-For",
    f"{T_APP}::test_trusted_proxies_decide_whose_address_the_app_sees",
    at(APP, Delete(Code("app.wsgi_app = ProxyFix(...)", "_trust_proxies"))),
)
mutant(
    "trusted-proxies-unchecked",
    "text-caddy",
    "TRUSTED_PROXIES=-1 or '1' is accepted",
    f"{T_APP}::test_bad_stream_settings_fail_at_start_up",
    at(
        APP,
        Replace(Code("if ...: raise RuntimeError(...)", "_trust_proxies", part="test"), "False"),
    ),
)
equivalent(
    "trusted-proxies-zero-wrapped",
    "defaults",
    "ProxyFix is installed even for TRUSTED_PROXIES=0",
    "ProxyFix trusting 0 proxies reads no X-Forwarded header: every request is seen as it "
    "would be without it",
    at(APP, Replace(Code("if count: ...", "_trust_proxies", part="test"), "True")),
)

# ---- the proxy configs -------------------------------------------------------------------

NGINX_SHARED = f"{T_PROXY}::test_every_path_shares_the_streaming_settings"
NGINX_LIMITS = (
    f"{T_PROXY}::test_each_client_has_a_connection_limit_and_a_rate_limit_but_for_the_streams"
)
READ_TIMEOUT = f"{T_PROXY}::test_the_read_timeout_outlasts_two_heartbeats"
NOT_COMPRESSED = f"{T_PROXY}::test_streams_are_not_compressed"
for name, edit in (
    ("buffers", ReplaceLine(Directive(("proxy_buffering",)), "proxy_buffering on;")),
    (
        "speaks-http-1.0-upstream",
        ReplaceLine(Directive(("proxy_http_version",)), "proxy_http_version 1.0;"),
    ),
    ("passes-the-connection-header", DeleteLine(Directive(("proxy_set_header", "Connection")))),
    (
        "ignores-client-aborts",
        InsertLine(Directive(("proxy_buffering",)), "proxy_ignore_client_abort on;"),
    ),
    ("buffers-in-a-location", InsertLine(Directive(("proxy_pass",), 0), "proxy_buffering on;")),
):
    mutant(
        f"nginx-{name}",
        "defaults",
        f"nginx {name.replace('-', ' ')}",
        NGINX_SHARED,
        at(NGINX, edit),
    )
mutant(
    "nginx-read-timeout-below-two-heartbeats",
    "defaults",
    "nginx cuts a stream whose heartbeat is a little late",
    READ_TIMEOUT,
    at(NGINX, ReplaceLine(Directive(("proxy_read_timeout",)), "proxy_read_timeout 20s;")),
)
mutant(
    "nginx-compresses-sse",
    "defaults",
    "nginx gzips text/event-stream",
    NOT_COMPRESSED,
    at(
        NGINX,
        ReplaceLine(
            Directive(("gzip_types",)), "gzip_types text/css application/json text/event-stream;"
        ),
    ),
)
mutant(
    "nginx-compresses-everything",
    "channels",
    "nginx gzips every type",
    NOT_COMPRESSED,
    at(NGINX, ReplaceLine(Directive(("gzip_types",)), "gzip_types *;")),
)
mutant(
    "nginx-https-without-http2",
    "defaults",
    "browsers get six streams per host over HTTP/1.1",
    f"{T_PROXY}::test_https_listener_speaks_http2_and_plain_http_serves_locally",
    at(NGINX, ReplaceLine(Directive(("listen", "127.0.0.1:8443")), "listen 127.0.0.1:8443 ssl;")),
)
mutant(
    "nginx-rate-limits-a-stream",
    "defaults",
    "EventSource reconnects after a deploy are rate-limited into 429s",
    NGINX_LIMITS,
    at(NGINX, DeleteLine(Directive(("~^/events$",)))),
)
mutant(
    "nginx-rate-limit-exempts-by-header",
    "channels",
    "the rate-limit exemption goes by a header the client chooses",
    NGINX_LIMITS,
    at(NGINX, ReplaceLine(Directive(("map",)), "map $http_accept $rate_limit_key {")),
)
mutant(
    "nginx-rate-limit-exempts-a-prefix",
    "defaults",
    "every path that starts like a stream's escapes the rate limit",
    NGINX_LIMITS,
    at(NGINX, ReplaceLine(Directive(("~^/events$",)), '"~^/events" "";')),
)
mutant(
    "nginx-no-connection-limit",
    "channels",
    "a client may open any number of streams",
    NGINX_LIMITS,
    at(NGINX, DeleteLine(Directive(("limit_conn", "per_client")))),
)
mutant(
    "caddy-does-not-flush",
    "text-caddy",
    "Caddy flushes by its heuristics only",
    f"{T_PROXY}::test_every_response_is_flushed_at_once",
    at(CADDY, DeleteLine(Directive(("flush_interval",)))),
)
mutant(
    "caddy-read-timeout-below-two-heartbeats",
    "text-caddy",
    "Caddy cuts a stream whose heartbeat is a little late",
    READ_TIMEOUT,
    at(CADDY, ReplaceLine(Directive(("read_timeout",)), "read_timeout 20s")),
)
for name, line in (
    ("sse", "header Content-Type text/event-stream*"),
    ("text-by-a-wildcard", "header Content-Type text/*"),
    ("every-type", "header Content-Type *"),
):
    mutant(
        f"caddy-compresses-{name}",
        "text-caddy",
        f"Caddy's encode holds streams back: it compresses {name.replace('-', ' ')}",
        NOT_COMPRESSED,
        at(CADDY, InsertLine(Directive(("header", "Content-Type", "text/html*")), line)),
    )
mutant(
    "caddy-write-timeout",
    "text-caddy",
    "a write timeout cuts every stream that outlives it",
    f"{T_PROXY}::test_there_is_no_write_timeout_to_cut_a_stream",
    at(CADDY, InsertLine(Directive(("read_header",)), "write 30s")),
)
mutant(
    "apache-does-not-flush",
    "gevent-apache",
    "mod_proxy flushes only when the app pauses",
    f"{T_PROXY}::test_one_proxy_pass_flushes_every_path",
    at(APACHE, ReplaceLine(Directive(("ProxyPass",)), 'ProxyPass "/" "http://127.0.0.1:8000/"')),
)
mutant(
    "apache-a-path-without-flush",
    "gevent-apache",
    "a second ProxyPass, without flushpackets, serves a stream",
    f"{T_PROXY}::test_one_proxy_pass_flushes_every_path",
    at(
        APACHE,
        InsertLine(
            Directive(("ProxyPreserveHost",)), 'ProxyPass "/ticker" "http://127.0.0.1:8000/ticker"'
        ),
    ),
)
mutant(
    "apache-timeout-below-two-heartbeats",
    "gevent-apache",
    "Apache cuts a stream whose heartbeat is a little late",
    READ_TIMEOUT,
    at(APACHE, ReplaceLine(Directive(("ProxyTimeout",)), "ProxyTimeout 20")),
)
mutant(
    "apache-deflates-sse",
    "gevent-apache",
    "mod_deflate compresses text/event-stream",
    NOT_COMPRESSED,
    at(
        APACHE,
        ReplaceLine(
            Directive(("AddOutputFilterByType", "DEFLATE")),
            "AddOutputFilterByType DEFLATE text/html application/json text/event-stream",
        ),
    ),
)
mutant(
    "apache-deflates-everything",
    "gevent-apache",
    "a server-wide SetOutputFilter DEFLATE compresses the streams",
    NOT_COMPRESSED,
    at(
        APACHE,
        InsertLine(Directive(("AddOutputFilterByType", "DEFLATE")), "SetOutputFilter DEFLATE"),
    ),
)
mutant(
    "apache-https-without-http2",
    "gevent-apache",
    "browsers get six streams per host over HTTP/1.1",
    f"{T_PROXY}::test_https_listener_speaks_http2",
    at(APACHE, ReplaceLine(Directive(("Protocols",)), "Protocols http/1.1")),
)

# ---- channels: the publish token, subscribing, the session, unsubscribing -----------------

TOKEN_TEST = f"{T_PROMISES}::test_a_token_that_is_almost_right_publishes_nothing"
BAD_PUBLISH = f"{T_CHANNELS}::test_bad_publish_requests_publish_nothing"
BAD_REQUESTS = f"{T_CHANNELS}::test_bad_requests_are_refused_before_streaming"
COMPARE_TOKENS = Code("hmac.compare_digest(...)", "_check_token")
for name, comparison in (
    ("a-prefix", "{args[1]}.startswith({args[0]})"),
    ("its-first-bytes", "{args[0]}[:4] == {args[1]}[:4]"),
    ("the-token-and-more", "{args[0]}.startswith({args[1]})"),
    ("another-case", "{args[0]}.lower() == {args[1]}.lower()"),
    ("all-but-the-last-character", "{args[0]}[:-1] == {args[1]}[:-1]"),
):
    mutant(
        f"token-accepts-{name}",
        "channels",
        f"the publish token accepts {name.replace('-', ' ')}",
        TOKEN_TEST,
        at(CHANNELS, Replace(COMPARE_TOKENS, comparison)),
    )
mutant(
    "token-scheme-unchecked",
    "channels",
    "any Authorization scheme is taken for a bearer token",
    BAD_PUBLISH,
    at(
        CHANNELS,
        Replace(Code('scheme.lower() != "bearer" or not given', "_check_token"), "not given"),
    ),
)
mutant(
    "publish-route-without-a-token",
    "channels",
    "POST /publish is served with no token set",
    f"{T_CHANNELS}::test_publish_route_is_off_without_a_token",
    at(CHANNELS, Replace(Code("if token: ...", "init_app", part="test"), "True")),
)
mutant(
    "publish-body-unbounded",
    "channels",
    "a publish body of any size is read",
    BAD_PUBLISH,
    at(CHANNELS, Delete(Code("request.max_content_length = ...", "publish_view"))),
)
mutant(
    "publish-reserved-event-name",
    "channels",
    "a publisher may send 'reset' events, which clients take for lost history",
    BAD_PUBLISH,
    at(CHANNELS, Delete(Code("event in RESERVED_EVENTS", "_checked"))),
)
mutant(
    "private-topic-readable-by-anyone",
    "channels",
    "may_read is not asked",
    f"{T_CHANNELS}::test_a_private_topic_is_readable_by_its_user",
    at(CHANNELS, Replace(Code("may_read(topic)", "subscribe_request"), "True")),
)
mutant(
    "private-topic-readable-by-any-user",
    "channels",
    "any signed-in user reads every user's topic",
    f"{T_CHANNELS}::test_a_private_topic_is_readable_by_its_user",
    at(
        CHANNELS,
        Replace(
            Code('session.get("user_id") == ...', "may_read"), 'session.get("user_id") is not None'
        ),
    ),
)
mutant(
    "most-topics-refused",
    "channels",
    "a stream of MAX_TOPICS topics is refused",
    f"{T_PROMISES}::test_the_most_topics_a_stream_may_follow_are_allowed",
    at(
        CHANNELS,
        Replace(Code("len(topics) > MAX_TOPICS", "subscribe_request"), "len(topics) >= MAX_TOPICS"),
    ),
)
mutant(
    "topics-unbounded",
    "channels",
    "a stream may follow any number of topics",
    BAD_REQUESTS,
    at(CHANNELS, Replace(Code("len(topics) > MAX_TOPICS", "subscribe_request"), "False")),
    keyword=MEMORY,
)
mutant(
    "topic-followed-twice",
    "channels",
    "a stream may name a topic twice",
    BAD_REQUESTS,
    at(CHANNELS, Replace(Code("len(set(topics)) != len(topics)", "subscribe_request"), "False")),
    keyword=MEMORY,
)
mutant(
    "stream-id-names-a-topic-twice",
    "channels",
    "an id naming a topic twice resumes from the last of them",
    f"{T_PROMISES}::test_an_id_naming_a_topic_twice_is_refused",
    at(CHANNELS, Delete(Code("topic in positions", "parse_stream_id"))),
)
mutant(
    "stream-id-lacks-a-topic",
    "channels",
    "an id that lacks a followed topic is a 500",
    BAD_REQUESTS,
    at(
        CHANNELS,
        Replace(Code("[t for t in wanted if t not in positions]", "parse_stream_id"), "[]"),
    ),
    keyword=MEMORY,
)
mutant(
    "first-connect-id-ignored",
    "channels",
    "?last_event_id= is ignored: what was published since the page rendered is missed",
    BAD_REQUESTS,
    at(CHANNELS, Replace(Code('request.args.get("last_event_id", "")', "_requested_start"), '""')),
    keyword=MEMORY,
)
mutant(
    "reconnect-id-ignored",
    "channels",
    "Last-Event-ID is ignored: a reconnecting EventSource misses what came meanwhile",
    BAD_REQUESTS,
    at(
        CHANNELS,
        Replace(Code('request.headers.get("Last-Event-ID", "")', "_requested_start"), '""'),
    ),
    keyword=MEMORY,
)
mutant(
    "position-the-log-never-had-resumes-silently",
    "channels",
    "an id ahead of the log (or from another system) waits silently past every live event",
    f"{T_BROKERS}::test_a_position_the_log_never_had_gets_a_reset_then_live_events",
    at(
        BROKER_BASE,
        Replace(Code("log.earlier or position.entry != log.trimmed", "next_page"), "False"),
    ),
    keyword="ahead and memory",
)
mutant(
    "broker-named-to-stream-clients",
    "channels",
    "a client turned away learns the broker's address",
    f"{T_LIMITS}::test_a_lost_broker_is_never_named_to_clients",
    at(
        CHANNELS,
        Replace(
            Code("refuse(stream_format, BROKER_UNAVAILABLE)", "subscribe_request"),
            "refuse(stream_format, str(error))",
        ),
    ),
)
mutant(
    "broker-named-to-publishers",
    "channels",
    "a publisher turned away learns the broker's address",
    f"{T_LIMITS}::test_a_lost_broker_is_never_named_to_clients",
    at(CHANNELS, Replace(Code("_fail(503, ...)", "publish_view", part="args.1"), "str(error)")),
)
mutant(
    "subscribed-before-admitted",
    "channels",
    "a stream the worker has no room for costs a subscription and a history read",
    f"{T_LIMITS}::test_a_stream_turned_away_costs_no_subscription_and_no_history_read",
    at(CHANNELS, Delete(Code("admit(stream_format)", "subscribe_request"))),
    keyword=MEMORY,
)
mutant(
    "place-kept-by-a-request-that-fails",
    "channels",
    "a request that fails after taking its place keeps it",
    f"{T_LIMITS}::test_the_place_is_given_back_however_the_request_ends",
    at(STREAMING, Delete(Code("app.teardown_request(_release_unused_place)", "init_app"))),
    keyword=MEMORY,
)
mutant(
    "broker-ended-streams-come-back-together",
    "channels",
    "every stream a lost broker ends is told the same delay",
    f"{T_PROMISES}::test_streams_the_broker_ends_together_come_back_at_different_times",
    at(CHANNELS, Replace(Code("jittered(...)", "closing"), "{args[0]}")),
)
CHANNEL_SESSION = f"{T_PROMISES}::test_the_session_is_settled_in_the_view"
for name in ("news", "feed"):
    mutant(
        f"channel-session-written-in-the-generator-{name}",
        "channels",
        "the session is written while streaming, after the cookie has gone out: lost",
        CHANNEL_SESSION,
        at(
            _endpoint(name),
            Delete(Code('session["streams_opened"] = ...', "stream")),
            Insert(
                Code("yield from channels.events(...)", "generate"),
                'session["streams_opened"] = session.get("streams_opened", 0) + 1',
                before=True,
            ),
        ),
    )
mutant(
    "channel-session-never-written",
    "channels",
    "a channel endpoint with a session never writes it",
    CHANNEL_SESSION,
    at(_endpoint("news"), Delete(Code('session["streams_opened"] = ...', "stream"))),
)
UNSUBSCRIBE_ON_CLOSE = Code("response.call_on_close(subscription.close)", "respond")
mutant(
    "channel-streams-never-unsubscribe",
    "channels",
    "a departed client's subscription stays: its worker follows the topic for nobody",
    f"{T_PROMISES}::test_a_stream_whose_client_left_follows_its_topic_no_more",
    at(_endpoint("news"), Delete(Code("subscription.close()", "generate"))),
    at(CHANNELS, Delete(UNSUBSCRIBE_ON_CLOSE)),
    keyword=MEMORY,
)
mutant(
    "channel-unsubscribe-only-in-the-generator",
    "channels",
    "a client that leaves before the first chunk stays subscribed",
    f"{T_PROMISES}::test_a_client_that_leaves_before_the_first_chunk_is_unsubscribed",
    at(CHANNELS, Delete(UNSUBSCRIBE_ON_CLOSE)),
    keyword=MEMORY,
)
equivalent(
    "channel-unsubscribe-only-on-close",
    "channels",
    "the endpoint's finally does not unsubscribe",
    "channels.respond unsubscribes when the server closes the response, which every WSGI "
    "server does, whether the stream ended, was cut short or never started (PEP 3333)",
    at(_endpoint("news"), Delete(Code("subscription.close()", "generate"))),
)
equivalent(
    "channel-refused-response-keeps-its-subscription",
    "channels",
    "channels.respond does not unsubscribe when event_stream turns the stream away",
    "subscribe_request takes the stream's place before subscribing, so event_stream never "
    "turns away a request that holds a subscription; the branch guards views written "
    "without subscribe_request",
    at(CHANNELS, Delete(Code("subscription.close()", "respond"))),
)
mutant(
    "channel-decorator-without-stream-with-context",
    "channels",
    "a channel stream runs without its request context",
    f"{T_PROMISES}::test_a_stream_whose_client_left_follows_its_topic_no_more",
    at(_endpoint("news"), Undecorate(Code("stream_with_context", "stream.generate"))),
    keyword=MEMORY,
)
mutant(
    "channel-wrapper-without-stream-with-context",
    "channels",
    "a channel stream runs without its request context",
    f"{T_PROMISES}::test_a_stream_whose_client_left_follows_its_topic_no_more",
    at(_endpoint("feed"), Replace(Code("stream_with_context(...)", "stream"), "{args[0]}")),
    keyword=MEMORY,
)

# ---- channels: delivery (brokers/_base.py) ------------------------------------------------

mutant(
    "event-replayed-and-delivered-live-sent-twice",
    "channels",
    "an event found by both the replay and the live feed is sent twice",
    f"{T_PROMISES}::test_an_event_both_replayed_and_delivered_live_is_sent_once",
    at(BROKER_BASE, Replace(Code("....position.entry <= ....entry"), "{left} < {comparators[0]}")),
)
mutant(
    "lost-log-continued-silently",
    "channels",
    "the worker reads on past a topic's lost log: its streams never learn of the gap",
    (
        f"{T_BROKERS}::test_a_reader_that_lags_behind_the_trimming_ends_its_streams",
        f"{T_PROMISES}::test_a_log_lost_while_a_stream_is_open_ends_it_and_resuming_says_reset",
    ),
    at(BROKER_BASE, Delete(Code("fanout.end_topic(...)", "hand_over"))),
)
mutant(
    "epoch-change-mid-stream-unannounced",
    "channels",
    "Redis restarted from a snapshot under an open stream: it goes on without a reset",
    f"{T_BROKERS}::test_a_restart_that_kept_the_log_resets_the_streams_that_stay_open",
    at(BROKER_BASE, Replace(Code("event.position.epoch != current.epoch", "_accept"), "False")),
)
mutant(
    "replay-past-its-limit",
    "channels",
    "a replay goes on past the limit: a client far behind gets the whole history in one stream",
    f"{T_BROKERS}::test_a_replay_longer_than_the_limit_ends_with_a_reset",
    at(BROKER_BASE, Replace(Code("self._left == 0", "Replay.next"), "False")),
    keyword=MEMORY,
)
mutant(
    "history-trimmed-mid-replay-unannounced",
    "channels",
    "history trimmed between two pages of a replay ends the replay without a reset",
    f"{T_BROKERS}::test_history_trimmed_in_the_middle_of_a_replay_gets_a_reset",
    at(BROKER_BASE, Replace(Code("page.reset is not None", "Replay._fetch"), "False")),
    keyword=f"atomic and {MEMORY}",
)
mutant(
    "subscriber-fallen-behind-skips-silently",
    "channels",
    "a stream more than the feed's size behind reads on past the events it lost",
    f"{T_CHANNELS}::test_a_subscriber_that_falls_behind_is_ended_and_catches_up",
    at(BROKER_BASE, Replace(Code("first + len(entries) - cursor > self.size", "since"), "False")),
    keyword=MEMORY,
)
mutant(
    "shared-read-not-read-on",
    "channels",
    "a stream sharing a read begun before it subscribed misses what was delivered meanwhile",
    f"{T_BROKERS}::test_a_stream_sharing_a_read_that_began_before_it_misses_nothing",
    at(
        BROKER_BASE,
        Replace(Code("shared and not page.more", "Broker._pages"), "False"),
    ),
)
mutant(
    "cluster-closed-under-its-readers",
    "channels",
    "closing a cluster broker fails its shard readers' reads and logs a Redis that is not gone",
    f"{T_BROKERS}::test_a_broker_closed_while_its_readers_read_closes_quietly",
    at(
        BROKER_CLUSTER,
        Replace(Code("shard.join(...)", "ClusterReader.stop"), "None"),
        Replace(Code("if self.stopped.is_set(): ...", "ClusterReader.place", part="test"), "False"),
        Replace(Code("if reader.stopped.is_set(): ...", "_Shard._run", part="test"), "False"),
    ),
    keyword="cluster",
)
mutant(
    "start-without-the-broker-refused",
    "channels",
    "an app told to start without its broker stops the start-up all the same",
    f"{T_LIMITS}::test_a_worker_started_while_redis_is_away_serves_once_it_is_back",
    at(
        CHANNELS,
        Replace(
            Code('app.config["STREAM_BROKER_CHECK_AT_START"]', "_open_at_start"),
            "True",
        ),
    ),
)
mutant(
    "cluster-broker-never-made-late",
    "channels",
    "a cluster broker that could not be made at start-up is never tried again",
    f"{T_LIMITS}::test_a_worker_started_while_redis_is_away_serves_once_it_is_back",
    at(CHANNELS, Replace(Code("time.monotonic() < self._next_try", "_LateBroker.open"), "True")),
    keyword="cluster",
)
mutant(
    "identical-reads-not-merged",
    "channels",
    "a reconnect storm reads the same history once per stream, not once per worker",
    f"{T_BROKERS}::test_streams_resuming_from_the_same_place_read_the_history_once",
    at(BROKER_BASE, Replace(Code("self._flights.get(key)", "MergedReads.read"), "None")),
)
mutant(
    "replay-of-several-topics-unordered",
    "channels",
    "a replay of several topics comes topic by topic, not in publish order",
    f"{T_PROMISES}::test_a_replay_of_several_topics_is_in_publish_order",
    at(BROKER_BASE, Replace(Code("min(heads)", "Replay.next"), "heads[0]")),
)
mutant(
    "live-events-of-several-topics-unordered",
    "channels",
    "live events of several topics come topic by topic, not in the order they arrived",
    f"{T_PROMISES}::test_live_events_of_several_topics_arrive_in_publish_order",
    at(BROKER_BASE, Delete(Code("....sort(key=...)"))),
    keyword=MEMORY,
)
