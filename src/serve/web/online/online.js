// attnrec online metrics: a static page (no build step) that asks the API for
// online metrics (GET /v1/metrics/online) and experiments (GET /v1/experiments)
// and draws them: a table with 95 % intervals, a plot per metric over time, and
// each experiment's variants against control. The API key lives in
// sessionStorage (this tab only), shared with the /inspect page.

const $ = (selector, root = document) => root.querySelector(selector);
const SVG = 'http://www.w3.org/2000/svg';
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};
const svgEl = (tag, attributes = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  return node;
};
// Okabe-Ito: distinguishable for colour-blind readers.
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];
const METRICS = [
  ['clickThrough', 'click-through', (v) => `${(100 * v).toFixed(2)} %`],
  ['cartRate', 'add-to-cart', (v) => `${(100 * v).toFixed(2)} %`],
  ['conversion', 'conversion', (v) => `${(100 * v).toFixed(2)} %`],
  ['revenuePerThousand', 'revenue / 1,000', (v) => v.toFixed(2)],
];

let key = sessionStorage.getItem('attnrec.key') ?? '';

function say(message, error = false) {
  const status = $('#status');
  status.textContent = message;
  status.classList.toggle('error', error);
}

async function api(path) {
  const response = await fetch(path, { headers: { authorization: `Bearer ${key}` } });
  const body = await response.json();
  if (!response.ok) throw new Error(`${body.code ?? response.status}: ${body.detail ?? response.statusText}`);
  return body;
}

const local = (date) => new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

function interval(i, format) {
  return el('td', {}, format(i.value), el('span', { class: 'ci' }, ` [${format(i.low)}, ${format(i.high)}]`));
}

function drawTable(groups) {
  const body = $('#groups tbody');
  body.replaceChildren(
    ...groups.map((g) => el('tr', { 'data-testid': 'group-row', 'data-group': g.group }, el('td', {}, g.group), el('td', {}, String(g.impressions)), ...METRICS.map(([name, , format]) => interval(g[name], format)))),
  );
}

/** One line per group over the buckets, with its interval as a band. */
function drawPlot(series, metric, label, format) {
  const groups = [...new Set(series.map((s) => s.group))].sort();
  const times = [...new Set(series.map((s) => s.bucket))].sort();
  const width = 320;
  const height = 180;
  const pad = { left: 44, right: 8, top: 10, bottom: 22 };
  const max = Math.max(1e-9, ...series.map((s) => s[metric].high));
  const x = (t) => pad.left + (times.length <= 1 ? 0 : (times.indexOf(t) / (times.length - 1)) * (width - pad.left - pad.right));
  const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  const svg = svgEl('svg', { viewBox: `0 0 ${width} ${height}`, 'data-testid': 'plot', 'data-metric': metric });
  svg.append(svgEl('line', { class: 'axis', x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }));
  svg.append(svgEl('line', { class: 'axis', x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom }));
  const top = svgEl('text', { x: 2, y: pad.top + 8 });
  top.textContent = format(max);
  svg.append(top);
  if (times.length > 0) {
    for (const [i, t] of [[0, times[0]], [1, times.at(-1)]]) {
      const tick = svgEl('text', { x: i === 0 ? pad.left : width - pad.right - 70, y: height - 6 });
      tick.textContent = new Date(t).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit' });
      svg.append(tick);
    }
  }
  groups.forEach((group, g) => {
    const points = series.filter((s) => s.group === group).sort((a, b) => (a.bucket < b.bucket ? -1 : 1));
    const colour = PALETTE[g % PALETTE.length];
    const band = [...points.map((p) => `${x(p.bucket)},${y(p[metric].high)}`), ...points.reverse().map((p) => `${x(p.bucket)},${y(p[metric].low)}`)].join(' ');
    points.reverse();
    svg.append(svgEl('polygon', { class: 'band', points: band, fill: colour }));
    svg.append(svgEl('polyline', { points: points.map((p) => `${x(p.bucket)},${y(p[metric].value)}`).join(' '), stroke: colour, 'data-group': group }));
    // A dot per bucket, so a period of one bucket shows too.
    for (const p of points) svg.append(svgEl('circle', { cx: x(p.bucket), cy: y(p[metric].value), r: 3, fill: colour }));
  });
  const legend = el('div', { class: 'legend' }, ...groups.map((group, g) => el('span', {}, el('i', { style: '' }), group)));
  legend.querySelectorAll('i').forEach((i, g) => (i.style.background = PALETTE[g % PALETTE.length]));
  return el('figure', {}, svg, el('figcaption', {}, label), legend);
}

function drawExperiments(experiments) {
  const box = $('#experiments');
  if (experiments.length === 0) {
    box.replaceChildren(el('p', { class: 'muted' }, 'No experiment yet (POST /v1/experiments with an admin key).'));
    return;
  }
  box.replaceChildren(
    ...experiments.map((e) => {
      const rows = e.variants.map((v) => {
        const vs = v.againstControl?.conversion;
        const verdict = vs ? el('span', { class: vs.pWorse < 0.025 ? 'worse' : vs.pValue < 0.05 ? 'better' : '' }, `lift ${vs.lift ? `${(100 * vs.lift.value).toFixed(1)} % [${(100 * vs.lift.low).toFixed(1)}, ${(100 * vs.lift.high).toFixed(1)}]` : 'n/a'}, p = ${vs.pValue.toPrecision(2)}`) : el('span', { class: 'muted' }, 'control');
        return el(
          'tr',
          { 'data-testid': 'variant-row', 'data-variant': v.name },
          el('td', {}, `${v.name} (${v.strategy === 'popular' ? 'popular' : `v${v.modelVersion}`}, ${Math.round(v.share * 100)} %)`),
          el('td', {}, String(v.metrics?.impressions ?? v.impressions ?? 0)),
          v.metrics ? interval(v.metrics.conversion, METRICS[2][2]) : el('td', {}, '–'),
          v.metrics ? interval(v.metrics.revenuePerThousand, METRICS[3][2]) : el('td', {}, '–'),
          el('td', {}, verdict),
        );
      });
      const test = e.variants.find((v) => v.againstControl)?.againstControl?.conversion.test;
      return el(
        'div',
        { class: 'experiment', 'data-testid': 'experiment', 'data-status': e.status },
        el('h3', {}, `#${e.id} ${e.name}`),
        el('p', { class: 'state' }, `${e.status}${e.stopReason ? `: ${e.stopReason}` : ''}${test ? ` · conversion compared by the ${test}` : ''}`),
        el('table', {}, el('thead', {}, el('tr', {}, ...['variant', 'impressions', 'conversion', 'revenue / 1,000', 'against control'].map((h) => el('th', {}, h)))), el('tbody', {}, ...rows)),
      );
    }),
  );
}

/** Loads started so far: an answer to an older one (a slower request still in flight) is dropped, not drawn over a newer one's. */
let loads = 0;

async function load() {
  const generation = ++loads;
  const from = new Date($('#from').value);
  const to = new Date($('#to').value);
  const params = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), groupBy: $('#group-by').value, bucket: $('#bucket').value });
  say('loading…');
  try {
    const metrics = await api(`/v1/metrics/online?${params}`);
    if (generation !== loads) return;
    drawTable(metrics.groups);
    $('#plots').replaceChildren(...(metrics.series.length > 0 ? METRICS.map(([name, label, format]) => drawPlot(metrics.series, name, label, format)) : []));
    const list = await api('/v1/experiments');
    // The list has no results; each experiment's page has them.
    const experiments = await Promise.all(list.experiments.slice(0, 10).map((e) => (e.status === 'draft' ? e : api(`/v1/experiments/${e.id}`))));
    if (generation !== loads) return;
    drawExperiments(experiments);
    say(`${metrics.groups.reduce((n, g) => n + g.impressions, 0)} impressions from ${metrics.from} to ${metrics.to}`);
  } catch (error) {
    if (generation === loads) say(error.message, true);
  }
}

$('#key').value = key;
const now = new Date();
$('#to').value = local(new Date(now.getTime() + 3_600_000));
$('#from').value = local(new Date(now.getTime() - 7 * 86_400_000));
$('#key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  key = $('#key').value.trim();
  try {
    await api('/v1/models');
    sessionStorage.setItem('attnrec.key', key);
    $('#key-state').textContent = 'key accepted';
    await load();
  } catch (error) {
    $('#key-state').textContent = '';
    say(error.message, true);
  }
});
$('#query-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void load();
});
if (key) void load();
