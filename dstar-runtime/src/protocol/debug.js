// dstar's development aid, in debug builds only: a dstar request the server refused or failed
// (an event's handler error, an unknown event, signals of the wrong type, a soft navigation
// to no page) is reported in the console with the page, the event and the server's message,
// where the browser alone would say only "Failed to load resource". A server error (5xx) also
// shows a dismissable box on the page. Release builds send no such script, and their 5xx
// messages say nothing of the cause.
(() => {
  if (window.__dstarDebug) return;
  window.__dstarDebug = true;
  const fetch = window.fetch;
  const header = (headers, name) => {
    if (!headers) return undefined;
    if (headers instanceof Headers) return headers.get(name) || undefined;
    for (const key in headers) if (key.toLowerCase() === name) return headers[key];
    return undefined;
  };
  const overlay = (text) => {
    if (!document.body) return;
    let box = document.getElementById("dstar-error");
    if (!box) {
      box = document.createElement("pre");
      box.id = "dstar-error";
      box.setAttribute("role", "alert");
      box.title = "Click to dismiss (debug builds only)";
      box.style.cssText =
        "position:fixed;left:1em;right:1em;top:1em;max-height:40vh;overflow:auto;z-index:2147483647;margin:0;padding:1em;background:#fff0f0;color:#600;border:2px solid #c00;border-radius:4px;font:13px/1.4 monospace;white-space:pre-wrap;cursor:pointer";
      box.addEventListener("click", () => box.remove());
      document.body.appendChild(box);
    }
    box.textContent = text;
  };
  // A live event is sent again after a failure with the same click id: reported once.
  const reported = new Set();
  window.fetch = async function (input, init) {
    const response = await fetch.apply(this, arguments);
    const headers = init && init.headers;
    const event = header(headers, "x-dstar-event");
    const target = header(headers, "x-dstar-url");
    // 503 means "not applied, send again": the event's retries take care of it.
    if (response.status < 400 || response.status === 503 || !(event || target)) return response;
    const click = header(headers, "x-dstar-click");
    if (click) {
      if (reported.has(click)) return response;
      reported.add(click);
      if (reported.size > 100) reported.delete(reported.values().next().value);
    }
    const url = typeof input === "string" ? input : input.url;
    const what = event
      ? `event \`${event}\` of ${window.location.pathname} (${url})`
      : `navigation to ${target}`;
    let message = "";
    try {
      message = await response.clone().text();
    } catch (e) {}
    const text = `dstar: ${what} answered ${response.status}: ${message}`;
    console.error(text);
    if (response.status >= 500) overlay(text);
    return response;
  };

  // Live reload: once a second while the tab is visible, which version of the templates the
  // server renders. Live pages are rendered again by their sessions; others reload.
  const dev = window.__dstarDev;
  const poll = async () => {
    if (!document.hidden) {
      try {
        const answer = await fetch(dev.url, { cache: "no-store" });
        const generation = answer.ok ? await answer.text() : dev.generation;
        if (generation !== dev.generation) {
          dev.generation = generation;
          const live = window.__dstar && window.__dstar.live;
          const streaming = live && live.state !== "idle" && live.state !== "stopped";
          if (!streaming) window.location.reload();
        }
      } catch (e) {}
    }
    setTimeout(poll, 1000);
  };
  if (dev) setTimeout(poll, 1000);
})();
