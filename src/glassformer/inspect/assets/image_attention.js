// Image attention view (inspect/image_attention.py): the image, a thumbnail per layer and
// head with the attention laid over the patches, the chosen one large.
const maps = DATA.maps, image = DATA.image, [gridRows, gridCols] = DATA.grid, P = DATA.patch;
let current = {map: 0, head: 0};
function drawImage(canvas, cell, weights) {
  // grey pixels (ink dark), then each patch tinted blue by its weight / the map's largest
  const H = image.length, W = image[0].length;
  canvas.width = W * cell; canvas.height = H * cell;
  const g = canvas.getContext("2d");
  image.forEach((row, i) => row.forEach((v, j) => {
    const grey = Math.round(255 * (1 - v));
    g.fillStyle = `rgb(${grey}, ${grey}, ${grey})`; g.fillRect(j * cell, i * cell, cell, cell);
  }));
  if (!weights) return;
  const max = Math.max(...weights.flat());
  weights.forEach((row, r) => row.forEach((v, c) => {
    g.fillStyle = `rgba(37, 99, 235, ${(0.85 * (max > 0 ? v / max : 0)).toFixed(3)})`;
    g.fillRect(c * P * cell, r * P * cell, P * cell, P * cell);
  }));
  g.strokeStyle = "rgba(0, 0, 0, 0.25)";
  for (let r = 0; r <= gridRows; r++) g.strokeRect(0, r * P * cell, W * cell, 0);
  for (let c = 0; c <= gridCols; c++) g.strokeRect(c * P * cell, 0, 0, H * cell);
}
const controls = el("div", {class: "controls"});
const mapSel = el("select", {id: "map-select"});
maps.forEach((m, i) => mapSel.append(el("option", {value: i, text: `layer ${m.layer}`})));
const headSel = el("select", {id: "head-select"});
controls.append(el("label", {}, "layer", mapSel), el("label", {}, "head", headSel));
const input = el("canvas");
const pred = el("table", {id: "prediction"});
pred.append(el("tr", {}, el("th", {text: "class"}), el("th", {text: "probability"})));
DATA.prediction.forEach(([name, p]) =>
  pred.append(el("tr", {}, el("td", {class: "tok", text: name}), el("td", {text: fmt(p)}))));
drawImage(input, 20, null);
const header = el("div", {class: "controls"},
  el("div", {id: "image"}, input), el("div", {}, el("h2", {text: "Prediction"}), pred));
const thumbs = el("div", {class: "thumbs", id: "thumbs"});
const big = el("div", {id: "overlay"});
VIEW.append(header, controls, el("h2", {text: `All layers and heads (query: ${DATA.query})`}),
  thumbs, el("h2", {id: "big-title"}), big);
function drawThumbs() {
  thumbs.textContent = "";
  maps.forEach((m, mi) => m.heads.forEach((w, hi) => {
    const c = el("canvas");
    drawImage(c, 10, w);
    const box = el("div", {class: "thumb" + (mi === current.map && hi === current.head ?
      " active" : "")}, c, el("div", {text: `L${m.layer} H${m.head_ids[hi]}`}));
    box.addEventListener("click", () => { current = {map: mi, head: hi}; update(); });
    thumbs.append(box);
  }));
}
function update() {
  const m = maps[current.map], w = m.heads[current.head];
  headSel.textContent = "";
  m.head_ids.forEach((h, i) => headSel.append(el("option", {value: i, text: h})));
  mapSel.value = current.map; headSel.value = current.head;
  const own = DATA.query === "class token" ?
    `; ${fmt(m.self[current.head])} stays on the class token itself` : "";
  document.getElementById("big-title").textContent =
    `layer ${m.layer}, head ${m.head_ids[current.head]}${own}`;
  big.textContent = "";
  const c = el("canvas");
  drawImage(c, 40, w);
  big.append(c, heatTable(w.map((_, r) => `row ${r}`), w[0].map((_, j) => `col ${j}`), w,
    Math.max(...w.flat()), (r, j, v) => `patch (${r}, ${j}): ${fmt(v)}`));
  drawThumbs();
}
mapSel.addEventListener("change", () => { current = {map: +mapSel.value, head: 0}; update(); });
headSel.addEventListener("change", () => { current.head = +headSel.value; update(); });
update();
