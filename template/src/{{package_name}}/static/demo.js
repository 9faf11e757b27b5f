// Opens every stream listed on the page and shows each event the moment it arrives:
// EventSource for Server-Sent Events, a fetch() body reader for NDJSON and plain text.
"use strict";

function show(section, text) {
  const item = document.createElement("li");
  item.textContent = text;
  section.querySelector(".events").append(item);
}

function setStatus(section, text) {
  section.querySelector(".status").textContent = text;
}

// EventSource reconnects by itself after a dropped connection and sends Last-Event-ID,
// so the server resumes after the last event shown: each event appears exactly once.
function watchEvents(section, url) {
  const source = new EventSource(url);
  source.onopen = () => setStatus(section, "open");
  source.onmessage = (event) => show(section, `#${event.lastEventId} ${event.data}`);
  // The server sends "end" after its last event; without close() the browser would
  // reconnect, and the server would answer 204 No Content, which also stops it.
  source.addEventListener("end", () => {
    source.close();
    setStatus(section, "done");
  });
  source.onerror = () => {
    setStatus(section, source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  };
  return () => source.close();
}

// fetch() exposes the body as it arrives; lines are split here because a chunk may end
// in the middle of one. Blank lines are the server's heartbeats.
function watchLines(section, url) {
  const controller = new AbortController();
  (async () => {
    const response = await fetch(url, { signal: controller.signal });
    if (!response.ok) {
      setStatus(section, `error ${response.status}`);
      return;
    }
    setStatus(section, "open");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const lines = (pending + value).split("\n");
      pending = lines.pop();
      for (const line of lines) {
        if (line.trim() !== "") show(section, line);
      }
    }
    setStatus(section, "done");
  })().catch((error) => {
    if (error.name !== "AbortError") setStatus(section, `error: ${error.message}`);
  });
  return () => controller.abort();
}

for (const section of document.querySelectorAll("[data-stream-url]")) {
  const { streamUrl, streamFormat } = section.dataset;
  const watch = streamFormat === "sse" ? watchEvents : watchLines;
  let stop = watch(section, streamUrl);
  section.querySelector("button").addEventListener("click", () => {
    stop();
    section.querySelector(".events").replaceChildren();
    setStatus(section, "connecting");
    stop = watch(section, streamUrl);
  });
}
