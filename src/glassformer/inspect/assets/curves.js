// Training curves view (inspect/curves.py): loss, learning rate, throughput by step.
VIEW.append(el("p", {text: `${DATA.source}: ${DATA.steps} steps.`}));
const colors = {train_loss: "rgb(37, 99, 235)", val_loss: "#dc2626", lr: "#059669",
  tokens_per_s: "#7c3aed"};
function chart(keys, label) {
  const W = 720, H = 280, pad = 48, pts = keys.flatMap(k => DATA.series[k] || []);
  if (!pts.length) return;
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = v => pad + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - 2 * pad);
  const sy = v => H - pad - (y1 > y0 ? (v - y0) / (y1 - y0) : 0.5) * (H - 2 * pad);
  const s = svg("svg", {width: W, height: H, class: "chart", viewBox: `0 0 ${W} ${H}`});
  s.append(svg("line", {x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#9ca3af"}));
  s.append(svg("line", {x1: pad, y1: pad, x2: pad, y2: H - pad, stroke: "#9ca3af"}));
  const range = `${y0.toPrecision(3)} … ${y1.toPrecision(3)}`;
  s.append(svg("text", {x: pad, y: pad - 8}, `${label}: ${range}`));
  s.append(svg("text", {x: W - pad, y: H - pad + 28, "text-anchor": "end"}, `step ${x0} … ${x1}`));
  keys.forEach((k, n) => {
    const d = DATA.series[k];
    if (!d) return;
    s.append(svg("polyline", {fill: "none", stroke: colors[k], "stroke-width": 1.5,
      points: d.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}));
    s.append(svg("text", {x: W - pad - 90, y: pad + 14 * n, fill: colors[k]}, k));
  });
  VIEW.append(el("h2", {text: label}), s);
}
chart(["train_loss", "val_loss"], "loss (nats/token)");
chart(["lr"], "learning rate");
chart(["tokens_per_s"], "tokens per second");
