// The dashboard's script: live regions over Server-Sent Events, and charger actions.
// Plain browser JavaScript, no build step. Live: the server streams the version of each
// topic a page shows; when one moves, the page fetches itself again and swaps the
// elements marked data-live (forms outside them keep what the operator typed).
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const topics = (document.body.dataset.topics || "").split(" ").filter(Boolean);
  const versions = JSON.parse(document.body.dataset.versions || "{}");
  const state = document.getElementById("live-state");

  let refreshing = false;
  let again = false;

  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      do {
        again = false;
        const response = await fetch(location.href, { headers: { Accept: "text/html" } });
        if (response.redirected || !response.ok) { location.reload(); return; }
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        document.querySelectorAll("[data-live]").forEach((old) => {
          const next = fresh.getElementById(old.id);
          if (next) { old.replaceWith(document.importNode(next, true)); }
        });
        bindCalls(document);
      } while (again);
    } finally {
      refreshing = false;
    }
  }

  if (topics.length && window.EventSource) {
    const events = new EventSource("/dashboard/events?topics=" + encodeURIComponent(topics.join(",")));
    events.addEventListener("open", () => state && state.classList.add("on"));
    events.addEventListener("error", () => state && state.classList.remove("on"));
    events.addEventListener("ended", () => { events.close(); location.reload(); });
    events.addEventListener("change", (event) => {
      const change = JSON.parse(event.data);
      if (versions[change.topic] === change.version) { return; }
      versions[change.topic] = change.version;
      refresh();
    });
  }

  function payloadOf(form) {
    const payload = {};
    form.querySelectorAll("input[name], select[name]").forEach((input) => {
      const raw = input.value.trim();
      if (raw === "") { return; }
      const kind = input.dataset.kind || "str";
      if (kind === "int") { payload[input.name] = Number.parseInt(raw, 10); }
      else if (kind === "list") { payload[input.name] = raw.split(",").map((s) => s.trim()).filter(Boolean); }
      else { payload[input.name] = raw; }
    });
    return payload;
  }

  async function send(form) {
    const output = form.querySelector("output");
    const charger = encodeURIComponent(form.dataset.charger);
    output.textContent = "waiting for the charger…";
    output.dataset.state = "waiting";
    try {
      const response = await fetch(`/api/chargers/${charger}/calls/${form.dataset.action}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(payloadOf(form)),
      });
      const body = await response.json();
      output.textContent = response.ok
        ? JSON.stringify(body)
        : `refused (HTTP ${response.status}): ${body.message || JSON.stringify(body)}`;
      output.dataset.state = response.ok ? "ok" : "error";
    } catch (error) {
      output.textContent = `failed: ${error}`;
      output.dataset.state = "error";
    }
  }

  function bindCalls(root) {
    root.querySelectorAll("form.call").forEach((form) => {
      if (form.dataset.bound) { return; }
      form.dataset.bound = "1";
      form.addEventListener("submit", (event) => { event.preventDefault(); send(form); });
    });
  }

  bindCalls(document);
})();
