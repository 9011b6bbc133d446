// Neuron view (inspect/neurons.py): one MLP neuron's top contexts and top tokens.
VIEW.append(el("p", {text: `Scanned ${DATA.scanned_tokens} tokens; layer ${DATA.layer} has ` +
  `${DATA.hidden} neurons; the peak activation of neuron ${DATA.neuron} is ` +
  `${DATA.max_activation.toFixed(3)}.`}), el("h2", {text: "Top contexts"}));
const box = el("div", {id: "contexts"});
DATA.contexts.forEach(c => {
  const line = el("div", {class: "ctx tok"}, el("b", {text: c.activation.toFixed(2) + "  "}));
  c.tokens.forEach((tok, i) => line.append(el("span", {class: i === c.focus ? "focus" : "",
    title: `${tok}: ${c.acts[i].toFixed(3)}`,
    style: `background:${heat(c.acts[i], DATA.max_activation)}`, text: tok})));
  box.append(line);
});
VIEW.append(box, el("h2", {text: "Tokens with the highest mean activation"}));
const t = el("table", {id: "top-tokens"}, el("tr", {}, el("th", {text: "token"}),
  el("th", {text: "mean activation"}), el("th", {text: "count"})));
DATA.top_tokens.forEach(([tok, m, n]) => t.append(el("tr", {},
  el("td", {class: "tok", text: tok}), el("td", {text: m.toFixed(3)}), el("td", {text: n}))));
VIEW.append(t);
