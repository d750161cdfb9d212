/**
 * Bar charts with Chart.js (tree-shaken: only the bar chart parts are bundled). Each chart has an
 * accessible name and is followed by a table of the same figures (the exact amounts), so nothing
 * is only in the picture. Amounts are drawn in USD (a float is fine for bar heights; every figure
 * shown as text is exact).
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { DISPOSE_EVENT, h } from "./dom.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

// Colour-blind-safe palette (Okabe-Ito), each at least 3:1 against white.
const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

export interface Series {
  label: string;
  /** One value per label, micro-USD. */
  values: bigint[];
}

/** A stacked bar chart of micro-USD per label (e.g. per day), one colour per series. */
export function barChart(name: string, labels: string[], series: Series[]): HTMLElement {
  const canvas = h("canvas", { role: "img", "aria-label": `${name} (the same figures are in the table below)` });
  const box = h("div", { class: "chart" }, canvas);
  if (labels.length === 0) return h("p", { class: "empty" }, "No data in this period yet.");
  const chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.values.map((v) => Number(v) / 1e6),
        backgroundColor: COLOURS[i % COLOURS.length],
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { stacked: true },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: "USD" } },
      },
      plugins: { legend: { position: "bottom" } },
    },
  });
  canvas.addEventListener(DISPOSE_EVENT, () => chart.destroy(), { once: true });
  return box;
}
