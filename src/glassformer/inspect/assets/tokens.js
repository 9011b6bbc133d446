// Token view (inspect/tokens.py): each piece of the text with its id.
VIEW.append(el("p", {text: `${DATA.tokenizer}, vocabulary ${DATA.vocab_size}: ` +
  `${DATA.chars} characters → ${DATA.tokens.length} tokens ` +
  `(${(DATA.chars / DATA.tokens.length).toFixed(2)} characters per token).`}));
const box = el("div", {id: "tokens"});
DATA.tokens.forEach((t, i) => box.append(el("span", {class: "chip tok", title: `id ${t.id}`,
  style: `background:hsl(${(i * 47) % 360}, 80%, 92%)`}, t.label,
  el("span", {class: "id", text: t.id}))));
VIEW.append(box, el("h2", {text: "Ids"}), el("p", {class: "tok", id: "ids",
  text: "[" + DATA.tokens.map(t => t.id).join(", ") + "]"}));
