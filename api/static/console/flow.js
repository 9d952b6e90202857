/* The material-flow page: draws its two charts from the numbers the page carries (the tables show the same). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const block = document.getElementById("flow-data");
    if (!block || !window.circularCharts) return;
    const data = JSON.parse(block.textContent);
    window.circularCharts.sankey(document.getElementById("sankey"), data);
    window.circularCharts.monthly(document.getElementById("monthly"), data.months);
    document.body.dataset.charts = "drawn";
  });
})();
