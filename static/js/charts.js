// Charts drawn from data the page embeds with json_script: <canvas data-chart="kind" data-source="json-id">.
// Loaded after Chart.js; redraws canvases that htmx swaps in.
(function () {
  const cumulative = (levels) => {
    let total = 0;
    return levels.map((l) => ({x: Number(l.price), y: (total += l.gpus)}));
  };
  // Labels drawn inside a chart come translated from the canvas's data-label-* attributes (English otherwise).
  const label = (canvas, key, english) => canvas.dataset[key] || english;
  const kinds = {
    burndown(canvas, d) {
      return {
        type: "line",
        data: {labels: d.labels, datasets: [
          {label: label(canvas, "labelUnissued", "Budget not yet issued"),
           data: d.issued.map((v) => Number(d.budget) - Number(v)), stepped: true},
          {label: label(canvas, "labelIssued", "Issued (cumulative)"), data: d.issued.map(Number), stepped: true},
          {label: label(canvas, "labelSpent", "Spent (cumulative)"), data: d.spent.map(Number), stepped: true},
        ]},
        options: {scales: {y: {beginAtZero: true}}},
      };
    },
    depth(canvas, d) {
      return {
        type: "line",
        data: {datasets: [
          {label: label(canvas, "labelAsks", "Asks: GPUs offered at or below the price"),
           data: cumulative(d.asks), stepped: true, fill: true},
          {label: label(canvas, "labelBids", "Bids: GPUs wanted at or above the price"),
           data: cumulative(d.bids), stepped: true, fill: true},
        ]},
        options: {scales: {
          x: {type: "linear", title: {display: true, text: label(canvas, "labelPrice", "CNY per GPU-hour")}},
          y: {beginAtZero: true, title: {display: true, text: label(canvas, "labelGpus", "GPUs")}}}},
      };
    },
    // A ready Chart.js config ({type, data, options}) computed on the server.
    config(canvas, d) { return d; },
  };
  // the canvas fills its .chart-box (a fixed height in site.css) whatever the width: on a phone the default aspect
  // ratio would leave a plot a few pixels high under its legend
  Chart.defaults.maintainAspectRatio = false;
  function draw(root) {
    root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      if (canvas.dataset.drawn) return;
      const source = document.getElementById(canvas.dataset.source);
      const build = kinds[canvas.dataset.chart];
      if (!source || !build) return;
      new Chart(canvas, build(canvas, JSON.parse(source.textContent)));
      canvas.dataset.drawn = "1";
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => draw(document));
  else draw(document);
  document.addEventListener("htmx:afterSettle", (event) => draw(event.target));
})();
