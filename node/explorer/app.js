/* Veil Explorer: reads this node's /v1 API and /v1/events, and every validator's
 * /v1/status (URLs from /v1/network). Plain DOM, no build step, no dependencies.
 * Every value from the API is put on the page as text (textContent), never as HTML.
 * There is no amount to show: outputs are commitments, shown as "amount hidden". */
"use strict";

const LATEST_COUNT = 12;
const NETWORK_POLL_MS = 2000;
const REQUEST_TIMEOUT_MS = 8000;
const KIND_LABELS = {
  register_account: "Register account",
  register_member: "Register member",
  remove_member: "Remove member",
  set_auditor_key: "Set auditor key",
  issue: "Issue",
  transfer: "Transfer",
  attest: "Attest",
  loan_originate: "Loan originated",
  loan_repay: "Loan repayment",
  loan_accrue: "Interest accrued",
  loan_close: "Loan closed",
};

const state = {
  network: null,        // /v1/network
  assets: new Map(),    // asset id -> symbol
  statuses: new Map(),  // validator index -> {status} | {error}
  height: null,         // this node's height
  blocks: new Map(),    // height -> block JSON
  latest: [],           // heights shown in "latest blocks", newest first
  socket: null,
  route: null,
};

// --- DOM helpers -----------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svgLock() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  const body = document.createElementNS(ns, "rect");
  for (const [k, v] of Object.entries({ x: 2.5, y: 7, width: 11, height: 8, rx: 2, fill: "currentColor" })) {
    body.setAttribute(k, v);
  }
  const shackle = document.createElementNS(ns, "path");
  shackle.setAttribute("d", "M5 7V5a3 3 0 0 1 6 0v2");
  shackle.setAttribute("fill", "none");
  shackle.setAttribute("stroke", "currentColor");
  shackle.setAttribute("stroke-width", "1.8");
  svg.append(body, shackle);
  return svg;
}

function hiddenAmount() {
  return h("span", { class: "hidden-amount", title: "A Pedersen commitment: only the parties and the regulator can open it" },
    svgLock(), "amount hidden");
}

function short(hex, size = 10) {
  if (!hex) return "—";
  return hex.length <= size * 2 ? hex : `${hex.slice(0, size)}…${hex.slice(-6)}`;
}

function hashText(hex, size) {
  return h("span", { class: "hash", title: hex || "" }, short(hex, size));
}

function kindName(kind) {
  const match = /^veil\/tx\/([a-z_]+)\/v\d+$/.exec(kind || "");
  return match ? match[1] : (kind || "unknown");
}

function kindBadge(kind) {
  const name = kindName(kind);
  return h("span", { class: `badge kind ${name}` }, KIND_LABELS[name] || name);
}

function keyName(publicKey) {
  const validators = state.network ? state.network.validators : [];
  const found = validators.find((v) => v.public_key === publicKey);
  return found ? found.name : null;
}

function party(publicKey) {
  const name = keyName(publicKey);
  return h("span", {}, name ? h("strong", {}, name, " ") : null, hashText(publicKey, 8));
}

function assetName(assetId) {
  return state.assets.get(assetId) || short(assetId, 8);
}

function ago(timestampMs) {
  const seconds = Math.max(0, Math.round((Date.now() - timestampMs) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(timestampMs).toLocaleString();
}

function agoCell(timestampMs) {
  return h("span", { class: "ago", "data-ts": timestampMs, title: new Date(timestampMs).toISOString() }, ago(timestampMs));
}

function link(href, ...children) {
  return h("a", { href }, ...children);
}

function setView(...children) {
  const view = document.getElementById("view");
  view.replaceChildren(...children);
  window.scrollTo(0, 0);
}

function notice(text) {
  return h("div", { class: "notice" }, text);
}

// --- API -------------------------------------------------------------------------------

async function getJson(url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(url, { signal: controller.signal, headers: { Accept: "application/json" } });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    return { ok: response.ok, status: response.status, body };
  } catch (error) {
    return { ok: false, status: 0, body: null, error: String(error) };
  } finally {
    clearTimeout(timer);
  }
}

function errorText(result) {
  if (result.status === 0) return "this node does not answer";
  const error = result.body && result.body.error;
  return error ? `${error.code}: ${error.message}` : `HTTP ${result.status}`;
}

async function loadBlock(height) {
  if (state.blocks.has(height)) return state.blocks.get(height);
  const result = await getJson(`/v1/blocks/${height}`);
  if (!result.ok) return null;
  state.blocks.set(height, result.body);
  if (state.blocks.size > 200) state.blocks.delete(state.blocks.keys().next().value);
  return result.body;
}

async function loadChain() {
  const result = await getJson("/v1/chain");
  if (result.ok) {
    for (const asset of result.body.assets) state.assets.set(asset.id, asset.symbol);
    document.getElementById("chain-name").textContent = result.body.chain_name;
  }
}

async function loadNetwork() {
  const result = await getJson("/v1/network");
  if (result.ok) state.network = result.body;
  const self = state.network && state.network.validators[state.network.self_index];
  document.getElementById("served-by").textContent = self ? `served by ${self.name}` : "";
}

function statusUrl(validator) {
  if (state.network && validator.index === state.network.self_index) return "/v1/status";
  return validator.api_url ? `${validator.api_url}/v1/status` : null;
}

async function pollNetwork() {
  if (!state.network) await loadNetwork();
  const validators = state.network ? state.network.validators : [];
  await Promise.all(validators.map(async (validator) => {
    const url = statusUrl(validator);
    if (!url) {
      state.statuses.set(validator.index, { error: "no API URL in genesis" });
      return;
    }
    const result = await getJson(url);
    state.statuses.set(validator.index, result.ok ? { status: result.body } : { error: errorText(result) });
  }));
  const own = state.network && state.statuses.get(state.network.self_index);
  if (own && own.status) onHeight(own.status.height);
  renderNetwork();
  renderStats();
}

// --- live updates ----------------------------------------------------------------------

function setLive(mode, text) {
  const live = document.getElementById("live");
  live.dataset.state = mode;
  live.querySelector(".live-text").textContent = text;
}

function connectEvents(delayMs = 1000) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let socket;
  try {
    socket = new WebSocket(`${scheme}//${location.host}/v1/events`);
  } catch (_) {
    setLive("offline", "offline");
    return;
  }
  state.socket = socket;
  socket.onopen = () => { setLive("live", "live"); delayMs = 1000; };
  socket.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    if (event.type === "block_committed") onHeight(event.height);
    if (event.type === "tx_status" && state.route && state.route.name === "tx" && state.route.arg === event.id) {
      route();
    }
  };
  socket.onclose = () => {
    setLive("offline", "reconnecting");
    setTimeout(() => connectEvents(Math.min(delayMs * 2, 15000)), delayMs);
  };
}

function onHeight(height) {
  if (typeof height !== "number" || (state.height !== null && height <= state.height)) return;
  state.height = height;
  renderStats();
  refreshLatest();
}

let refreshing = false;
async function refreshLatest() {
  if (refreshing || state.height === null) return;
  refreshing = true;
  try {
    const top = state.height;
    const wanted = [];
    for (let height = top; height >= Math.max(1, top - LATEST_COUNT + 1); height -= 1) wanted.push(height);
    await Promise.all(wanted.map(loadBlock));
    const before = new Set(state.latest);
    state.latest = wanted.filter((height) => state.blocks.has(height));
    renderLatest(before);
  } finally {
    refreshing = false;
  }
  if (state.latest.length && state.latest[0] < state.height) refreshLatest();
}

// --- overview --------------------------------------------------------------------------

function stat(id, label, note) {
  return h("div", { class: "stat" },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value", id, "data-testid": id }, "—"),
    h("div", { class: "stat-note", id: `${id}-note` }, note || ""));
}

function renderOverview() {
  setView(
    h("div", { class: "page-head" }, h("h1", {}, "Network overview"),
      h("span", { class: "sub" }, "validators, consensus and the latest blocks, live")),
    h("section", { class: "stats" },
      stat("stat-height", "Block height"),
      stat("stat-view", "View"),
      stat("stat-validators", "Validators up"),
      stat("stat-mempool", "Mempool")),
    h("div", { class: "columns" },
      h("section", { class: "panel", "aria-labelledby": "latest-title" },
        h("div", { class: "panel-head" }, h("h2", { id: "latest-title" }, "Latest blocks"),
          h("span", { class: "muted", id: "latest-note" }, "")),
        h("table", { id: "latest-blocks" },
          h("thead", {}, h("tr", {}, h("th", {}, "Block"), h("th", {}, "Txs"),
            h("th", { class: "hide-narrow" }, "Proposer"), h("th", {}, "Hash"), h("th", {}, "Age"))),
          h("tbody", {}))),
      h("section", { class: "panel", "aria-labelledby": "network-title" },
        h("div", { class: "panel-head" }, h("h2", { id: "network-title" }, "Validators"),
          h("span", { class: "muted" }, "PBFT, n = 3f + 1")),
        h("div", { class: "nodes", id: "nodes" }))));
  renderStats();
  renderNetwork();
  renderLatest(new Set(state.latest));
}

function renderStats() {
  const heightCell = document.getElementById("stat-height");
  if (!heightCell) return;
  heightCell.textContent = state.height === null ? "—" : state.height.toLocaleString("en-US");
  const own = state.network && state.statuses.get(state.network.self_index);
  const status = own && own.status;
  document.getElementById("stat-view").textContent = status ? status.view : "—";
  const primary = status && state.network.validators[status.primary];
  document.getElementById("stat-view-note").textContent = primary ? `primary: ${primary.name}` : "";
  const total = state.network ? state.network.validators.length : 0;
  const up = [...state.statuses.values()].filter((s) => s.status).length;
  document.getElementById("stat-validators").textContent = total ? `${up} / ${total}` : "—";
  const faulty = Math.floor((total - 1) / 3);
  document.getElementById("stat-validators-note").textContent = total ? `tolerates ${faulty} faulty` : "";
  document.getElementById("stat-mempool").textContent = status ? status.mempool_txs : "—";
  document.getElementById("stat-mempool-note").textContent = status ? "pending txs on this node" : "";
}

function renderNetwork() {
  const grid = document.getElementById("nodes");
  if (!grid || !state.network) return;
  const top = Math.max(0, ...[...state.statuses.values()].filter((s) => s.status).map((s) => s.status.height));
  grid.replaceChildren(...state.network.validators.map((validator) => {
    const entry = state.statuses.get(validator.index) || {};
    const status = entry.status;
    const isPrimary = status && status.primary === validator.index;
    const health = !status ? "down" : (status.height + 2 < top || status.catching_up ? "lagging" : "up");
    const connected = status ? status.peers.filter((p) => p.connected).length : 0;
    const explorer = validator.api_url ? `${validator.api_url}/explorer/` : null;
    return h("article", { class: "node", "data-health": health, "data-index": validator.index },
      h("div", { class: "node-head" },
        h("span", { class: "dot", title: health }),
        h("span", { class: "node-name" }, validator.name),
        h("span", { class: "muted" }, `#${validator.index}`),
        isPrimary ? h("span", { class: "badge primary" }, "primary") : null,
        state.network.self_index === validator.index ? h("span", { class: "badge self" }, "this node") : null),
      h("div", { class: "node-url" }, explorer ? link(explorer, validator.api_url) : "no API URL"),
      status
        ? h("dl", {},
          h("dt", {}, "height"), h("dd", { class: "node-height" }, status.height.toLocaleString("en-US")),
          h("dt", {}, "view"), h("dd", {}, status.view),
          h("dt", {}, "peers"), h("dd", {}, `${connected} / ${status.peers.length} connected`),
          h("dt", {}, "state root"), h("dd", {}, hashText(status.state_root, 6)),
          status.stopped ? [h("dt", {}, "stopped"), h("dd", {}, status.stop_reason || "yes")] : null)
        : h("dl", {}, h("dt", {}, "status"), h("dd", {}, entry.error || "…")));
  }));
}

function renderLatest(before) {
  const table = document.getElementById("latest-blocks");
  if (!table) return;
  const body = table.querySelector("tbody");
  if (!state.latest.length) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "empty" },
      state.height === 0 ? "No blocks yet: only the genesis." : "Loading blocks…")));
    return;
  }
  body.replaceChildren(...state.latest.map((height) => {
    const block = state.blocks.get(height);
    const header = block.header;
    const proposer = header ? keyName(header.proposer) || short(header.proposer, 6) : "—";
    return h("tr", { class: before.has(height) ? "" : "fresh", "data-height": height },
      h("td", {}, link(`#/block/${height}`, h("span", { class: "block-link" }, `#${height.toLocaleString("en-US")}`))),
      h("td", { class: "num" }, block.txs.length),
      h("td", { class: "hide-narrow" }, proposer),
      h("td", {}, hashText(block.hash, 6)),
      h("td", {}, header ? agoCell(header.timestamp_ms) : "—"));
  }));
  document.getElementById("latest-note").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// --- tx card ---------------------------------------------------------------------------

function outputItem(output) {
  return h("li", { class: "io-item" },
    h("div", {}, h("span", { class: "muted" }, "to "), party(output.owner)),
    h("span", { class: "hash", title: "output id" }, `id ${short(output.id, 12)}`),
    h("span", { class: "hash", title: "Pedersen commitment" }, `commitment ${short(output.commitment, 12)}`),
    hiddenAmount());
}

function inputItem(inputId) {
  const txId = inputId.slice(0, 64);
  const index = parseInt(inputId.slice(64), 16);
  return h("li", { class: "io-item" },
    h("span", { class: "hash", title: "output id" }, `id ${short(inputId, 12)}`),
    h("div", { class: "muted" }, `output ${index} of tx `, link(`#/tx/${txId}`, hashText(txId, 8))),
    hiddenAmount());
}

function metaRows(tx) {
  const rows = [];
  const add = (label, value) => rows.push(h("span", { class: "k" }, label), h("span", {}, value));
  const signerRole = { transfer: "sender", issue: "issuer", register_account: "bank" }[kindName(tx.kind)] || "signer";
  if (tx.signer) add(signerRole, party(tx.signer));
  if (tx.asset) add("asset", assetName(tx.asset));
  if (tx.account) add("account", party(tx.account));
  if (tx.memo_public_key) add("memo key", hashText(tx.memo_public_key, 8));
  if (tx.loan_id) add("loan", link(`#/loan/${tx.loan_id}`, hashText(tx.loan_id, 8)));
  if (tx.lender) add("lender", party(tx.lender));
  if (tx.borrower) add("borrower", party(tx.borrower));
  if (tx.rate_bps !== undefined) add("rate", `${(tx.rate_bps / 100).toFixed(2)} % per period (${tx.rate_bps} bps)`);
  if (tx.period_blocks !== undefined) add("period", `every ${tx.period_blocks} blocks`);
  if (tx.maturity_height !== undefined) add("maturity", link(`#/block/${tx.maturity_height}`, `block ${tx.maturity_height}`));
  if (tx.purpose !== undefined) add("purpose", tx.purpose || "—");
  if (tx.period !== undefined) add("period no.", tx.period);
  if (tx.interest_commitment) add("interest", h("span", {}, hashText(tx.interest_commitment, 8), " ", hiddenAmount()));
  if (tx.proof_bytes !== undefined) add("range proofs", `${tx.proof_bytes.toLocaleString("en-US")} bytes`);
  return rows;
}

function txCard(tx, where) {
  const hasIo = tx.inputs !== undefined || tx.outputs !== undefined;
  return h("article", { class: "tx", "data-tx": tx.id },
    h("div", { class: "tx-head" }, kindBadge(tx.kind),
      link(`#/tx/${tx.id}`, h("span", { class: "tx-id" }, short(tx.id, 16))),
      where ? h("span", { class: "muted" }, where) : null),
    h("div", { class: "tx-meta" }, metaRows(tx)),
    hasIo
      ? h("div", { class: "io" },
        h("div", {}, h("h3", {}, `Inputs (${(tx.inputs || []).length})`),
          (tx.inputs || []).length
            ? h("ul", { class: "io-list" }, tx.inputs.map(inputItem))
            : h("div", { class: "io-empty" }, tx.kind && kindName(tx.kind) === "issue" ? "new deposit tokens" : "none")),
        h("div", {}, h("h3", {}, `Outputs (${(tx.outputs || []).length})`),
          h("ul", { class: "io-list" }, (tx.outputs || []).map(outputItem))))
      : null);
}

// --- block page ------------------------------------------------------------------------

function kv(rows) {
  return h("div", { class: "kv" }, rows.flatMap(([k, v]) => [h("div", { class: "k" }, k), h("div", { class: "v" }, v)]));
}

function signerBadges(certificate) {
  if (!certificate) return h("span", { class: "muted" }, "none (genesis)");
  return h("div", { class: "signers" }, certificate.commits.map((commit) => {
    const validator = state.network && state.network.validators[commit.sender];
    return h("span", { class: "badge ok", title: `signature ${short(commit.signature, 8)}` },
      validator ? validator.name : `validator ${commit.sender}`);
  }));
}

async function renderBlock(height) {
  setView(h("p", { class: "muted" }, `Loading block ${height}…`));
  const result = await getJson(`/v1/blocks/${height}`);
  if (!state.route || state.route.name !== "block" || state.route.arg !== String(height)) return;
  if (!result.ok) {
    setView(h("div", { class: "page-head" }, h("h1", {}, `Block ${height}`)), notice(errorText(result)));
    return;
  }
  const block = result.body;
  state.blocks.set(block.height, block);
  const header = block.header;
  const newer = state.height !== null && block.height < state.height;
  setView(
    h("div", { class: "page-head" },
      h("h1", { id: "block-title" }, `Block #${block.height.toLocaleString("en-US")}`),
      block.genesis ? h("span", { class: "badge" }, "genesis") : null,
      h("span", { class: "sub" }, `${block.txs.length} transaction${block.txs.length === 1 ? "" : "s"}`),
      h("span", { class: "pager push-right" },
        h("a", { class: "button", href: `#/block/${block.height - 1}`, "aria-disabled": block.height === 0 ? "true" : null }, "← older"),
        h("a", { class: "button", href: `#/block/${block.height + 1}`, "aria-disabled": newer ? null : "true" }, "newer →"))),
    h("section", { class: "panel" }, kv([
      ["hash", h("span", { class: "hash" }, block.hash)],
      ...(header ? [
        ["time", h("span", {}, new Date(header.timestamp_ms).toLocaleString(), " · ", agoCell(header.timestamp_ms))],
        ["proposer", party(header.proposer)],
        ["view", header.view],
        ["previous block", link(`#/block/${block.height - 1}`, h("span", { class: "hash" }, header.prev_hash))],
        ["state root", h("span", { class: "hash" }, header.state_root)],
        ["tx root", h("span", { class: "hash" }, header.tx_root)],
      ] : []),
      ["commit certificate", signerBadges(block.certificate)],
    ])),
    h("section", { class: "panel", id: "block-txs" },
      h("div", { class: "panel-head" }, h("h2", {}, "Transactions"),
        h("span", { class: "muted" }, "amounts are commitments: hidden from every node")),
      block.txs.length
        ? block.txs.map((tx, index) => txCard(tx, `index ${index}`))
        : h("div", { class: "empty" }, block.genesis ? "The genesis block holds the initial members, assets and validators." : "No transactions.")));
}

// --- tx page ---------------------------------------------------------------------------

async function renderTx(txId) {
  setView(h("p", { class: "muted" }, "Loading transaction…"));
  const result = await getJson(`/v1/txs/${txId}`);
  if (!state.route || state.route.name !== "tx" || state.route.arg !== txId) return;
  const head = h("div", { class: "page-head" }, h("h1", {}, "Transaction"),
    h("span", { class: "hash sub" }, txId));
  if (!result.ok) {
    setView(head, notice(errorText(result)));
    return;
  }
  const status = result.body;
  const badgeClass = { committed: "ok", pending: "warn", rejected: "bad" }[status.status] || "";
  const rows = [["status", h("span", { class: `badge ${badgeClass}`, id: "tx-status" }, status.status)]];
  if (status.height !== undefined && status.height !== null) {
    rows.push(["block", link(`#/block/${status.height}`, `#${status.height.toLocaleString("en-US")}`)]);
  }
  if (status.index !== undefined) rows.push(["index in block", status.index]);
  if (status.block_hash) rows.push(["block hash", h("span", { class: "hash" }, status.block_hash)]);
  if (status.reason) rows.push(["reason", h("span", { class: "mono" }, status.reason)]);
  if (status.status === "committed") rows.push(["certificate signers", signerBadges(status.certificate)]);
  let detail = null;
  if (status.status === "committed") {
    const block = await loadBlock(status.height);
    const tx = block && block.txs.find((candidate) => candidate.id === txId);
    if (tx) {
      detail = h("section", { class: "panel" },
        h("div", { class: "panel-head" }, h("h2", {}, "Contents"),
          h("span", { class: "muted" }, "public fields only")),
        txCard(tx, null));
    }
  }
  setView(head, h("section", { class: "panel" }, kv(rows)), detail);
}

// --- loan page -------------------------------------------------------------------------

async function renderLoan(loanId) {
  setView(h("p", { class: "muted" }, "Loading loan…"));
  const result = await getJson(`/v1/loans/${loanId}`);
  if (!state.route || state.route.name !== "loan" || state.route.arg !== loanId) return;
  const head = h("div", { class: "page-head" }, h("h1", {}, "Loan"), h("span", { class: "hash sub" }, loanId));
  const origin = h("p", {}, link(`#/tx/${loanId}`, "the originating transaction"));
  if (result.status !== 200) {
    setView(head, notice(result.status === 404 && result.body && result.body.error && result.body.error.code === "NOT_FOUND"
      ? "This node does not serve loan details."
      : errorText(result)), origin);
    return;
  }
  const loan = result.body;
  const statusBadge = h("span", { class: `badge ${loan.status === "active" ? "ok" : ""}`, id: "loan-status" }, loan.status);
  setView(head, h("section", { class: "panel" }, kv([
    ["status", h("span", {}, statusBadge, " ", loan.overdue ? h("span", { class: "badge bad" }, "overdue") : null)],
    ["lender", party(loan.lender)],
    ["borrower", party(loan.borrower)],
    ["asset", assetName(loan.asset)],
    ["rate", `${(loan.rate_bps / 100).toFixed(2)} % per period (${loan.rate_bps} bps)`],
    ["period", `every ${loan.period_blocks} blocks`],
    ["maturity", link(`#/block/${loan.maturity_height}`, `block ${loan.maturity_height}`)],
    ["purpose", loan.purpose || "—"],
    ["originated", link(`#/block/${loan.originated_height}`, `block ${loan.originated_height}`)],
    ...(loan.accrued_periods !== undefined ? [["periods accrued", loan.accrued_periods]] : []),
    ...(loan.closed_height ? [["closed", link(`#/block/${loan.closed_height}`, `block ${loan.closed_height}`)]] : []),
    ["principal", h("span", {}, hashText(loan.principal_commitment, 10), " ", hiddenAmount())],
    ["outstanding", h("span", {}, hashText(loan.outstanding_commitment, 10), " ", hiddenAmount())],
  ])), origin);
}

// --- routing ---------------------------------------------------------------------------

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (!parts.length) return { name: "overview" };
  if (parts[0] === "block" && /^\d+$/.test(parts[1] || "")) return { name: "block", arg: String(Number(parts[1])) };
  if (parts[0] === "tx" && /^[0-9a-f]{64}$/.test(parts[1] || "")) return { name: "tx", arg: parts[1] };
  if (parts[0] === "loan" && /^[0-9a-f]{64}$/.test(parts[1] || "")) return { name: "loan", arg: parts[1] };
  return { name: "missing" };
}

function route() {
  state.route = parseRoute();
  const { name, arg } = state.route;
  if (name === "overview") renderOverview();
  else if (name === "block") renderBlock(Number(arg));
  else if (name === "tx") renderTx(arg);
  else if (name === "loan") renderLoan(arg);
  else setView(h("div", { class: "page-head" }, h("h1", {}, "Not found")), notice("No such page."), h("p", {}, link("#/", "Back to the overview")));
}

function onSearch(event) {
  event.preventDefault();
  const input = document.getElementById("search-input");
  const query = input.value.trim().toLowerCase();
  if (/^\d+$/.test(query)) location.hash = `#/block/${Number(query)}`;
  else if (/^[0-9a-f]{64}([0-9a-f]{2})?$/.test(query)) location.hash = `#/tx/${query.slice(0, 64)}`;
  else {
    input.setCustomValidity("Enter a block height or a 64-hex tx id");
    input.reportValidity();
    setTimeout(() => input.setCustomValidity(""), 2000);
    return;
  }
  input.value = "";
}

async function start() {
  document.getElementById("search").addEventListener("submit", onSearch);
  window.addEventListener("hashchange", route);
  await Promise.all([loadNetwork(), loadChain()]);
  route();
  connectEvents();
  await pollNetwork();
  setInterval(pollNetwork, NETWORK_POLL_MS);
  setInterval(() => {
    for (const cell of document.querySelectorAll(".ago")) cell.textContent = ago(Number(cell.dataset.ts));
  }, 1000);
}

start();
