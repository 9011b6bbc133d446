// Helpers for every view: DATA (the view's JSON), VIEW (<main>), el(), svg(), colour scales.
const DATA = JSON.parse(document.getElementById("data").textContent);
const VIEW = document.getElementById("view");
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}
function heat(v, max) {            // 0..max -> white..blue
  const a = Math.max(0, Math.min(1, max > 0 ? v / max : 0));
  return `rgba(37, 99, 235, ${a.toFixed(3)})`;
}
function diverging(v) {            // -1..1 -> red..white..blue
  const a = Math.min(1, Math.abs(v));
  return v >= 0 ? `rgba(37, 99, 235, ${a.toFixed(3)})` : `rgba(220, 38, 38, ${a.toFixed(3)})`;
}
function ink(v, max) { return max > 0 && v / max > 0.6 ? "#fff" : "#1f2937"; }
function fmt(p) { return p.toFixed(3); }
const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function heatTable(rows, cols, values, max, title) {
  const t = el("table", {class: "heatmap"});
  const head = el("tr", {}, el("th", {}));
  cols.forEach(c => head.append(el("th", {class: "col tok", text: c})));
  t.append(head);
  values.forEach((row, i) => {
    const tr = el("tr", {}, el("th", {class: "tok", text: rows[i]}));
    row.forEach((v, j) => tr.append(el("td", {
      style: `background:${heat(v, max)}`, title: title(i, j, v)})));
    t.append(tr);
  });
  return t;
}
