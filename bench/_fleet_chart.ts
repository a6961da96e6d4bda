/**
 * Draws the fleet runs as one SVG: a grid of panels (rows: scenarios; columns: with and
 * without adaptation), each with two plots over the run's seconds: every producer's
 * accepted throughput as a share of the stream's capacity, and the entries Kinesis
 * throttled per second. Plain SVG text, no library.
 *
 * @module
 */
import type { ModelSecond } from "../testing/kinesis_model.ts";

/** One panel. */
export interface ChartPanel {
  title: string;
  seconds: ModelSecond[];
  /** Producer ids, in legend order. */
  producers: string[];
  /** The stream's capacity in bytes per second. */
  capacityBytes: number;
  /** Shaded: seconds before this are not measured. */
  measureFromSecond: number;
  /** A marker where producers stopped, in seconds. */
  stopAtSecond?: number | undefined;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
const PANEL_W = 420;
const PLOT_H = 120;
const GAP = 28;
const LEFT = 46;
const TOP = 30;

/**
 * Renders panels in rows of `columns`.
 *
 * @param panels The panels, row by row.
 * @param columns Panels per row.
 * @returns The SVG document.
 */
export function renderFleetChart(panels: ChartPanel[], columns: number): string {
  const panelH = TOP + PLOT_H + GAP + PLOT_H + 34;
  const rows = Math.ceil(panels.length / columns);
  const width = columns * (PANEL_W + LEFT + 20) + 10;
  const height = rows * panelH + 30;
  const maxSeconds = Math.max(...panels.map((panel) => panel.seconds.length), 1);
  const maxThrottled = Math.max(
    10,
    ...panels.flatMap((panel) =>
      panel.seconds.map((second) =>
        Object.values(second.producers).reduce((sum, counts) => sum + counts.throttled, 0)
      )
    ),
  );
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  panels.forEach((panel, index) => {
    const x0 = (index % columns) * (PANEL_W + LEFT + 20) + LEFT;
    const y0 = Math.floor(index / columns) * panelH + 10;
    parts.push(...drawPanel(panel, x0, y0, maxSeconds, maxThrottled));
  });
  parts.push(
    `<text x="10" y="${height - 8}" fill="#555">Shaded: warm-up, not measured. ` +
      `Dashed: the stream's capacity. Dotted line: producers stop.</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

function drawPanel(
  panel: ChartPanel,
  x0: number,
  y0: number,
  maxSeconds: number,
  maxThrottled: number,
): string[] {
  const out: string[] = [`<text x="${x0}" y="${y0 + 14}" font-weight="bold">${panel.title}</text>`];
  const xOf = (second: number) => x0 + (second / maxSeconds) * PANEL_W;
  const top = y0 + TOP;
  const bottom = top + PLOT_H + GAP;
  const maxShare = 1.6;
  out.push(...frame(x0, top, "accepted (share of capacity)", [0, 0.5, 1, 1.5], maxShare));
  out.push(...frame(x0, bottom, "throttled entries / s", ticks(maxThrottled), maxThrottled));
  for (const y of [top, bottom]) {
    out.push(
      `<rect x="${x0}" y="${y}" width="${xOf(panel.measureFromSecond) - x0}" height="${PLOT_H}" ` +
        `fill="#000" opacity="0.06"/>`,
    );
    if (panel.stopAtSecond !== undefined) {
      const x = xOf(panel.stopAtSecond);
      out.push(
        `<line x1="${x}" y1="${y}" x2="${x}" y2="${
          y + PLOT_H
        }" stroke="#000" stroke-dasharray="1,3"/>`,
      );
    }
  }
  const capacityY = top + PLOT_H - PLOT_H / maxShare;
  out.push(
    `<line x1="${x0}" y1="${capacityY}" x2="${
      x0 + PANEL_W
    }" y2="${capacityY}" stroke="#888" stroke-dasharray="5,4"/>`,
  );
  panel.producers.forEach((id, p) => {
    const color = COLORS[p % COLORS.length]!;
    const accepted: string[] = [];
    const throttled: string[] = [];
    panel.seconds.forEach((second, s) => {
      const counts = second.producers[id];
      const x = xOf(s + 0.5).toFixed(1);
      const share = Math.min(maxShare, (counts?.bytes ?? 0) / panel.capacityBytes);
      accepted.push(`${x},${(top + PLOT_H - (share / maxShare) * PLOT_H).toFixed(1)}`);
      const t = Math.min(maxThrottled, counts?.throttled ?? 0);
      throttled.push(`${x},${(bottom + PLOT_H - (t / maxThrottled) * PLOT_H).toFixed(1)}`);
    });
    for (const points of [accepted, throttled]) {
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${points.join(" ")}"/>`,
      );
    }
    out.push(
      `<text x="${x0 + 40 * p}" y="${bottom + PLOT_H + 26}" fill="${color}">${id}</text>`,
    );
  });
  out.push(
    `<text x="${x0 + PANEL_W}" y="${bottom + PLOT_H + 26}" text-anchor="end">seconds</text>`,
  );
  for (let s = 0; s <= maxSeconds; s += 2) {
    out.push(
      `<text x="${xOf(s)}" y="${
        bottom + PLOT_H + 13
      }" text-anchor="middle" fill="#555">${s}</text>`,
    );
  }
  return out;
}

function frame(x0: number, y: number, label: string, marks: number[], max: number): string[] {
  const out = [
    `<rect x="${x0}" y="${y}" width="${PANEL_W}" height="${PLOT_H}" fill="none" stroke="#bbb"/>`,
    `<text x="${x0 + 4}" y="${y + 12}" fill="#555">${label}</text>`,
  ];
  for (const mark of marks) {
    const my = y + PLOT_H - (mark / max) * PLOT_H;
    out.push(
      `<text x="${x0 - 4}" y="${my + 4}" text-anchor="end" fill="#555">${mark}</text>`,
      `<line x1="${x0 - 2}" y1="${my}" x2="${x0}" y2="${my}" stroke="#555"/>`,
    );
  }
  return out;
}

function ticks(max: number): number[] {
  const step = 10 ** Math.floor(Math.log10(max));
  const marks: number[] = [];
  for (let mark = 0; mark <= max; mark += step) marks.push(mark);
  return marks.length > 6 ? marks.filter((_, i) => i % 2 === 0) : marks;
}
