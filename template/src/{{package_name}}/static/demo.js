// Opens the streams listed on the page on demand and shows each event the moment it arrives:
// EventSource for the ticks endpoints' Server-Sent Events, a fetch() body reader for NDJSON,
// plain text and channels.
//
// Never a silent hang: over HTTP/1.1 a browser opens at most 6 connections per host, shared
// by every tab of the site, and each open stream holds one. A seventh stream then waits for
// good without any error. So streams open only when asked, the page says which protocol it
// got, and a stream that is still waiting or was refused says why.
"use strict";

// Connections per host a browser allows over HTTP/1.1 (HTTP/2 multiplexes about 100 streams).
const HTTP1_CONNECTIONS = 6;
// A stream not open after this long is reported as waiting for a connection.
const WAITING_MS = 3000;
// How long a channel waits before it reconnects (FLASK_STREAM_RETRY_MS; an SSE stream's own
// "retry:" field overrides it, as it does for EventSource).
const RETRY_MS = Number(document.body.dataset.retryMs) || 3000;

const navigation = performance.getEntriesByType("navigation")[0];
const protocol = (navigation && navigation.nextHopProtocol) || "";
const multiplexed = protocol === "h2" || protocol === "h3";
const live = new Set(); // sections whose stream is connecting or open

function show(section, text) {
  const item = document.createElement("li");
  item.textContent = text;
  section.querySelector(".events").append(item);
}

function setStatus(section, text, why = "") {
  section.querySelector(".status").textContent = text;
  section.querySelector(".why").textContent = why;
}

// Why a stream has not opened yet: the browser's connection limit is the usual reason.
function waitingReason() {
  if (multiplexed) return "the server has not answered yet";
  const others = live.size - 1;
  return (
    `over HTTP/1.1 the browser allows ${HTTP1_CONNECTIONS} connections to this host, shared ` +
    `by every tab of it; this page holds ${others} other stream${others === 1 ? "" : "s"}. ` +
    "Stop one, close other tabs, or serve the app over HTTPS with HTTP/2 (see README)."
  );
}

// Turn an error response (the app answers JSON {"error": ...}) into one readable line.
async function describeFailure(response) {
  let detail = response.statusText;
  try {
    const body = await response.json();
    if (body && body.error) detail = body.error;
  } catch {
    // not JSON: keep the status text
  }
  const retry = response.headers.get("Retry-After");
  return `${response.status}: ${detail}${retry ? ` (retry after ${retry} s)` : ""}`;
}

// EventSource reconnects by itself after a dropped connection and sends Last-Event-ID,
// so the server resumes after the last event shown: each event appears exactly once.
function watchEvents(section, url, done) {
  const source = new EventSource(url);
  source.onopen = () => setStatus(section, "open");
  source.onmessage = (event) => show(section, `#${event.lastEventId} ${event.data}`);
  // The server sends "end" after its last event; without close() the browser would
  // reconnect, and the server would answer 204 No Content, which also stops it.
  source.addEventListener("end", () => {
    source.close();
    done("done");
  });
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED) {
      setStatus(section, "reconnecting", "the connection dropped; EventSource retries by itself");
      return;
    }
    // A refused stream (an error status or another content type) closes EventSource for
    // good, and it does not say why: ask once more with fetch() to show the answer.
    fetch(url, { headers: { Accept: "text/event-stream" } })
      .then(async (response) => {
        const why = response.ok ? "the server closed the stream" : await describeFailure(response);
        done("closed", why);
        if (response.body) response.body.cancel();
      })
      .catch(() => done("closed", "the server cannot be reached"));
  };
  return () => source.close();
}

// Calls onLine for each line of a fetch() body as it arrives (a chunk may end in the middle
// of one), until the body ends. This app ends its lines with LF (see sse.py).
async function readLines(response, onLine) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const lines = (pending + value).split("\n");
    pending = lines.pop();
    for (const line of lines) onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}

// How many ticks a ticks stream still owed when it ended, from its last line: NDJSON records
// carry "seq" and "of", text lines read "<topic> <n>/<count>".
function ticksLeft(format, line) {
  if (format === "ndjson") {
    const record = JSON.parse(line);
    return record.of - record.seq - 1;
  }
  const place = / (\d+)\/(\d+)/.exec(line);
  return place ? Number(place[2]) - Number(place[1]) : 0;
}

// A ticks stream of NDJSON or text: one item per line; blank lines are heartbeats. Nothing
// reconnects it: a stream the server ends early (a restart or deploy, or its lifetime cap)
// cannot resume, so the page says so rather than "done".
function watchLines(section, url, format, done) {
  const controller = new AbortController();
  (async () => {
    const response = await fetch(url, { signal: controller.signal });
    if (!response.ok) {
      done(`error ${response.status}`, await describeFailure(response));
      return;
    }
    setStatus(section, "open");
    let last = "";
    await readLines(response, (line) => {
      if (line.trim() === "") return;
      last = line;
      show(section, line);
    });
    const left = last ? ticksLeft(format, last) : 0;
    if (left > 0) {
      done(
        "ended early",
        `the server ended the stream ${left} event(s) before its end (it restarted, or the ` +
          "stream reached FLASK_STREAM_MAX_SECONDS); Connect starts it over",
      );
    } else {
      done("done");
    }
  })().catch((error) => {
    if (error.name !== "AbortError") done("error", `the connection failed: ${error.message}`);
  });
  return () => controller.abort();
}

// Server-Sent Events read from a fetch() body, field by field as EventSource reads them.
// EventSource hands an event named "created" only to addEventListener("created"), and the
// names a channel carries are whatever its publishers chose; this page shows them all.
// In your own page, use EventSource with a listener for each name you publish, and "reset".
// One reader per connection; the last event id carries over from the one before.
function sseReader(id, onEvent, onId, onRetry) {
  let data = [];
  let type = "";
  return (line) => {
    if (line === "") {
      if (data.length) onEvent(type || "message", data.join("\n"), id);
      data = [];
      type = "";
      return;
    }
    if (line.startsWith(":")) return; // a comment: a heartbeat or a note from the server
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") type = value;
    else if (field === "retry" && /^[0-9]+$/.test(value)) onRetry(Number(value));
    else if (field === "id" && !value.includes("\0")) {
      id = value;
      onId(id);
    }
  };
}

// A channel never ends by itself: when the server ends it (a restart or deploy, its lifetime
// cap, a client too slow) or the connection drops, the card comes back after the retry time
// from where it stands, with Last-Event-ID (SSE) or ?last_event_id= (NDJSON, the "id" of its
// last line), and the server replays what it missed: each event appears exactly once, or
// after a "reset" event when the history it needed is gone. A 503 with Retry-After (a full or
// restarting worker, the broker out of reach) says when to come back; any other error status
// stops it, as it stops EventSource.
function followChannel(section, url, format, done) {
  const controller = new AbortController();
  let lastId = "";
  let retryMs = RETRY_MS;
  const showEvent = (type, data, id) =>
    show(section, `#${id} ${type === "message" ? "" : `${type} `}${data}`);
  const showRecord = (line) => {
    if (line.trim() === "") return;
    lastId = JSON.parse(line).id;
    show(section, line);
  };
  const connect = async () => {
    const target = new URL(url, document.baseURI);
    const headers = {};
    if (lastId && format === "sse") headers["Last-Event-ID"] = lastId;
    if (lastId && format !== "sse") target.searchParams.set("last_event_id", lastId);
    const response = await fetch(target, { headers, signal: controller.signal });
    if (!response.ok) {
      const after = Number(response.headers.get("Retry-After"));
      const why = await describeFailure(response);
      return { why, retryMs: response.status === 503 && after > 0 ? after * 1000 : null };
    }
    setStatus(section, "open");
    const onLine =
      format === "sse"
        ? sseReader(lastId, showEvent, (id) => (lastId = id), (ms) => (retryMs = ms))
        : showRecord;
    await readLines(response, onLine);
    return null;
  };
  (async () => {
    for (;;) {
      let refused = null;
      try {
        refused = await connect();
      } catch (error) {
        if (error.name === "AbortError") return;
      }
      if (refused && refused.retryMs === null) {
        done("closed", refused.why);
        return;
      }
      const why = refused ? refused.why : "the stream ended; resuming after the last event shown";
      setStatus(section, "reconnecting", why);
      await new Promise((wake) => setTimeout(wake, refused ? refused.retryMs : retryMs));
      if (controller.signal.aborted) return;
    }
  })();
  return () => controller.abort();
}

function connect(section) {
  const { streamUrl, streamFormat, streamSource } = section.dataset;
  const button = section.querySelector("button");
  section.querySelector(".events").replaceChildren();
  live.add(section);
  setStatus(section, "connecting", live.size > HTTP1_CONNECTIONS && !multiplexed ? waitingReason() : "");
  const timer = setTimeout(() => {
    if (section.querySelector(".status").textContent === "connecting") {
      setStatus(section, "connecting", `waiting for a connection: ${waitingReason()}`);
    }
  }, WAITING_MS);
  let stop = null;
  const done = (status, why = "") => {
    clearTimeout(timer);
    live.delete(section);
    setStatus(section, status, why);
    button.textContent = "Connect";
    section.stop = null;
  };
  if (streamSource === "channel") stop = followChannel(section, streamUrl, streamFormat, done);
  else if (streamFormat === "sse") stop = watchEvents(section, streamUrl, done);
  else stop = watchLines(section, streamUrl, streamFormat, done);
  button.textContent = "Stop";
  section.stop = () => {
    stop();
    done("stopped");
  };
}

const sections = [...document.querySelectorAll("[data-stream-url]")];
for (const section of sections) {
  section.querySelector("button").addEventListener("click", () => {
    if (section.stop) section.stop();
    else connect(section);
  });
}
document.querySelector("#connect-all").addEventListener("click", () => {
  for (const section of sections) {
    if (!section.stop) connect(section);
  }
});

const note = document.querySelector("#protocol");
if (multiplexed) {
  note.textContent = `Served over ${protocol === "h3" ? "HTTP/3" : "HTTP/2"}: every stream shares one connection.`;
} else {
  note.textContent =
    `Served over ${protocol === "http/1.1" ? "HTTP/1.1" : protocol || "HTTP/1.x"}: the browser ` +
    `opens at most ${HTTP1_CONNECTIONS} connections to this host, for all its tabs together, ` +
    `and each open stream holds one. Serve over HTTPS (HTTP/2) for more.`;
}
