// The search page: calls only the public API (/metadata, /search, /feedback) of the server it
// was loaded from. An API key, when the server asks for one, lives in this variable only.
"use strict";
let apiKey = null;

const $ = (id) => document.getElementById(id);
const EVENTS = [["click", "click"], ["add_to_cart", "add to cart"], ["purchase", "purchase"]];

function headers() {
  const h = { "content-type": "application/json" };
  if (apiKey) h["x-api-key"] = apiKey;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body && JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) {
    $("key-form").hidden = false;
    $("api-key").focus();
  }
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function text(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = content;
  return node;
}

function money(value) {
  return value == null ? "price unknown" : `$${Number(value).toFixed(2)}`;
}

function bar(label, value) {
  const row = document.createElement("div");
  row.className = "bar";
  row.dataset.task = label;
  const track = document.createElement("div");
  track.className = "track";
  const fill = document.createElement("div");
  fill.className = "fill";
  fill.style.width = `${Math.round(value * 100)}%`;
  track.appendChild(fill);
  row.append(text("span", "label", label.replaceAll("_", " ")), track, text("span", "value", value.toFixed(3)));
  return row;
}

function card(result, requestId) {
  const item = document.createElement("li");
  item.className = "card";
  item.dataset.id = result.id;
  item.dataset.rank = result.rank;
  item.append(text("div", "title", result.title));
  item.append(text("div", "sub", [result.brand, result.category].filter(Boolean).join(" · ")));
  const rating = result.rating == null ? "no rating" : `rating ${Number(result.rating).toFixed(1)}`;
  item.append(text("div", "facts", `${money(result.price)} · ${rating}`));
  item.append(text("div", "ranks", `model #${result.rank} · BM25 #${result.retrieval_rank} · id ${result.id}`));
  const bars = document.createElement("div");
  bars.className = "bars";
  for (const [key, value] of Object.entries(result)) {
    if (key.startsWith("p_")) bars.appendChild(bar(key.slice(2), value));
  }
  const actions = document.createElement("div");
  actions.className = "actions";
  for (const [event, label] of EVENTS) {
    const button = text("button", "", label);
    button.type = "button";
    button.dataset.event = event;
    button.addEventListener("click", () => feedback(requestId, result.id, event, actions));
    actions.appendChild(button);
  }
  bars.appendChild(actions);
  item.appendChild(bars);
  return item;
}

function retrievedRow(product) {
  const item = document.createElement("li");
  item.className = "retrieved";
  item.dataset.id = product.id;
  item.append(text("span", "", `#${product.retrieval_rank} ${product.title} `),
              text("span", "moved", `(model #${product.model_rank}, BM25 ${product.retrieval_score.toFixed(2)})`));
  return item;
}

async function feedback(requestId, productId, event, actions) {
  try {
    const answer = await call("POST", "/feedback", { request_id: requestId, product_id: productId, event });
    actions.querySelectorAll(".sent").forEach((node) => node.remove());
    actions.appendChild(text("span", "sent", `${event.replaceAll("_", " ")} recorded (position ${answer.position})`));
  } catch (err) {
    status(`feedback not recorded: ${err.message}`, true);
  }
}

function render(answer) {
  $("results").replaceChildren(...answer.results.map((r) => card(r, answer.request_id)));
  $("results").dataset.requestId = answer.request_id;
  $("retrieval").replaceChildren(...answer.retrieval.map(retrievedRow));
  $("server-time").textContent =
    `server ${answer.server_ms.toFixed(1)} ms (retrieval ${answer.retrieval_ms.toFixed(1)} ms)`;
  $("model").textContent = answer.model_version;
  status(answer.results.length
    ? `${answer.results.length} of ${answer.candidates} candidates`
    : "no product shares a word with this query");
}

async function search(event) {
  event.preventDefault();
  const body = { query: $("query").value, k: Number($("k").value) || 10 };
  if ($("n").value) body.n = Number($("n").value);
  status("searching…");
  try {
    render(await call("POST", "/search", body));
  } catch (err) {
    status(err.message, true);
  }
}

async function useKey(event) {
  event.preventDefault();
  apiKey = $("api-key").value.trim() || null;
  $("api-key").value = "";
  try {
    const meta = await call("GET", "/metadata");
    $("key-form").hidden = true;
    $("model").textContent = meta.model_tag;
    status("key accepted");
  } catch (err) {
    status(err.message, true);
  }
}

$("search-form").addEventListener("submit", search);
$("key-form").addEventListener("submit", useKey);
$("show-retrieval").addEventListener("change", (e) => { $("retrieval-order").hidden = !e.target.checked; });
call("GET", "/metadata")
  .then((meta) => { $("model").textContent = meta.model_tag; })
  .catch((err) => status(err.message, !apiKey && $("key-form").hidden));
