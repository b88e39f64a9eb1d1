// dstar's live client: runs a live page's stream in place of a Datastar `@post`, so that
//
// - a hidden tab gives its connection back: its stream pauses after a short delay (never while
//   one of its events is in flight) and resumes, with `Last-Event-ID`, when the tab is shown;
// - over HTTP/1.1, where a browser allows six connections per site, the tabs of one browser
//   keep at most `cap` streams open between them (over a `BroadcastChannel`): past it, the tab
//   focused least recently pauses and says so until it is focused.
//
// Each event read from the stream is handed to Datastar as its own fetch action hands it: a
// `datastar-fetch` event on `document`, which Datastar's patch watchers apply.
(() => {
  const d = (window.__dstar = window.__dstar || {});
  if (d.live) return;
  const me = Math.random().toString(36).slice(2) + Date.now().toString(36);
  // state: "idle" (not started), "open" (connecting or streaming), "waiting" (to retry after
  // a failure), "paused" (hidden, or over the cap) or "stopped" (ended by the server).
  const live = (d.live = {
    state: "idle",
    why: "",
    focus: document.hidden ? 0 : Date.now(),
    inflight: 0,
  });
  let o = null;
  let token = "";
  let lastId = "";
  let retry = 1000;
  let attempts = 0;
  let controller = null;
  let pausing = null;
  let retryTimer = 0;
  let hideTimer = 0;

  // Tabs whose stream is open (this one included), by id: when each was last focused.
  const peers = new Map();
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("dstar-streams") : null;
  const capped = () => {
    if (!channel || !o || !o.cap) return false;
    const entry = performance.getEntriesByType("navigation")[0];
    const protocol = entry ? entry.nextHopProtocol : "";
    return protocol !== "h2" && protocol !== "h3";
  };
  const announce = () => {
    peers.set(me, live.focus);
    channel.postMessage({ t: "here", id: me, focus: live.focus });
  };
  const leave = () => {
    peers.delete(me);
    if (channel) channel.postMessage({ t: "gone", id: me });
  };
  // Over the cap, the tabs focused least recently pause (ties go by id, so every tab agrees).
  const enforce = () => {
    if (live.state !== "open" || !capped()) return;
    const open = [...peers].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    const excess = open.length - o.cap;
    if (excess > 0 && open.slice(0, excess).some(([id]) => id === me)) pause("capped");
  };
  if (channel) {
    channel.onmessage = ({ data }) => {
      if (data.t === "who") {
        // A tab is opening its stream: everyone says again who streams, which also drops
        // tabs that went away without a word.
        peers.clear();
        if (live.state === "open") announce();
        return;
      }
      if (data.t === "here") peers.set(data.id, data.focus);
      else if (data.t === "gone") peers.delete(data.id);
      enforce();
    };
  }

  const note = (on) => {
    document.documentElement.toggleAttribute("data-dstar-paused", on);
    let shown = document.getElementById("dstar-paused");
    if (on && !shown && document.body) {
      shown = document.createElement("button");
      shown.id = "dstar-paused";
      shown.type = "button";
      shown.textContent = "Live updates paused: click to resume";
      shown.style.cssText =
        "position:fixed;right:1em;bottom:1em;z-index:2147483646;padding:.5em 1em;font:14px sans-serif;border:1px solid #888;border-radius:4px;background:#fffbe6;color:#222;cursor:pointer";
      shown.addEventListener("click", focused);
      document.body.appendChild(shown);
    } else if (!on && shown) {
      shown.remove();
    }
  };

  // Datastar's own reading of an event's data lines: `key value`, lines of one key joined.
  const deliver = (type, lines) => {
    const args = {};
    for (const line of lines) {
      const space = line.indexOf(" ");
      const key = space < 0 ? line : line.slice(0, space);
      (args[key] ||= []).push(space < 0 ? "" : line.slice(space + 1));
    }
    for (const key in args) args[key] = args[key].join("\n");
    if (type === "datastar-patch-signals" && args.signals && args.signals.includes(o.signal)) {
      try {
        const fresh = JSON.parse(args.signals)[o.signal];
        if (typeof fresh === "string") token = fresh;
      } catch (e) {}
    }
    document.dispatchEvent(
      new CustomEvent("datastar-fetch", { detail: { type, el: o.el, argsRaw: args } }),
    );
  };

  // Reads the stream, event by event. `lastId` moves only when a whole event has been read, so
  // a stream cut in the middle of one resumes with it.
  const read = async (body) => {
    const reader = body.getReader();
    const text = new TextDecoder();
    let rest = "";
    let type = "";
    let data = [];
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      rest += text.decode(value, { stream: true });
      let start = 0;
      let end;
      while ((end = rest.indexOf("\n", start)) >= 0) {
        let line = rest.slice(start, end);
        start = end + 1;
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (id !== null) lastId = id;
          if (type.startsWith("datastar") && data.length) deliver(type, data);
          // An event of the page's own type (`Ctx::send_event`) goes to its listeners.
          else if (type && data.length)
            document.dispatchEvent(new CustomEvent("dstar-event", { detail: { type, data: data.join("\n") } }));
          type = "";
          data = [];
          id = null;
          continue;
        }
        if (line[0] === ":") continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
        if (field === "event") type = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
        else if (field === "retry" && /^\d+$/.test(value)) retry = +value;
      }
      rest = rest.slice(start);
    }
  };

  const open = async () => {
    if (live.state === "open" || live.state === "stopped") return;
    if (controller) {
      // Shown again before a pause finished ending the stream: `lastId` is where it stopped.
      const old = controller;
      controller = null;
      old.abort();
    }
    clearTimeout(retryTimer);
    live.state = "open";
    live.why = "";
    note(false);
    // A pause still on its way must reach the server before the new stream does.
    if (pausing) await pausing;
    if (live.state !== "open" || controller) return;
    const mine = (controller = new AbortController());
    if (capped()) {
      channel.postMessage({ t: "who", id: me });
      peers.clear();
      announce();
    }
    const headers = { Accept: "text/event-stream", "Datastar-Request": "true" };
    headers[o.header] = token;
    if (lastId) headers["Last-Event-ID"] = lastId;
    let failed = false;
    try {
      const response = await fetch(o.stream, { method: "POST", headers, signal: mine.signal });
      const type = response.headers.get("content-type") || "";
      if (response.status !== 200 || !type.startsWith("text/event-stream")) {
        // Refused (a forged or foreign token): as Datastar, no retry.
        console.warn("dstar: live stream refused", response.status, await response.text());
        live.state = "stopped";
      } else {
        attempts = 0;
        await read(response.body);
      }
    } catch (e) {
      failed = !mine.signal.aborted;
    }
    if (controller !== mine) return;
    controller = null;
    if (live.state === "paused" || live.state === "stopped") return;
    if (failed) {
      // A network failure, or the server cut the stream: try again, waiting longer each time.
      if (attempts >= o.retries) {
        live.state = "stopped";
        console.error("dstar: the live stream could not reconnect");
        leave();
        return;
      }
      live.state = "waiting";
      retryTimer = setTimeout(open, Math.min(retry * 2 ** attempts, 30000));
      attempts += 1;
    } else {
      // The server ended the stream on purpose (the session ended): as Datastar, no retry.
      live.state = "stopped";
      leave();
    }
  };

  // Pauses the stream: the server is told first, so the session waits the hidden-tab grace,
  // and it ends the stream cleanly; without an answer soon (no free connection), the stream
  // is closed here.
  const pause = (why) => {
    if (live.state !== "open" && live.state !== "waiting" && live.state !== "idle") return;
    clearTimeout(retryTimer);
    live.state = "paused";
    live.why = why;
    leave();
    note(why === "capped" && !document.hidden);
    const headers = {};
    headers[o.header] = token;
    const sent = fetch(o.pause, { method: "POST", headers, signal: AbortSignal.timeout(10000) })
      .catch(() => {})
      .finally(() => {
        if (pausing === sent) pausing = null;
      });
    pausing = sent;
    const streaming = controller;
    if (streaming) {
      setTimeout(() => {
        if (controller === streaming) {
          controller = null;
          streaming.abort();
        }
      }, 2000);
    }
  };

  const focused = () => {
    live.focus = Date.now();
    if (live.state === "paused") open();
    else if (live.state === "open" && capped()) announce();
  };

  const hidden = () => {
    if (!document.hidden || o.background) return;
    if (live.state !== "open" && live.state !== "waiting") return;
    // Not while an event is in flight: its patches come down this stream.
    if (live.inflight > 0) hideTimer = setTimeout(hidden, 250);
    else pause("hidden");
  };

  document.addEventListener("visibilitychange", () => {
    if (!o) return;
    clearTimeout(hideTimer);
    if (document.hidden) hideTimer = setTimeout(hidden, o.hiddenPause);
    else focused();
  });
  window.addEventListener("focus", () => o && focused());
  // A click or a key in a tab paused over the limit: the person is here, whatever the focus
  // events said.
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, () => o && live.state === "paused" && focused(), true);
  }
  window.addEventListener("pagehide", leave);
  document.addEventListener("datastar-fetch", (e) => {
    const type = e.detail && e.detail.type;
    if (type === "started") live.inflight += 1;
    else if (type === "finished") live.inflight = Math.max(0, live.inflight - 1);
  });

  // Called by the page root's `data-init` once Datastar runs. A tab loaded in the background
  // does not open its stream: it pauses at once (the session waits the hidden-tab grace).
  live.start = (el, streamToken, options) => {
    if (o) return;
    o = options;
    o.el = el;
    token = streamToken;
    if (document.hidden && !o.background) pause("hidden");
    else open();
  };
  // Soft navigation to a page that does (or does not) keep streaming while hidden.
  live.background = (on) => {
    if (!o) return;
    o.background = on;
    clearTimeout(hideTimer);
    if (document.hidden) hideTimer = setTimeout(hidden, o.hiddenPause);
  };
  // For tests and the curious: what this tab's stream is doing.
  live.status = () => ({ state: live.state, why: live.why, lastId, peers: peers.size });
})();
