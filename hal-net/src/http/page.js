// The status page: fetches /status.json (what `hal-net status --json` prints) every two
// seconds and shows it. Every value from a server goes into the page as text
// (textContent), never as markup, so a name cannot inject anything.
"use strict";

const REFRESH_MS = 2000;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function row(cells, cls) {
  const tr = el("tr", null, cls);
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = el("td");
      td.appendChild(cell);
      tr.appendChild(td);
    } else {
      tr.appendChild(el("td", cell));
    }
  }
  return tr;
}

function replace(node, children) {
  while (node.firstChild) node.removeChild(node.firstChild);
  for (const child of children) node.appendChild(child);
}

const HEALTH = {
  ok: "healthy: a server is active with a majority; every server up and linked",
  degraded: "DEGRADED: still serving",
  not_serving: "NOT SERVING: no server is active with a majority",
  unreachable: "UNREACHABLE: no server answered",
};

function links(server) {
  const parts = [];
  for (const peer of server.peers || []) {
    if (peer.refused) parts.push("#" + peer.server + " refused: " + peer.refused);
    else parts.push("#" + peer.server + (peer.connected ? " up" : " DOWN"));
  }
  return parts.join(", ");
}

function certificate(server) {
  const days = server.certificate_days_left;
  if (days === null || days === undefined) return "plaintext";
  if (days < 0) return "EXPIRED";
  return days + " days left";
}

function showServers(status) {
  const rows = [];
  for (const s of status.servers || []) {
    if (!s.up) {
      const r = row(["#" + s.server, s.address, "DOWN", "", "", "", "", "", s.error || ""], "down");
      r.dataset.server = s.server;
      r.dataset.up = "false";
      rows.push(r);
      continue;
    }
    const role = el("span", s.role);
    const r = row([
      "#" + s.server, s.address, "up", role, s.term, s.log_lag,
      s.version ? "hal-net " + s.version : "0.1.0 or older",
      certificate(s), links(s),
    ]);
    if (s.role === "active") r.children[3].className = "active";
    r.dataset.server = s.server;
    r.dataset.up = "true";
    r.dataset.role = s.role;
    rows.push(r);
  }
  replace(document.querySelector("#servers tbody"), rows);
}

function showFeatures(status) {
  const from = document.getElementById("seats-from");
  if (status.seats_from === null || status.seats_from === undefined) {
    from.textContent = "no server reachable: seats unknown";
  } else if (status.active === null || status.active === undefined) {
    from.textContent = "NO ACTIVE SERVER: seats as server #" + status.seats_from + " last knew them";
  } else {
    from.textContent = "from the active server #" + status.active;
  }
  const blocks = [];
  for (const f of status.features || []) {
    const block = el("div", null, "feature");
    block.dataset.feature = f.feature;
    block.appendChild(el("h3", f.feature + ": " + f.used + " of " + f.count + " in use"));
    const bar = el("div", null, f.used >= f.count ? "bar full" : "bar");
    const fill = el("div");
    fill.style.width = (f.count > 0 ? Math.min(100, (100 * f.used) / f.count) : 0) + "%";
    bar.appendChild(fill);
    block.appendChild(bar);
    if ((f.holders || []).length > 0) {
      const table = el("table");
      table.appendChild(row(["handle", "user@host", "since", "borrowed until"]));
      for (const h of f.holders) {
        table.appendChild(row([h.handle, h.user + "@" + h.host, h.granted, h.borrow_end || ""]));
      }
      block.appendChild(table);
    }
    if ((f.waiting || []).length > 0) {
      block.appendChild(el("p", f.waiting.length + " waiting:"));
      const list = el("ol");
      for (const w of f.waiting) list.appendChild(el("li", w.user + "@" + w.host + " since " + w.since));
      block.appendChild(list);
    }
    blocks.push(block);
  }
  replace(document.getElementById("features"), blocks);
}

function show(status) {
  const health = document.getElementById("health");
  health.textContent = HEALTH[status.health] || status.health;
  health.className = "health " + status.health;
  document.body.dataset.health = status.health;
  document.body.dataset.active = status.active === null || status.active === undefined ? "" : String(status.active);
  replace(document.getElementById("problems"), (status.problems || []).map((p) => el("li", p)));
  showServers(status);
  showFeatures(status);
  document.getElementById("updated").textContent =
    "updated " + new Date().toLocaleTimeString() + " by server #" + status.from;
  document.body.dataset.state = "ready";
}

async function refresh() {
  try {
    const response = await fetch("/status.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    show(await response.json());
  } catch (error) {
    const health = document.getElementById("health");
    health.textContent = "this server does not answer (" + error.message + ")";
    health.className = "health error";
    document.body.dataset.state = "error";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
