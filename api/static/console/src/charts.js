/* The console's charts: ECharts (pinned through npm), only the parts used here, bundled by esbuild into
 * api/static/console/vendor/charts.js (scripts/console_assets.py, run by `make setup`). Canvas rendering: the SVG
 * renderer sets style attributes, which the console's Content-Security-Policy (no inline styles) refuses.
 * Every chart has its numbers in a table beside it, for screen readers and for keyboard users. */
import * as echarts from "echarts/core";
import { SankeyChart, BarChart, LineChart } from "echarts/charts";
import { TooltipComponent, GridComponent, LegendComponent, AriaComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([SankeyChart, BarChart, LineChart, TooltipComponent, GridComponent, LegendComponent, AriaComponent,
  CanvasRenderer]);

const GREEN = "#2a6648";
const COLORS = { "virgin material": "#8a8f8c", "recycled content": "#3f9a6b", "items made": "#2a6648",
  "in circulation": "#5b7fa6", "returned or collected": "#c08a2e", "recycled": "#3f9a6b",
  "disposed of": "#8f3417", "recovered material": "#1f7a4d", "recycling loss": "#b5b9b6",
  "used in new items": "#2a6648", "recovered, not yet used": "#7fbf9b" };
const grams = (value) => (value >= 10000 ? `${(value / 1000).toLocaleString("en", { maximumFractionDigits: 1 })} kg`
  : `${value.toLocaleString("en")} g`);

function sankey(element, flow) {
  // On a phone the flow runs top to bottom: five columns of labels do not fit across 390 px, five rows do.
  const narrow = element.clientWidth < 560;
  if (narrow) element.classList.add("chart-tall");
  const chart = echarts.init(element, null, { renderer: "canvas" });
  const layout = narrow
    ? { orient: "vertical", left: 8, right: 8, top: 8, bottom: 28, nodeWidth: 12, nodeGap: 14,
      label: { position: "bottom", fontSize: 11, color: "#1d2521", width: 90, overflow: "break" } }
    : { orient: "horizontal", left: 8, right: 140, top: 8, bottom: 8, nodeWidth: 14, nodeGap: 10,
      label: { fontSize: 12, color: "#1d2521" } };
  chart.setOption({
    aria: { enabled: true, label: { description: element.getAttribute("aria-label") || "Material flow" } },
    tooltip: { trigger: "item", valueFormatter: grams },
    series: [{
      type: "sankey", draggable: false, ...layout,
      emphasis: { focus: "adjacency" },
      lineStyle: { color: "gradient", opacity: 0.45 },
      data: flow.nodes.map((name) => ({ name, itemStyle: { color: COLORS[name] || GREEN } })),
      links: flow.links.map((l) => ({ source: l.source, target: l.target, value: l.grams })),
    }],
  });
  window.addEventListener("resize", () => chart.resize());
  return chart;
}

function monthly(element, months) {
  const chart = echarts.init(element, null, { renderer: "canvas" });
  chart.setOption({
    aria: { enabled: true, label: { description: element.getAttribute("aria-label") || "Recycled content" } },
    tooltip: { trigger: "axis" },
    legend: { top: 0, left: 0, itemWidth: 14, textStyle: { fontSize: 11 } },
    grid: { left: 44, right: 40, top: 64, bottom: 28 },
    xAxis: { type: "category", data: months.map((m) => m.month) },
    yAxis: [
      { type: "value", name: "kg", axisLabel: { formatter: (v) => (v / 1000).toLocaleString("en") } },
      { type: "value", name: "%", min: 0, max: 100 },
    ],
    series: [
      { name: "Made, kg", type: "bar", stack: "g", color: "#8a8f8c",
        data: months.map((m) => m.grams - m.recycledGrams), tooltip: { valueFormatter: grams } },
      { name: "Recycled, kg", type: "bar", stack: "g", color: "#3f9a6b",
        data: months.map((m) => m.recycledGrams), tooltip: { valueFormatter: grams } },
      { name: "Recycled share, %", type: "line", yAxisIndex: 1, color: GREEN, symbolSize: 8,
        data: months.map((m) => m.shareBps / 100), tooltip: { valueFormatter: (v) => `${v} %` } },
    ],
  });
  window.addEventListener("resize", () => chart.resize());
  return chart;
}

window.circularCharts = { sankey, monthly };
