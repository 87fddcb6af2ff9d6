// Staff order search page. Talks only to this server's /search/orders and
// /search/orders/{id} with the token from sign-in (sessionStorage of this tab).
// No framework, no build step. Everything the API returns is inserted as text;
// highlight fragments (escaped HTML with <mark>) are parsed into text and
// <mark> nodes, never assigned as HTML.
"use strict";

const TOKEN_KEY = "order-search-token";
const PAGE_SIZE = 25;
const DEBOUNCE_MS = 200;
const FACETS = [
  { key: "status", label: "Status", param: "status" },
  { key: "country", label: "Ship to", param: "country" },
  { key: "currency", label: "Currency", param: "currency" },
  { key: "total_range", label: "Total", param: null },
  { key: "created_month", label: "Month", param: null },
];
const MULTI = ["status", "country", "currency"];
const SINGLE = ["q", "sort", "total_min", "total_max", "created_from", "created_to"];

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};

// ---- state: the search lives in the URL ----------------------------------

function stateFromURL() {
  const params = new URLSearchParams(location.search);
  const state = {};
  for (const name of SINGLE) state[name] = params.get(name) || "";
  for (const name of MULTI) state[name] = params.getAll(name).flatMap((v) => v.split(",")).filter(Boolean);
  state.order = params.get("order") || "";
  return state;
}

function queryString(state, { withOrder = true } = {}) {
  const params = new URLSearchParams();
  for (const name of SINGLE) if (state[name]) params.set(name, state[name]);
  for (const name of MULTI) for (const value of state[name]) params.append(name, value);
  if (withOrder && state.order) params.set("order", state.order);
  return params.toString();
}

let state = stateFromURL();

function commit(next, { replace = false } = {}) {
  state = next;
  const qs = queryString(state);
  const url = location.pathname + (qs ? "?" + qs : "");
  if (url !== location.pathname + location.search) history[replace ? "replaceState" : "pushState"](null, "", url);
}

// ---- API -----------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path, signal) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Unauthorized("signed out");
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token, Accept: "application/json" }, signal });
  if (response.status === 401) throw new Unauthorized("expired");
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const error = new Error((body && (body.detail || body.title)) || "HTTP " + response.status);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---- search with stale-answer protection ------------------------------------

let generation = 0;          // bumps on every new search; older answers are dropped
let controller = null;       // aborts the request of an older search
let nextCursor = null;
let loadingMore = false;
let shownIDs = new Set();

async function runSearch() {
  const mine = ++generation;
  controller?.abort();
  controller = new AbortController();
  nextCursor = null;
  loadingMore = false;
  setStatus("Searching…", "loading");
  $("summary").textContent = "";
  try {
    const result = await api("/search/orders?" + queryString(state, { withOrder: false }) + "&size=" + PAGE_SIZE, controller.signal);
    if (mine !== generation) return;
    shownIDs = new Set();
    $("hits").replaceChildren();
    renderFacets(result.facets);
    renderChart(result.facets.created_month);
    appendHits(result.hits);
    nextCursor = result.next_cursor;
    $("end").hidden = nextCursor !== null || result.hits.length === 0;
    renderSummary(result);
    if (result.hits.length === 0) setStatus(emptyMessage(), "empty"); else setStatus(null);
  } catch (error) {
    if (mine !== generation || error.name === "AbortError") return;
    handleError(error);
  }
}

async function loadMore() {
  if (!nextCursor || loadingMore) return;
  const mine = generation;
  loadingMore = true;
  const cursor = nextCursor;
  try {
    const path = "/search/orders?" + queryString(state, { withOrder: false }) + "&size=" + PAGE_SIZE + "&cursor=" + encodeURIComponent(cursor);
    const result = await api(path, controller?.signal);
    if (mine !== generation) return;
    appendHits(result.hits);
    nextCursor = result.next_cursor;
    $("end").hidden = nextCursor !== null;
  } catch (error) {
    if (mine !== generation || error.name === "AbortError") return;
    handleError(error);
  } finally {
    if (mine === generation) loadingMore = false;
  }
  if (mine === generation && nextCursor && sentinelVisible) loadMore();
}

function handleError(error) {
  if (error instanceof Unauthorized) return signOut("Your session has expired or the token was refused. Paste a new token.");
  setStatus("The search failed: " + error.message + (error.status >= 500 ? " Try again in a moment." : ""), "error");
}

function emptyMessage() {
  return state.q ? `No orders match “${state.q}” with these filters.` : "No orders match these filters.";
}

function setStatus(text, kind) {
  const node = $("status");
  node.hidden = !text;
  node.textContent = text || "";
  node.className = "status" + (kind ? " " + kind : "");
  $("results").setAttribute("aria-busy", kind === "loading" ? "true" : "false");
}

// ---- rendering ------------------------------------------------------------

/** Escaped-HTML highlight fragment → text and <mark> nodes (no HTML parsing). */
function highlightNodes(fragment) {
  const out = [];
  const parts = String(fragment).split(/(<mark>|<\/mark>)/);
  let marked = false;
  for (const part of parts) {
    if (part === "<mark>") { marked = true; continue; }
    if (part === "</mark>") { marked = false; continue; }
    if (!part) continue;
    const text = decodeEntities(part);
    out.push(marked ? el("mark", {}, text) : document.createTextNode(text));
  }
  return out;
}

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, code) => {
    switch (code) {
      case "lt": return "<"; case "gt": return ">"; case "amp": return "&"; case "quot": return '"'; case "apos": return "'";
    }
    const n = code[1] === "x" ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10);
    return Number.isFinite(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : "";
  });
}

function highlighted(hit, field, fallback) {
  const fragments = hit.highlight && hit.highlight[field];
  return fragments && fragments.length ? highlightNodes(fragments[0]) : [document.createTextNode(fallback ?? "")];
}

const money = (amount, currency) => `${amount} ${currency}`;
const dateText = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "—");

function appendHits(hits) {
  const list = $("hits");
  for (const hit of hits) {
    if (shownIDs.has(hit.id)) continue;
    shownIDs.add(hit.id);
    const extra = [];
    for (const field of ["items.name", "items.sku", "shipping_city", "note", "tracking_number"]) {
      if (hit.highlight && hit.highlight[field]) extra.push(el("span", {}, field.replace("items.", "item ") + ": ", ...highlightNodes(hit.highlight[field][0]), "  "));
    }
    const item = el("li", { class: "hit", tabindex: "0", role: "button", "data-id": hit.id, "aria-label": `Order ${hit.id}, ${hit.customer.name}` },
      el("div", { class: "who" }, ...highlighted(hit, "customer.name", hit.customer.name), " ", el("span", { class: "pill " + hit.status }, hit.status)),
      el("div", { class: "money" }, money(hit.total, hit.currency)),
      el("div", { class: "email" }, ...highlighted(hit, "customer.email", hit.customer.email)),
      el("div", { class: "when" }, dateText(hit.created_at)),
      el("div", { class: "id" }, hit.id),
      extra.length ? el("div", { class: "matches" }, ...extra) : null);
    item.addEventListener("click", () => openOrder(hit.id));
    item.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); openOrder(hit.id); } });
    list.append(item);
  }
  $("summary").dataset.shown = String(shownIDs.size);
}

function renderSummary(result) {
  const total = result.total.toLocaleString();
  $("summary").textContent = `${total}${result.total_exact ? "" : "+"} order${result.total === 1 ? "" : "s"}` + (state.q ? ` for “${state.q}”` : "");
}

function facetValueLabel(key, bucket) {
  if (key === "total_range") return bucket.to === null ? `${bucket.from} and more` : `${bucket.from} – ${bucket.to}`;
  if (key === "created_month") {
    const [y, m] = bucket.value.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString(undefined, { year: "numeric", month: "short", timeZone: "UTC" });
  }
  return bucket.value;
}

function isSelected(key, bucket) {
  if (MULTI.includes(key)) return state[key].includes(bucket.value);
  if (key === "total_range") return state.total_min === bucket.from && state.total_max === (bucket.to === null ? "" : bucketMax(bucket.to));
  if (key === "created_month") return state.created_from === bucket.value + "-01" && state.created_to === nextMonth(bucket.value);
  return false;
}

// total_max is inclusive: the bucket 50–100 means up to 99.99.
const bucketMax = (to) => (Number(to) - 0.01).toFixed(2);
function nextMonth(month) {
  const [y, m] = month.split("-").map(Number);
  return m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, "0")}-01`;
}

function toggleFacet(key, bucket) {
  const next = structuredClone(state);
  if (MULTI.includes(key)) {
    next[key] = next[key].includes(bucket.value) ? next[key].filter((v) => v !== bucket.value) : [...next[key], bucket.value];
  } else if (key === "total_range") {
    const on = isSelected(key, bucket);
    next.total_min = on ? "" : bucket.from;
    next.total_max = on ? "" : bucket.to === null ? "" : bucketMax(bucket.to);
  } else if (key === "created_month") {
    const on = isSelected(key, bucket);
    next.created_from = on ? "" : bucket.value + "-01";
    next.created_to = on ? "" : nextMonth(bucket.value);
  }
  next.order = "";
  commit(next);
  syncInputs();
  runSearch();
}

function renderFacets(facets) {
  const box = $("facets");
  const focusedID = document.activeElement && box.contains(document.activeElement) ? document.activeElement.id : null;
  box.replaceChildren();
  for (const facet of FACETS) {
    const buckets = [...(facets[facet.key] || [])];
    // Keep selected values visible even when the other filters leave them at zero.
    if (MULTI.includes(facet.key)) for (const value of state[facet.key]) if (!buckets.some((b) => b.value === value)) buckets.push({ value, count: 0 });
    const fieldset = el("fieldset", { class: "facet", "data-facet": facet.key }, el("legend", {}, facet.label));
    if (buckets.length === 0) fieldset.append(el("div", { class: "none" }, "none"));
    buckets.forEach((bucket, i) => {
      const id = `facet-${facet.key}-${i}`;
      const box = el("input", { type: "checkbox", id, "data-value": bucket.value });
      box.checked = isSelected(facet.key, bucket);
      box.addEventListener("change", () => toggleFacet(facet.key, bucket));
      fieldset.append(el("label", { for: id }, box, facetValueLabel(facet.key, bucket), el("span", { class: "count" }, String(bucket.count))));
    });
    box.append(fieldset);
  }
  if (focusedID && $(focusedID)) $(focusedID).focus();
  const active = MULTI.reduce((n, k) => n + state[k].length, 0) + ["total_min", "total_max", "created_from", "created_to"].filter((k) => state[k]).length;
  $("active-count").hidden = active === 0;
  $("active-count").textContent = String(active);
}

function renderChart(months) {
  const figure = $("chart");
  figure.hidden = !months || months.length === 0;
  if (figure.hidden) return;
  const ns = "http://www.w3.org/2000/svg";
  const width = 600, height = 90, bottom = 14, max = Math.max(...months.map((m) => m.count));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Orders per month: " + months.map((m) => `${m.value} ${m.count}`).join(", "));
  const slot = width / months.length;
  months.forEach((month, i) => {
    const h = Math.max(1, Math.round((height - bottom - 4) * month.count / max));
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(i * slot + slot * 0.15));
    rect.setAttribute("y", String(height - bottom - h));
    rect.setAttribute("width", String(slot * 0.7));
    rect.setAttribute("height", String(h));
    rect.setAttribute("data-month", month.value);
    rect.setAttribute("data-count", String(month.count));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${month.value}: ${month.count}`;
    rect.append(title);
    svg.append(rect);
    if (months.length <= 12 || i % Math.ceil(months.length / 12) === 0) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", String(i * slot + slot / 2));
      label.setAttribute("y", String(height - 2));
      label.setAttribute("text-anchor", "middle");
      label.textContent = month.value.slice(2);
      svg.append(label);
    }
  });
  $("chart-svg").replaceChildren(svg);
}

// ---- order panel ------------------------------------------------------------

let panelReturnFocus = null;
let panelGeneration = 0;

async function openOrder(id, { push = true } = {}) {
  if (push && state.order !== id) commit({ ...state, order: id });
  panelReturnFocus = document.activeElement;
  const mine = ++panelGeneration;
  $("panel-title").textContent = "Order " + id;
  $("panel-body").replaceChildren(el("p", { class: "status loading" }, "Loading…"));
  $("panel").hidden = false;
  $("panel-backdrop").hidden = false;
  $("panel").focus();
  try {
    const order = await api("/search/orders/" + encodeURIComponent(id));
    if (mine !== panelGeneration) return;
    $("panel-body").replaceChildren(orderDetails(order));
  } catch (error) {
    if (mine !== panelGeneration) return;
    if (error instanceof Unauthorized) return handleError(error);
    $("panel-body").replaceChildren(el("p", { class: "status error" },
      error.status === 404 ? "This order is not in the search index (yet)." : "Could not load the order: " + error.message));
  }
}

function orderDetails(order) {
  const rows = [["Status", el("span", { class: "pill " + order.status }, order.status)], ["Total", money(order.total, order.currency)],
    ["Customer", `${order.customer.name}`], ["E-mail", order.customer.email], ["Customer id", order.customer.id],
    ["Ship to", `${order.shipping_city}, ${order.shipping_country}`], ["Created", dateText(order.created_at)],
    ["Last change", dateText(order.updated_at)], ["Version", String(order.version)]];
  const dl = el("dl", {});
  for (const [name, value] of rows) dl.append(el("dt", {}, name), el("dd", {}, value));
  const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "SKU"), el("th", {}, "Item"), el("th", { class: "num" }, "Qty"),
    el("th", { class: "num" }, "Price"))));
  const body = el("tbody", {});
  for (const item of order.items) {
    body.append(el("tr", {}, el("td", {}, item.sku), el("td", {}, item.name), el("td", { class: "num" }, String(item.quantity)),
      el("td", { class: "num" }, item.unit_price)));
  }
  table.append(body);
  return el("div", {}, dl, el("h3", {}, `${order.item_count} line${order.item_count === 1 ? "" : "s"}`), table);
}

function closePanel({ push = true } = {}) {
  if ($("panel").hidden) return;
  panelGeneration++;
  $("panel").hidden = true;
  $("panel-backdrop").hidden = true;
  if (push && state.order) commit({ ...state, order: "" });
  const back = panelReturnFocus && document.contains(panelReturnFocus) ? panelReturnFocus : $("q");
  back.focus();
}

// ---- sign-in ----------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  generation++;
  controller?.abort();
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-message").hidden = !message;
  $("signin-message").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  syncInputs();
  runSearch();
  if (state.order) openOrder(state.order, { push: false });
}

// ---- inputs ----------------------------------------------------------------

function syncInputs() {
  for (const name of SINGLE) if ($(name)) $(name).value = state[name];
}

let debounce = null;
function onInputChange(name, value, { immediate = false } = {}) {
  const next = { ...state, [name]: value, order: "" };
  clearTimeout(debounce);
  const go = () => {
    // Typing replaces the history entry; a pause or an explicit change adds one.
    commit(next, { replace: name === "q" && !immediate });
    runSearch();
  };
  if (immediate) go(); else { state = next; debounce = setTimeout(go, DEBOUNCE_MS); }
}

let sentinelVisible = false;

function wire() {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    showApp();
  });
  $("signout").addEventListener("click", () => signOut("Signed out."));
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); onInputChange("q", $("q").value, { immediate: true }); });
  $("q").addEventListener("input", () => onInputChange("q", $("q").value));
  $("sort").addEventListener("change", () => onInputChange("sort", $("sort").value, { immediate: true }));
  for (const name of ["total_min", "total_max", "created_from", "created_to"]) {
    $(name).addEventListener("change", () => {
      if ($(name).validity.valid) onInputChange(name, $(name).value, { immediate: true });
    });
  }
  $("clear").addEventListener("click", () => {
    commit({ ...state, total_min: "", total_max: "", created_from: "", created_to: "", status: [], country: [], currency: [], order: "" });
    syncInputs();
    runSearch();
  });
  $("panel-close").addEventListener("click", () => closePanel());
  $("panel-backdrop").addEventListener("click", () => closePanel());
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
    if (event.key === "/" && !typing && !$("app").hidden) { event.preventDefault(); $("q").focus(); $("q").select(); }
    if (event.key === "Escape" && !$("panel").hidden) { event.preventDefault(); closePanel(); }
  });
  window.addEventListener("popstate", () => {
    const before = queryString(state, { withOrder: false });
    state = stateFromURL();
    syncInputs();
    if (queryString(state, { withOrder: false }) !== before) runSearch();
    if (state.order) openOrder(state.order, { push: false }); else closePanel({ push: false });
  });
  new IntersectionObserver((entries) => {
    sentinelVisible = entries.some((entry) => entry.isIntersecting);
    if (sentinelVisible) loadMore();
  }, { rootMargin: "400px" }).observe($("sentinel"));
  if (window.matchMedia("(max-width: 760px)").matches) $("filters-box").open = false;
}

wire();
if (sessionStorage.getItem(TOKEN_KEY)) showApp(); else signOut(null);
