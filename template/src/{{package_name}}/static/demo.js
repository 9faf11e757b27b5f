// Opens the streams listed on the page on demand and shows each event the moment it arrives:
// EventSource for Server-Sent Events, a fetch() body reader for NDJSON and plain text.
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

// fetch() exposes the body as it arrives; lines are split here because a chunk may end
// in the middle of one. Blank lines are the server's heartbeats.
function watchLines(section, url, done) {
  const controller = new AbortController();
  (async () => {
    const response = await fetch(url, { signal: controller.signal });
    if (!response.ok) {
      done(`error ${response.status}`, await describeFailure(response));
      return;
    }
    setStatus(section, "open");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      const lines = (pending + value).split("\n");
      pending = lines.pop();
      for (const line of lines) {
        if (line.trim() !== "") show(section, line);
      }
    }
    done("done");
  })().catch((error) => {
    if (error.name !== "AbortError") done("error", `the connection failed: ${error.message}`);
  });
  return () => controller.abort();
}

function connect(section) {
  const { streamUrl, streamFormat } = section.dataset;
  const button = section.querySelector("button");
  const watch = streamFormat === "sse" ? watchEvents : watchLines;
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
  stop = watch(section, streamUrl, done);
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
