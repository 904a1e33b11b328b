import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { escapeXml, lineChart, seriesColour, type ChartSpec } from './svg.js';
import { formatTick, linearScale, logScale } from './ticks.js';

/**
 * A strict-enough XML checker for what lineChart emits: every tag balanced, attributes quoted,
 * no bare `<` or `&` outside a tag or entity. Returns the elements (name + attributes + text).
 */
interface Element {
  name: string;
  attrs: Record<string, string>;
  text: string;
}
function parseXml(xml: string): Element[] {
  const elements: Element[] = [];
  const stack: Element[] = [];
  const token = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = token.exec(xml)) !== null) {
    end = token.lastIndex;
    const [, closing, name, attrText, selfClosing, text, stray] = m;
    if (stray !== undefined) throw new Error(`bare '<' at ${m.index}`);
    if (text !== undefined) {
      const bad = text.replace(/&(amp|lt|gt|quot|apos);/g, '');
      if (bad.includes('&')) throw new Error(`bare '&' in ${JSON.stringify(text)}`);
      if (stack.length > 0) stack[stack.length - 1].text += text;
      else if (text.trim() !== '') throw new Error('text outside the root');
      continue;
    }
    if (closing === '/') {
      const open = stack.pop();
      if (open?.name !== name) throw new Error(`</${name}> closes <${open?.name}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      if (/&(?!(amp|lt|gt|quot|apos);)/.test(a[2])) throw new Error(`bare '&' in ${a[2]}`);
      attrs[a[1]] = a[2];
    }
    const el = { name, attrs, text: '' };
    elements.push(el);
    if (selfClosing !== '/') stack.push(el);
    else if (stack.length === 0 && elements.length > 1) throw new Error('second root');
  }
  if (end !== xml.length) throw new Error(`unparsed from ${end}`);
  if (stack.length !== 0) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  return elements;
}
const unescape = (s: string): string =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

function axisTicks(svg: string, axis: 'x' | 'y'): number[] {
  const group = new RegExp(`<g class="${axis}-labels"[^>]*>([\\s\\S]*?)</g>`).exec(svg);
  assert.ok(group, `no ${axis}-labels group`);
  return [...group[1].matchAll(/data-value="([^"]+)"/g)].map((m) => Number(m[1]));
}

const spec = (over: Partial<ChartSpec> = {}): ChartSpec => ({
  title: 'Delivered loss vs link loss',
  xLabel: 'link loss (%)',
  yLabel: 'delivered loss (%)',
  series: [
    {
      name: 'off',
      points: [
        [0, 0],
        [1, 1.02],
        [5, 5.1],
        [10, 9.8],
      ],
    },
    {
      name: 'rs',
      points: [
        [0, 0],
        [1, 0.01],
        [5, 0.4],
        [10, 2.5],
      ],
    },
  ],
  ...over,
});

test('the output is one well-formed svg element with a title, a legend and a path per series', () => {
  const svg = lineChart(spec());
  const elements = parseXml(svg);
  assert.equal(elements[0].name, 'svg');
  assert.equal(elements[0].attrs.xmlns, 'http://www.w3.org/2000/svg');
  assert.equal(elements.find((e) => e.name === 'title')?.text, 'Delivered loss vs link loss');
  assert.equal(elements.filter((e) => e.name === 'path').length, 2);
  assert.equal(
    elements.filter((e) => e.name === 'g' && e.attrs.class === 'series').length,
    2,
    'one group per series',
  );
  const legendTexts = /<g class="legend">([\s\S]*?)<\/g>/.exec(svg)?.[1] ?? '';
  assert.match(legendTexts, />off</);
  assert.match(legendTexts, />rs</);
  // Distinct colours for the two series' lines.
  const strokes = elements.filter((e) => e.name === 'path').map((e) => e.attrs.stroke);
  assert.equal(new Set(strokes).size, 2);
  assert.ok(axisTicks(svg, 'y').length >= 2);
});

test('ticks cover the data range on linear axes', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.double({ min: -1e6, max: 1e6, noNaN: true }),
          fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        ),
        { minLength: 1, maxLength: 20 },
      ),
      (points) => {
        const svg = lineChart(spec({ series: [{ name: 'a', points }] }));
        parseXml(svg);
        for (const [axis, values] of [
          ['x', points.map((p) => p[0])],
          ['y', points.map((p) => p[1])],
        ] as const) {
          const ticks = axisTicks(svg, axis);
          assert.ok(ticks.length >= 2 && ticks.length <= 12, `${ticks.length} ticks`);
          const lo = Math.min(...ticks);
          const hi = Math.max(...ticks);
          const slack = (hi - lo) * 1e-9;
          assert.ok(lo <= Math.min(...values) + slack, `${axis}: ${lo} > min`);
          assert.ok(hi >= Math.max(...values) - slack, `${axis}: ${hi} < max`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('linear ticks are round, evenly spaced and labelled without float noise', () => {
  const s = linearScale(0, 0.3);
  assert.deepEqual(
    s.ticks.map((t) => t.label),
    ['0', '0.05', '0.10', '0.15', '0.20', '0.25', '0.30'],
  );
  const t = linearScale(3, 97);
  assert.equal(t.min, 0);
  assert.equal(t.max, 100);
  assert.deepEqual(
    t.ticks.map((x) => x.value),
    [0, 20, 40, 60, 80, 100],
  );
  assert.equal(t.position(50), 0.5);
  // One value: room around it rather than a zero-width axis.
  const one = linearScale(5, 5);
  assert.ok(one.min < 5 && one.max > 5);
  assert.equal(formatTick(2e-5, 1e-5), '2e-5');
  assert.equal(formatTick(3e7, 1e7), '3e7');
});

test('log ticks are decades covering the positive data, with 2 and 5 on short axes', () => {
  const s = logScale(0.003, 40);
  assert.equal(s.min, 0.001);
  assert.equal(s.max, 100);
  assert.deepEqual(
    s.ticks.map((t) => t.label),
    ['0.001', '0.01', '0.1', '1', '10', '100'],
  );
  assert.equal(s.position(0.001), 0);
  assert.equal(s.position(100), 1);
  const short = logScale(2, 30);
  assert.deepEqual(
    short.ticks.map((t) => t.value),
    [1, 2, 5, 10, 20, 50, 100],
  );
  // Many decades: a labelled tick every few, ends still on one.
  const wide = logScale(1e-12, 1e12);
  assert.ok(wide.ticks.length <= 9);
  assert.ok(wide.min <= 1e-12 && wide.max >= 1e12);
  assert.equal(wide.ticks[wide.ticks.length - 1].value, wide.max);
});

test('on a log axis, zero and negative values sit on the floor with a hollow marker', () => {
  const svg = lineChart(
    spec({
      yLog: true,
      series: [
        {
          name: 'rs',
          points: [
            [0, 0],
            [1, 0.01],
            [5, 0.4],
            [10, -3],
          ],
        },
      ],
    }),
  );
  const elements = parseXml(svg);
  const circles = elements.filter(
    (e) => e.name === 'circle' && e.attrs.stroke !== undefined && e.attrs.r === '3.5',
  );
  assert.equal(circles.length, 4);
  const hollow = circles.filter((c) => c.attrs.fill === '#ffffff');
  assert.equal(hollow.length, 2);
  const floorY = Math.max(...circles.map((c) => Number(c.attrs.cy)));
  for (const c of hollow) assert.equal(Number(c.attrs.cy), floorY);
  // The smallest measured value (0.01) stays clear of the floor the zeros sit on.
  const solidYs = circles.filter((c) => c.attrs.fill !== '#ffffff').map((c) => Number(c.attrs.cy));
  assert.ok(Math.max(...solidYs) < floorY - 20);
  const ticks = axisTicks(svg, 'y');
  assert.ok(Math.min(...ticks) <= 0.001 && Math.max(...ticks) >= 0.4);
  assert.ok(ticks.every((t) => t > 0));
});

test('empty and one-point series, and non-finite points, do not break the chart', () => {
  const svg = lineChart(
    spec({
      xLog: true,
      yLog: true,
      series: [
        { name: 'empty', points: [] },
        { name: 'single', points: [[3, 7]] },
        {
          name: 'junk',
          points: [
            [Number.NaN, 1],
            [2, Number.POSITIVE_INFINITY],
          ],
        },
      ],
    }),
  );
  const elements = parseXml(svg);
  assert.equal(elements.filter((e) => e.name === 'path').length, 0);
  const markers = elements.filter((e) => e.name === 'circle' && e.attrs.r === '3.5');
  // One data marker for 'single' plus one legend swatch per series.
  assert.equal(markers.length, 1 + 3);
  assert.match(svg, /empty \(no data\)/);
  assert.match(svg, /junk \(no data\)/);
  // Nothing at all.
  parseXml(lineChart(spec({ series: [] })));
  parseXml(lineChart(spec({ series: [{ name: 'z', points: [[0, 0]] }], yLog: true })));
});

test('text is escaped everywhere it appears', () => {
  const nasty = `<b> & "quoted" 'single' </svg>\u0001`;
  const svg = lineChart(
    spec({
      title: nasty,
      xLabel: nasty,
      yLabel: nasty,
      series: [{ name: nasty, points: [[1, 1]] }],
    }),
  );
  const elements = parseXml(svg);
  const texts = elements.filter((e) => e.name === 'text' || e.name === 'title');
  const expected = nasty.replace('\u0001', '\ufffd');
  // <title>, the heading, both axis titles and the legend entry.
  assert.equal(texts.filter((e) => unescape(e.text) === expected).length, 5);
  const group = elements.find((e) => e.attrs.class === 'series');
  assert.equal(unescape(group?.attrs['data-name'] ?? ''), expected);
  assert.equal(escapeXml(`a&b<c>"'`), 'a&amp;b&lt;c&gt;&quot;&apos;');
});

test('colours stay distinct beyond the palette', () => {
  const colours = Array.from({ length: 16 }, (_, i) => seriesColour(i));
  assert.equal(new Set(colours).size, 16);
});
