// Next-token view (inspect/next_token.py): candidates, and live temperature/top-k/top-p.
VIEW.append(el("p", {}, "Text ends with ", el("span", {class: "tok", text: DATA.context}),
  `; vocabulary: ${DATA.vocab_size} tokens.`));
const t = el("table", {id: "candidates"});
const head = el("tr", {}, el("th", {text: "token"}), el("th", {text: "id"}),
  el("th", {text: "logit"}));
DATA.settings.forEach(s => head.append(el("th", {text: s.name})));
t.append(head);
DATA.candidates.forEach(c => {
  const tr = el("tr", {}, el("td", {class: "tok", text: c.token}), el("td", {text: c.id}),
    el("td", {text: c.logit.toFixed(2)}));
  c.probs.forEach(p => tr.append(el("td", {style: `background:${heat(p, 1)};color:${ink(p, 1)}`,
    text: fmt(p)})));
  t.append(tr);
});
VIEW.append(t, el("h2", {text: "Try it: reshape the distribution"}));
const T = el("input", {type: "range", id: "temperature", min: "0.05", max: "3", step: "0.05",
  value: "1"});
const K = el("input", {type: "number", id: "top-k", min: "0",
  max: String(DATA.slider_tokens.length), value: "0"});
const P = el("input", {type: "range", id: "top-p", min: "0.05", max: "1", step: "0.01",
  value: "1"});
const out = el("span");
VIEW.append(el("div", {class: "controls"}, el("label", {}, "temperature", T),
  el("label", {}, "top-k (0: off)", K), el("label", {}, "top-p", P), out));
const bars = el("table", {id: "live"});
VIEW.append(bars);
if (DATA.vocab_size > DATA.slider_tokens.length) VIEW.append(el("p", {class: "explain",
  text: `The live bars use the ${DATA.slider_tokens.length} most likely tokens; the table ` +
  "above is exact over the whole vocabulary."}));
function live() {
  const temp = +T.value, k = +K.value, p = +P.value;
  out.textContent = `T=${temp}, top-k=${k || "off"}, top-p=${p}`;
  let x = DATA.slider_logits.map(v => v / temp);          // already sorted, most likely first
  if (k > 0) x = x.map((v, i) => i < k ? v : -Infinity);
  const m = Math.max(...x);
  let e = x.map(v => Math.exp(v - m)), z = e.reduce((a, b) => a + b, 0);
  let probs = e.map(v => v / z), before = 0;
  probs = probs.map(q => { const keep = before < p; before += q; return keep ? q : 0; });
  z = probs.reduce((a, b) => a + b, 0);
  probs = probs.map(q => q / z);
  bars.textContent = "";
  probs.slice(0, 15).forEach((q, i) => bars.append(el("tr", {},
    el("td", {class: "tok", text: DATA.slider_tokens[i]}),
    el("td", {style: "width:320px;text-align:left"}, el("div", {class: "bar",
      style: `width:${(q * 100).toFixed(1)}%`})), el("td", {text: fmt(q)}))));
}
[T, K, P].forEach(i => i.addEventListener("input", live));
live();
