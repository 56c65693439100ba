// Audit dashboard charts: data comes from the json_script block "audit-charts" (no inline scripts: CSP).
(function () {
  const source = document.getElementById("audit-charts");
  if (!source || typeof Chart === "undefined") return;
  const d = JSON.parse(source.textContent);
  const num = (xs) => xs.map(Number);
  Chart.defaults.animation = false; // figures, not a show: draw at once
  Chart.defaults.maintainAspectRatio = false; // fill the .chart-box's fixed height at any width
  // the series names come translated from the data-label-* attributes of the chart's canvas (English otherwise)
  const city = document.getElementById("chart-city");
  const spent = city.dataset.labelSpent || "Spent", captured = city.dataset.labelCaptured || "Captured";
  const bars = (labels, rows) => ({labels: labels, datasets: [
    {label: spent, data: num(rows.spent)}, {label: captured, data: num(rows.captured)}]});
  new Chart(city, {type: "bar", data: bars(d.city.labels, d.city),
    options: {scales: {y: {beginAtZero: true}}}});
  new Chart(document.getElementById("chart-month"), {type: "line", data: bars(d.month.labels, d.month),
    options: {scales: {y: {beginAtZero: true}}}});
  new Chart(document.getElementById("chart-chips"), {type: "doughnut",
    data: {labels: d.chips.labels, datasets: [{label: spent, data: num(d.chips.spent)}]}});
})();
