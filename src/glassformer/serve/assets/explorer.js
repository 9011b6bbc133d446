// The live explorer (explorer.html): every view is data from this server's JSON endpoints.
//
//   GET  /v1/inspect                     the model: layers, heads, strategies
//   POST /v1/inspect {view, text, ...}   tokens, next_token, attention, logit_lens
//   POST /v1/completions {stream: true}  the generate button (server-sent events)
//
// Typing refreshes the tokens, the next-token bars and the attention map (after a short
// pause); only the newest answer is drawn when several requests overlap.

"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, version: 0, attention: null, query: null, controller: null };

// ---- talking to the server --------------------------------------------------------------

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value;
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) $("key-box").hidden = false;
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText);
  return data;
}

const inspect = (view, extra) => call("POST", "/v1/inspect", { view, text: $("text").value, ...extra });

function status(message) {
  $("status").textContent = message;
}

function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- tokens -------------------------------------------------------------------------------

function tokenChip(label, note, title) {
  const chip = element("span", "tok", label);
  chip.append(element("small", "", note));
  chip.title = title;
  return chip;
}

function drawTokens(data) {
  const box = $("tokens");
  box.replaceChildren(
    ...data.tokens.map((t) => tokenChip(t.label, String(t.id), `id ${t.id} · bytes ${t.bytes}`)),
  );
  box.dataset.count = data.tokens.length;
  status(`${data.tokens.length} tokens, ${data.chars} characters (${data.tokenizer}, ` +
    `vocabulary ${data.vocab_size})`);
}

// ---- next token ---------------------------------------------------------------------------

async function refreshNextToken(version) {
  const temperature = Number($("temperature").value);
  const data = await inspect("next_token", { temperature, top: Number($("top").value) });
  if (version !== state.version) return;
  const bars = data.candidates.map((c) => {
    const p = c.probs[1]; // the column at the chosen temperature
    const bar = element("div", "bar");
    const fill = element("div", "fill");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    const track = element("div");
    track.append(fill);
    bar.append(element("span", "label", c.token), track, element("span", "value", p.toFixed(4)));
    bar.title = `id ${c.id} · logit ${c.logit}`;
    return bar;
  });
  $("next-token").replaceChildren(...bars);
}

// ---- attention ----------------------------------------------------------------------------

async function refreshAttention(version) {
  const layer = Number($("layer").value);
  const head = Number($("head").value);
  const data = await inspect("attention", { layer, head });
  if (version !== state.version) return;
  const map = data.maps[0];
  state.attention = { tokens: map.queries, pattern: map.heads[0] };
  if (state.query === null || state.query >= map.queries.length) state.query = map.queries.length - 1;
  const canvas = $("heatmap");
  canvas.dataset.layer = layer;
  canvas.dataset.head = head;
  drawHeatmap();
  drawQuery();
}

function drawHeatmap() {
  const { pattern } = state.attention;
  const canvas = $("heatmap");
  const ctx = canvas.getContext("2d");
  const T = pattern.length;
  const cell = canvas.width / T;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      ctx.fillStyle = `rgba(59, 125, 221, ${pattern[i][j]})`;
      ctx.fillRect(j * cell, i * cell, Math.ceil(cell), Math.ceil(cell));
    }
  }
  ctx.strokeStyle = "#d9480f";
  ctx.strokeRect(0, state.query * cell, canvas.width, cell);
}

function drawQuery() {
  const { tokens, pattern } = state.attention;
  const row = pattern[state.query];
  const chips = tokens.map((label, j) => {
    const chip = tokenChip(label, j <= state.query ? row[j].toFixed(2) : "", `key ${j}`);
    chip.style.background = `rgba(59, 125, 221, ${row[j]})`;
    if (j === state.query) chip.classList.add("query");
    chip.addEventListener("click", () => {
      state.query = j;
      drawHeatmap();
      drawQuery();
    });
    return chip;
  });
  $("attn-tokens").replaceChildren(...chips);
}

$("heatmap").addEventListener("click", (event) => {
  if (!state.attention) return;
  const canvas = $("heatmap");
  const box = canvas.getBoundingClientRect();
  const T = state.attention.pattern.length;
  state.query = Math.min(T - 1, Math.floor(((event.clientY - box.top) / box.height) * T));
  drawHeatmap();
  drawQuery();
});

// ---- logit lens ---------------------------------------------------------------------------

async function runLens() {
  if (!$("text").value) return;
  const data = await inspect("logit_lens", { top: 3 });
  const table = element("table");
  const head = element("tr");
  head.append(element("th", "", "layer \\ token"), ...data.tokens.map((t) => element("th", "", t)));
  table.append(head);
  for (const row of data.rows) {
    const tr = element("tr");
    tr.append(element("th", "", row.layer));
    row.cells.forEach((cell, t) => {
      const [token, p] = cell.top[0];
      const td = element("td", "", `${token}\n${p.toFixed(2)}`);
      td.style.background = `rgba(47, 158, 68, ${p})`;
      td.title = cell.top.map(([tok, q]) => `${tok} ${q}`).join("\n") +
        (cell.next_rank ? `\nthe real next token: rank ${cell.next_rank}, p ${cell.next_prob}` : "");
      if (t + 1 < data.tokens.length && token === data.tokens[t + 1]) td.classList.add("right");
      tr.append(td);
    });
    table.append(tr);
  }
  $("lens").replaceChildren(table);
}

// ---- generate -----------------------------------------------------------------------------

function generationRequest() {
  const number = (id) => Number($(id).value);
  const body = {
    prompt: $("text").value,
    stream: true,
    strategy: $("strategy").value,
    max_tokens: number("max-tokens"),
    temperature: number("gen-temperature"),
    top_k: number("top-k"),
    top_p: number("top-p"),
    num_beams: number("num-beams"),
    penalty_alpha: number("penalty-alpha"),
  };
  if ($("seed").value !== "") body.seed = number("seed");
  return body;
}

async function generate() {
  const controller = new AbortController();
  state.controller = controller;
  $("generate").disabled = true;
  $("stop").disabled = false;
  $("output-prompt").textContent = $("text").value;
  $("output-text").textContent = "";
  $("finish").textContent = "generating…";
  try {
    const response = await fetch("/v1/completions", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify(generationRequest()),
      signal: controller.signal,
    });
    if (!response.ok) {
      const data = await response.json();
      throw new Error(data.error.message);
    }
    await readEvents(response.body.getReader());
  } catch (error) {
    $("finish").textContent = error.name === "AbortError" ? "stopped" : `error: ${error.message}`;
  } finally {
    $("generate").disabled = false;
    $("stop").disabled = true;
  }
}

async function readEvents(reader) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const line of lines) {
      if (!line.startsWith("data: ")) continue; // blank lines, ": ping" comments
      const data = line.slice(6);
      if (data === "[DONE]") {
        $("finish").dataset.done = "true";
        return;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices[0];
      $("output-text").textContent += choice.text;
      if (choice.finish_reason) $("finish").textContent = `finish_reason: ${choice.finish_reason}`;
    }
  }
}

// ---- wiring -------------------------------------------------------------------------------

async function refresh() {
  const version = ++state.version;
  if (!$("text").value) {
    for (const id of ["tokens", "next-token", "attn-tokens"]) $(id).replaceChildren();
    status("");
    return;
  }
  try {
    const tokens = await inspect("tokens");
    if (version !== state.version) return;
    drawTokens(tokens);
    await refreshNextToken(version);
    await refreshAttention(version);
  } catch (error) {
    if (version === state.version) status(`error: ${error.message}`);
  }
}

function guarded(fn) {
  return () => fn(state.version).catch((error) => status(`error: ${error.message}`));
}

function options(select, values, titles) {
  select.replaceChildren(...values.map((v, i) => {
    const option = element("option", "", String(v));
    option.value = v;
    if (titles) option.title = titles[i];
    return option;
  }));
}

async function start() {
  try {
    state.info = await call("GET", "/v1/inspect");
  } catch (error) {
    $("model").textContent = `error: ${error.message}`;
    return;
  }
  const info = state.info;
  $("model").textContent = `${info.model}: ${info.n_layer} layers × ${info.n_head} heads, ` +
    `context ${info.context}, vocabulary ${info.vocab_size}`;
  options($("layer"), [...Array(info.n_layer).keys()]);
  options($("head"), [...Array(info.n_head).keys()]);
  const names = Object.keys(info.strategies);
  options($("strategy"), names, names.map((n) => info.strategies[n]));
  $("strategy").value = names.includes("sample") ? "sample" : names[0];
  $("text").addEventListener("input", debounce(refresh, 250));
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = $("temperature").value;
  });
  $("temperature").addEventListener("input", debounce(guarded(refreshNextToken), 150));
  $("top").addEventListener("change", guarded(refreshNextToken));
  $("layer").addEventListener("change", guarded(refreshAttention));
  $("head").addEventListener("change", guarded(refreshAttention));
  $("lens-run").addEventListener("click", () => runLens().catch((e) => status(`error: ${e.message}`)));
  $("generate").addEventListener("click", generate);
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  document.body.dataset.ready = "true";
  if ($("text").value) refresh();
}

start();
