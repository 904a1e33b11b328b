// A line chart as one self-contained SVG string: no scripts, no external fonts or stylesheets, so
// it renders the same in a browser, on GitHub and embedded in Markdown. Pure: data in, text out.
//
// Data rules, so a chart never lies quietly:
// - points whose coordinates are not finite numbers are left out;
// - each series is drawn in order of x (a line chart of a sweep), markers on every point, so a
//   one-point series is still visible; an empty series keeps its legend entry, marked "no data";
// - on a log axis, values <= 0 have no position: such a point is drawn on the axis floor with a
//   hollow marker (meaning "at or below the floor", e.g. zero loss); the floor is then the decade
//   below the one holding the smallest positive value, so such points stand apart from the data.
import { linearScale, logScale, type Scale } from './ticks.js';

export interface Series {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  yLog?: boolean;
  xLog?: boolean;
}

// Okabe–Ito, without its yellow (unreadable on white): distinct for the common colour-vision
// deficiencies. Further series get hues spaced by the golden angle.
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

export function seriesColour(index: number): string {
  if (index < PALETTE.length) return PALETTE[index];
  const hue = Math.round((index * 137.508) % 360);
  return `hsl(${hue},65%,40%)`;
}

/** Text for an XML text node or a double- or single-quoted attribute. */
export function escapeXml(text: string): string {
  return (
    text
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
      // Control characters are not allowed in XML 1.0 at all, escaped or not.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd')
  );
}

const FONT = 12;
// Sans-serif glyphs average a little over half the font size; used only to reserve margins.
const CHAR_WIDTH = FONT * 0.6;

interface Placed {
  x: number;
  y: number;
  /** The value had no place on a log axis and sits on its floor. */
  clamped: boolean;
}

function finitePoints(series: Series): Array<readonly [number, number]> {
  return series.points
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
    .slice()
    .sort((a, b) => a[0] - b[0]);
}

function scaleFor(values: number[], log: boolean): Scale {
  if (log) {
    const positive = values.filter((v) => v > 0);
    if (positive.length === 0) return logScale(1, 10);
    const smallest = Math.min(...positive);
    // Leave a decade below the data for the floor when something will be drawn on it, so a zero
    // is not mistaken for the smallest measured value.
    const floor = positive.length < values.length ? smallest / 10 : smallest;
    return logScale(floor, Math.max(...positive));
  }
  if (values.length === 0) return linearScale(0, 1);
  return linearScale(Math.min(...values), Math.max(...values));
}

const fixed = (v: number): string => (Math.round(v * 10) / 10).toString();

export function lineChart(spec: ChartSpec): string {
  const width = spec.width ?? 720;
  const height = spec.height ?? 440;
  const series = spec.series.map((s) => ({ name: s.name, points: finitePoints(s) }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xScale = scaleFor(xs, spec.xLog === true);
  const yScale = scaleFor(ys, spec.yLog === true);

  const legendLabel = (s: { name: string; points: unknown[] }): string =>
    s.points.length === 0 ? `${s.name} (no data)` : s.name;
  const longestName = Math.max(0, ...series.map((s) => legendLabel(s).length));
  const legendWidth = series.length === 0 ? 0 : Math.min(240, 28 + longestName * CHAR_WIDTH);
  const longestTick = Math.max(...yScale.ticks.map((t) => t.label.length));
  const left = 24 + FONT + longestTick * CHAR_WIDTH;
  const right = 16 + legendWidth;
  const top = 40;
  const bottom = 52;
  const plotW = Math.max(40, width - left - right);
  const plotH = Math.max(40, height - top - bottom);

  const px = (v: number): number => left + xScale.position(v) * plotW;
  const py = (v: number): number => top + plotH - yScale.position(v) * plotH;
  const place = ([x, y]: readonly [number, number]): Placed => {
    const clampX = xScale.log && x <= 0;
    const clampY = yScale.log && y <= 0;
    return {
      x: clampX ? left : px(x),
      y: clampY ? top + plotH : py(y),
      clamped: clampX || clampY,
    };
  };

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="${FONT}" role="img">`,
  );
  out.push(`<title>${escapeXml(spec.title)}</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${fixed(width / 2)}" y="24" text-anchor="middle" font-size="${FONT + 3}" ` +
      `font-weight="bold">${escapeXml(spec.title)}</text>`,
  );

  // Grid and tick labels.
  out.push('<g class="x-ticks" stroke="#e0e0e0">');
  for (const t of xScale.ticks) {
    const x = fixed(px(t.value));
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${fixed(top + plotH)}"/>`);
  }
  out.push('</g><g class="x-labels" text-anchor="middle" fill="#333333">');
  for (const t of xScale.ticks) {
    out.push(
      `<text x="${fixed(px(t.value))}" y="${fixed(top + plotH + FONT + 6)}" ` +
        `data-value="${t.value}">${escapeXml(t.label)}</text>`,
    );
  }
  out.push('</g><g class="y-ticks" stroke="#e0e0e0">');
  for (const t of yScale.ticks) {
    const y = fixed(py(t.value));
    out.push(`<line x1="${fixed(left)}" y1="${y}" x2="${fixed(left + plotW)}" y2="${y}"/>`);
  }
  out.push('</g><g class="y-labels" text-anchor="end" fill="#333333">');
  for (const t of yScale.ticks) {
    out.push(
      `<text x="${fixed(left - 6)}" y="${fixed(py(t.value) + FONT / 3)}" ` +
        `data-value="${t.value}">${escapeXml(t.label)}</text>`,
    );
  }
  out.push('</g>');

  // Frame and axis titles.
  out.push(
    `<rect x="${fixed(left)}" y="${top}" width="${fixed(plotW)}" height="${fixed(plotH)}" ` +
      `fill="none" stroke="#333333"/>`,
  );
  out.push(
    `<text x="${fixed(left + plotW / 2)}" y="${fixed(height - 12)}" text-anchor="middle">` +
      `${escapeXml(spec.xLabel)}</text>`,
  );
  const yMid = fixed(top + plotH / 2);
  out.push(
    `<text x="16" y="${yMid}" text-anchor="middle" transform="rotate(-90 16 ${yMid})">` +
      `${escapeXml(spec.yLabel)}</text>`,
  );

  // Series: line, then markers on top.
  series.forEach((s, i) => {
    const colour = seriesColour(i);
    const placed = s.points.map(place);
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (placed.length > 1) {
      const d = placed.map((p, j) => `${j === 0 ? 'M' : 'L'}${fixed(p.x)},${fixed(p.y)}`);
      out.push(
        `<path d="${d.join(' ')}" fill="none" stroke="${colour}" stroke-width="2" ` +
          `stroke-linejoin="round"/>`,
      );
    }
    for (const p of placed) {
      const fill = p.clamped ? '#ffffff' : colour;
      out.push(
        `<circle cx="${fixed(p.x)}" cy="${fixed(p.y)}" r="3.5" fill="${fill}" ` +
          `stroke="${colour}" stroke-width="1.5"/>`,
      );
    }
    out.push('</g>');
  });

  // Legend, to the right of the plot.
  if (series.length > 0) {
    const lx = left + plotW + 16;
    out.push('<g class="legend">');
    series.forEach((s, i) => {
      const y = top + 8 + i * (FONT + 8);
      const colour = seriesColour(i);
      out.push(
        `<line x1="${fixed(lx)}" y1="${y}" x2="${fixed(lx + 18)}" y2="${y}" stroke="${colour}" ` +
          `stroke-width="2"/><circle cx="${fixed(lx + 9)}" cy="${y}" r="3.5" fill="${colour}"/>` +
          `<text x="${fixed(lx + 24)}" y="${y + FONT / 3}">${escapeXml(legendLabel(s))}</text>`,
      );
    });
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
