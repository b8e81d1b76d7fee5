// attnrec attention inspector: a static page (no build step) that asks the
// API for attention reports and draws them. The API key lives in
// sessionStorage (this tab only). A report embedded as
// window.ATTNREC_REPORTS (jobs/inspect --format html) is drawn without the API.

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (k === 'class') node.className = v;
    else if (k === 'style') node.style.cssText = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

// Viridis, sampled: a perceptually uniform scale that stays readable in grey.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(x) {
  const t = Math.max(0, Math.min(1, x)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t));
  const f = t - i;
  return VIRIDIS[i].map((c, j) => Math.round(c + f * (VIRIDIS[i + 1][j] - c)));
}

/** Draws a T × T matrix into a canvas at one pixel per cell, with the hovered key column and query row outlined. */
function drawMatrix(canvas, matrix, max, hover) {
  const T = matrix.length;
  canvas.width = T;
  canvas.height = T;
  const context = canvas.getContext('2d');
  const image = context.createImageData(T, T);
  for (let q = 0; q < T; q++) {
    for (let k = 0; k < T; k++) {
      const [r, g, b] = k <= q ? colour(matrix[q][k] / max) : [245, 245, 245];
      const at = 4 * (q * T + k);
      image.data[at] = r;
      image.data[at + 1] = g;
      image.data[at + 2] = b;
      image.data[at + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  if (hover !== null && hover < T) {
    context.fillStyle = 'rgba(217, 72, 15, 0.35)';
    context.fillRect(hover, hover, 1, T - hover); // who attended to the hovered event
    context.fillRect(0, hover, hover + 1, 1); // what the hovered event attended to
  }
}

function legend(max) {
  const canvas = el('canvas', { width: 160, height: 1 });
  const context = canvas.getContext('2d');
  for (let x = 0; x < 160; x++) {
    const [r, g, b] = colour(x / 159);
    context.fillStyle = `rgb(${r},${g},${b})`;
    context.fillRect(x, 0, 1, 1);
  }
  return el('div', { class: 'legend', 'data-testid': 'legend' }, el('span', {}, '0'), canvas, el('span', {}, max.toFixed(3)), el('span', {}, 'attention weight'));
}

function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)}`;
}

function barRow(values, label, testid, signed) {
  const max = Math.max(1e-12, ...values.map((v) => Math.abs(v ?? 0)));
  return [
    el('div', { class: 'row-label' }, label),
    el(
      'div',
      { class: 'bars', 'data-testid': testid },
      ...values.map((v, position) =>
        el(
          'div',
          { class: `bar${signed && v < 0 ? ' negative' : ''}`, 'data-position': String(position), title: v === null ? 'n/a' : v.toPrecision(3) },
          el('i', { style: `height:${v === null ? 0 : Math.max(1, (32 * Math.abs(v)) / max)}px` }),
          el('span', {}, v === null ? '–' : signed ? (v * 100).toFixed(2) : v.toFixed(2)),
        ),
      ),
    ),
  ];
}

/** One report as a panel: timeline, rollout and leave-one-out bars, predictions, heatmaps. */
function renderReport(report, title) {
  const { layers, heads, length: T, weights } = report.attention;
  const members = report.attention.members ?? 1;
  const blocks = report.attention.blocks ?? layers;
  // An ensemble's layers come member by member; name both when there is more than one member.
  const layerName = (l) => (members > 1 ? `member ${Math.floor(l / blocks) + 1} · layer ${(l % blocks) + 1}` : `layer ${l + 1}`);
  let hover = null;
  const matrices = weights.flatMap((layer, l) => layer[0].map((matrix, h) => ({ l, h, matrix, max: Math.max(1e-9, ...matrix.flat()) })));
  const globalMax = Math.max(...matrices.map((m) => m.max));

  const cards = report.history.map((event) =>
    el(
      'div',
      { class: 'card', 'data-position': String(event.position), 'data-testid': 'history-event', title: `${event.item} · ${event.type}${event.timestamp ? ` · ${event.timestamp}` : ''}` },
      el('span', { class: `badge ${event.type}` }, event.type),
      el('div', { class: 'title' }, event.title ?? event.item),
      el('div', { class: 'meta' }, event.category ?? '—'),
      el('div', { class: 'meta' }, formatTime(event.timestamp)),
    ),
  );
  const track = el(
    'div',
    { class: 'track' },
    el('div', { class: 'timeline', 'data-testid': 'timeline' }, ...cards),
    ...barRow(report.rollout, 'attention rollout from the last event', 'rollout', false),
    ...barRow(report.leaveOneOut.map((x) => (x ? x.drop : null)), `leave-one-out: drop in P(${report.target.title ?? report.target.item}) without the event (percentage points)`, 'leave-one-out', true),
  );

  const predictions = el(
    'ol',
    { class: 'predictions', 'data-testid': 'predictions' },
    ...report.predictions.map((p) =>
      el(
        'li',
        { class: p.item === report.target.item ? 'target' : '', 'data-testid': 'prediction' },
        el('span', { title: p.item }, p.title ?? p.item),
        el('div', {}, el('div', { class: 'p', style: `width:${Math.max(1, 100 * (p.probability / report.predictions[0].probability))}%` })),
        el('span', {}, `${(100 * p.probability).toFixed(2)}%`),
      ),
    ),
  );

  const figures = matrices.map((m) => {
    const canvas = el('canvas', { 'data-testid': 'heatmap', 'data-layer': String(m.l), 'data-head': String(m.h) });
    canvas.addEventListener('click', () => zoom(m, globalMax, hover));
    canvas.addEventListener('mousemove', (event) => {
      const rect = canvas.getBoundingClientRect();
      setHover(Math.min(T - 1, Math.floor(((event.clientX - rect.left) / rect.width) * T)));
    });
    return { m, canvas, figure: el('figure', {}, canvas, el('figcaption', {}, `${layerName(m.l)} · head ${m.h + 1}`)) };
  });
  const grid = el('div', { class: 'heatmaps', style: `--heads:${heads}` }, ...figures.map((f) => f.figure));

  function draw() {
    for (const f of figures) drawMatrix(f.canvas, f.m.matrix, globalMax, hover);
    for (const node of panel.querySelectorAll('[data-position]')) node.classList.toggle('hover', hover !== null && node.getAttribute('data-position') === String(hover));
    panel.setAttribute('data-hover', hover === null ? '' : String(hover));
  }
  function setHover(position) {
    if (position === hover) return;
    hover = position;
    requestAnimationFrame(draw);
  }
  for (const node of [...cards, ...track.querySelectorAll('.bar')]) {
    node.addEventListener('mouseenter', () => setHover(Number(node.getAttribute('data-position'))));
    node.addEventListener('mouseleave', () => setHover(null));
  }

  const ignored = report.ignored.unknownItems + report.ignored.beyondWindow;
  const panel = el(
    'section',
    { class: 'panel', 'data-testid': 'panel', 'data-version': String(report.modelVersion) },
    el('h2', {}, title),
    el('p', { class: 'muted' }, `${T} events read${ignored ? ` (${report.ignored.unknownItems} on unknown items and ${report.ignored.beyondWindow} older than the model's window left out)` : ''}; ${members > 1 ? `${members} ensemble members × ${blocks} layers` : `${layers} layers`} × ${heads} heads. Hover an event to follow it everywhere.`),
    el('h3', {}, 'History, oldest first'),
    track,
    el('h3', {}, 'Predicted next items'),
    predictions,
    el('h3', {}, 'Attention per layer and head (row: the event attending; column: the event attended to)'),
    legend(globalMax),
    grid,
  );
  draw();
  return panel;
}

function zoom(m, max, hover) {
  const dialog = $('#zoom');
  drawMatrix($('canvas', dialog), m.matrix, max, hover);
  $('.caption', dialog).textContent = `${layerName(m.l)} · head ${m.h + 1} — row: the event attending, column: the event attended to`;
  dialog.showModal();
}

// ---- talking to the API -------------------------------------------------

const keyStore = {
  get: () => sessionStorage.getItem('attnrec.key') ?? '',
  set: (key) => sessionStorage.setItem('attnrec.key', key),
};

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { authorization: `Bearer ${keyStore.get()}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ? `${body.code}: ${body.detail}` : `HTTP ${response.status}`);
  return body;
}

function status(text, error = false) {
  const node = $('#status');
  node.textContent = text;
  node.classList.toggle('error', error);
}

async function loadVersions() {
  const { serving, versions } = await api('/v1/models');
  const ready = versions.filter((v) => v.status === 'ready');
  for (const select of [$('#version-a'), $('#version-b')]) {
    const keepEmpty = select.id === 'version-b';
    select.replaceChildren(...(keepEmpty ? [el('option', { value: '' }, '—')] : []), ...ready.map((v) => el('option', { value: String(v.version) }, `v${v.version}${v.version === serving ? ' (serving)' : ''}`)));
  }
  if (serving) $('#version-a').value = String(serving);
  $('#key-state').textContent = `key accepted · ${ready.length} model versions`;
}

/** Inspections started so far: an answer to an older one (a slower request still in flight) is dropped, not drawn over a newer one's (as on the /online page). */
let inspections = 0;

async function inspect(event) {
  event?.preventDefault();
  const generation = ++inspections;
  const user = $('#user').value.trim();
  const sessionText = $('#session').value.trim();
  const k = Number($('#k').value) || 10;
  const versions = [$('#version-a').value, $('#version-b').value].filter(Boolean);
  if (!user && !sessionText) return status('Give a user id or paste a session.', true);
  let session;
  if (!user) {
    try {
      session = JSON.parse(sessionText);
      if (!Array.isArray(session)) throw new Error('not a list');
    } catch (error) {
      return status(`The session must be a JSON list of {"item", "type"}: ${error.message}`, true);
    }
  }
  status('Loading…');
  try {
    const reports = await Promise.all(
      versions.map((v) =>
        user
          ? api(`/v1/users/${encodeURIComponent(user)}/attention?k=${k}&version=${v}`)
          : api('/v1/sessions/attention', { method: 'POST', body: JSON.stringify({ events: session, k, version: Number(v) }) }),
      ),
    );
    if (generation !== inspections) return;
    $('#panels').replaceChildren(...reports.map((r) => renderReport(r, `${user ? `User ${user}` : 'Session'} · model v${r.modelVersion}`)));
    status(`${reports[0].history.length} events · top prediction ${reports[0].predictions[0]?.title ?? reports[0].predictions[0]?.item ?? '—'}`);
  } catch (error) {
    if (generation === inspections) status(error.message, true);
  }
}

function start() {
  if (window.ATTNREC_REPORTS) {
    // An exported report: no API, no form.
    $('#key-form').hidden = true;
    $('#query').hidden = true;
    $('#panels').replaceChildren(...window.ATTNREC_REPORTS.map((r) => renderReport(r, r.title ?? `model v${r.modelVersion}`)));
    return;
  }
  $('#key').value = keyStore.get();
  $('#key-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    keyStore.set($('#key').value.trim());
    try {
      await loadVersions();
      status('');
    } catch (error) {
      $('#key-state').textContent = '';
      status(error.message, true);
    }
  });
  $('#query-form').addEventListener('submit', inspect);
  if (keyStore.get()) loadVersions().catch((error) => status(error.message, true));
}

start();
