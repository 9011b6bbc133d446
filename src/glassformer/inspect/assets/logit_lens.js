// Logit lens view (inspect/logit_lens.py): the top next token read after every layer.
const t = el("table", {class: "lens", id: "lens"});
const head = el("tr", {}, el("th", {text: "input →"}));
DATA.tokens.forEach(tok => head.append(el("th", {class: "tok", text: tok})));
t.append(head);
[...DATA.rows].reverse().forEach(row => {
  const tr = el("tr", {}, el("th", {text: row.layer}));
  row.cells.forEach((c, i) => {
    const [tok, p] = c.top[0];
    const hit = i + 1 < DATA.tokens.length && tok === DATA.tokens[i + 1];
    const tip = c.top.map(([t, q]) => `${t} ${fmt(q)}`).join("\n") +
      (c.next_prob !== undefined ? `\nnext token: p=${fmt(c.next_prob)}, rank ${c.next_rank}` : "");
    tr.append(el("td", {class: "tok" + (hit ? " hit" : ""), title: tip,
      style: `background:${heat(p, 1)};color:${ink(p, 1)}`, text: tok}));
  });
  t.append(tr);
});
const next = el("tr", {}, el("th", {text: "actual next"}));
DATA.tokens.forEach((_, i) => next.append(el("td", {class: "tok",
  text: i + 1 < DATA.tokens.length ? DATA.tokens[i + 1] : "?"})));
t.append(next);
VIEW.append(t);
