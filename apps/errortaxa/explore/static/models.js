// The models view: the study's table (sortable) and its scatter plots (hand-drawn SVG); a row or a
// point selects that model everywhere.
import {$, $$, categoryColour, fmt, h, pct, put, s} from './dom.js';
import {categories, ctx, fail, showCommand, txApi, update} from './ctx.js';

let sortKey = 'mla';
let sortDesc = true;
let loadedTx = null;
let plots = null;
let plotsTx = null;

function interval(lo, hi) {
  return lo === null || lo === undefined ? '' : `[${fmt(lo)}, ${fmt(hi)}]`;
}

function sortValue(row, key) {
  if (key === 'model') return row.model;
  if (key.startsWith('share:')) return row.shares ? row.shares[key.slice(6)] : null;
  if (key.startsWith('extra:')) return row.extra ? row.extra[key.slice(6)] : null;
  return row[key];
}

/** The categories with a column: those some model has a decision in (or an unknown share). */
function shareCategories() {
  const rows = ctx.table ? ctx.table.rows : [];
  const shown = new Set(rows.flatMap((r) => Object.entries(r.shares || {}).filter(([, v]) => v !== 0).map(([c]) => c)));
  return categories().filter((c) => shown.has(c));
}

function renderTable() {
  const rows = [...(ctx.table ? ctx.table.rows : [])];
  const cats = shareCategories();
  const perClass = rows.some((r) => r.mla_class !== undefined);
  const extras = [...new Set(rows.flatMap((r) => Object.keys(r.extra || {})))];  // the --metadata columns
  const cols = [
    {key: 'model', label: 'model'},
    {key: 'top1', label: 'top-1'},
    {key: 'mla', label: 'MLA [95% CI]'},
    ...(perClass ? [{key: 'mla_class', label: 'MLA per class'}] : []),
    ...cats.map((c) => ({key: `share:${c}`, label: c.replaceAll('_', ' '), category: c})),
    ...extras.map((e) => ({key: `extra:${e}`, label: e})),
  ];
  rows.sort((a, b) => {
    const x = sortValue(a, sortKey);
    const y = sortValue(b, sortKey);
    const missing = (v) => v === null || v === undefined || Number.isNaN(v);
    if (missing(x) || missing(y)) return missing(x) - missing(y);
    const order = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return sortDesc ? -order : order;
  });
  const head = h('tr', {}, cols.map((col) => {
    const th = h('th', {scope: 'col', class: col.key === sortKey ? `sorted ${sortDesc ? 'desc' : 'asc'}` : '',
      dataset: {key: col.key}, title: 'sort'},
    col.category ? h('span', {class: 'swatch-dot'}) : null, col.label);
    if (col.category) th.querySelector('.swatch-dot').style.background = categoryColour(categories(), col.category);
    th.addEventListener('click', () => {
      if (sortKey === col.key) sortDesc = !sortDesc;
      else { sortKey = col.key; sortDesc = col.key !== 'model'; }
      renderTable();
    });
    return th;
  }));
  const body = rows.map((row) => {
    const tr = h('tr', {class: row.model === ctx.st.model ? 'selected' : '', dataset: {model: row.model}, tabindex: 0},
      h('th', {scope: 'row', class: 'model-name', text: row.model}),
      h('td', {class: 'num', title: interval(row.top1_lo, row.top1_hi)}, fmt(row.top1)),
      row.mla === null ? notEvaluated(row) : h('td', {class: 'num'}, fmt(row.mla), ' ',
        h('span', {class: 'ci', text: interval(row.mla_lo, row.mla_hi)})),
      perClass ? (row.mla_class === null ? notEvaluated(row) : h('td', {class: 'num', text: fmt(row.mla_class)})) : null,
      cats.map((c) => {
        const share = row.shares ? row.shares[c] : null;
        const td = h('td', {class: 'num share'}, share === null || share === undefined
          ? h('span', {class: 'not-evaluated', text: 'not evaluated'}) : pct(share));
        if (share) {
          const bar = h('span', {class: 'bar'});
          bar.style.width = `${Math.min(100, 100 * share)}%`;
          bar.style.background = categoryColour(categories(), c);
          td.prepend(bar);
        }
        if (row.counts && row.counts[c] !== undefined) td.title = `${row.counts[c]} samples`;
        const unknown = Object.entries((row.not_evaluated || {})[c] || {});
        if (unknown.length) {
          td.title += `; ${unknown.map(([rule, n]) => `rule ${rule} not evaluated on ${n} samples`).join(', ')}`;
        }
        return td;
      }),
      extras.map((e) => h('td', {class: 'extra', text: row.extra && row.extra[e] !== null && row.extra[e] !== undefined ? String(row.extra[e]) : ''})));
    const select = () => update({model: row.model === ctx.st.model ? '' : row.model});
    tr.addEventListener('click', select);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') select(); });
    return tr;
  });
  put($('#model-table'), h('thead', {}, head), h('tbody', {}, body));
  $('#model-count').textContent = `${rows.length} models`;
}

// an MLA cell whose figure a rule not evaluated on some samples might change (the API sends null)
function notEvaluated(row) {
  return h('td', {class: 'num', title: `a rule not evaluated on ${row.mla_not_evaluated} samples might change it`},
    h('span', {class: 'not-evaluated', text: 'not evaluated'}));
}

const W = 300;
const H = 220;
const M = {l: 44, r: 18, t: 10, b: 34};

function ticks(lo, hi, n = 5) {
  const step = (hi - lo) / (n - 1);
  const digits = Math.min(4, Math.max(2, Math.ceil(-Math.log10(step))));
  return Array.from({length: n}, (_, k) => ({value: lo + k * step, label: (lo + k * step).toFixed(digits)}));
}

function extent(values, pad = 0.05) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi - lo < 1e-9) { lo -= 0.05; hi += 0.05; }
  const d = (hi - lo) * pad;
  return [Math.max(0, lo - d), Math.min(1, hi + d)];
}

function renderPlot(plot) {
  const points = plot.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const [x0, x1] = extent(points.map((p) => p.x));
  const [y0, y1] = extent(points.map((p) => p.y));
  const sx = (v) => M.l + ((v - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const sy = (v) => H - M.b - ((v - y0) / (y1 - y0 || 1)) * (H - M.t - M.b);
  const colour = categoryColour(categories(), plot.y);
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'plot', role: 'img', 'aria-label': plot.title});
  for (const {value, label} of ticks(x0, x1)) {
    svg.append(s('line', {x1: sx(value), x2: sx(value), y1: M.t, y2: H - M.b, class: 'grid'}),
      s('text', {x: sx(value), y: H - M.b + 14, class: 'tick', 'text-anchor': 'middle', text: label}));
  }
  for (const {value, label} of ticks(y0, y1)) {
    svg.append(s('line', {x1: M.l, x2: W - M.r, y1: sy(value), y2: sy(value), class: 'grid'}),
      s('text', {x: M.l - 4, y: sy(value) + 3, class: 'tick', 'text-anchor': 'end', text: label}));
  }
  svg.append(s('text', {x: (M.l + W - M.r) / 2, y: H - 4, class: 'axis-label', 'text-anchor': 'middle',
    text: plot.x === 'top1' ? 'top-1 accuracy' : 'multi-label accuracy'}));
  if (plot.fit && points.length > 1) {
    const line = s('line', {x1: sx(x0), x2: sx(x1), y1: sy(plot.fit.intercept + plot.fit.slope * x0),
      y2: sy(plot.fit.intercept + plot.fit.slope * x1), class: 'fit'});
    line.style.stroke = colour;
    const clip = s('clipPath', {id: `clip-${plot.id}`}, s('rect', {x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b}));
    svg.append(clip, s('g', {'clip-path': `url(#clip-${plot.id})`}, line));
  }
  const selected = [];
  for (const p of points) {
    const dot = s('circle', {cx: sx(p.x), cy: sy(p.y), r: 4, class: 'pt', dataset: {model: p.model, x: p.x, y: p.y}, tabindex: -1});
    dot.style.fill = colour;
    if (p.model === ctx.st.model) { dot.classList.add('sel'); selected.push(dot); } else svg.append(dot);
  }
  svg.append(...selected);  // drawn last: on top
  return h('figure', {class: 'plot-card', dataset: {plot: plot.id}}, h('figcaption', {text: plot.title}), svg);
}

function renderPlots() {
  const box = $('#plots');
  if (!plots) {
    put(box, h('p', {class: 'muted', text: 'Plots are being computed…'}));
    return;
  }
  if (!plots.plots.length) {
    put(box, h('p', {class: 'muted', text: 'No plots for this study.'}));
    return;
  }
  // a category no model has an error in is one flat line of points: left out, and said so
  const shown = plots.plots.filter((p) => p.points.some((q) => q.y > 0));
  const empty = plots.plots.filter((p) => !shown.includes(p)).map((p) => p.y.replaceAll('_', ' '));
  put(box, shown.map(renderPlot),
    empty.length ? h('p', {class: 'muted small plots-note', text: `No errors in ${[...new Set(empty)].join(', ')}: not plotted.`}) : null);
}

function tooltip(event) {
  const tip = $('#tooltip');
  const dot = event.target.closest('circle.pt');
  if (!dot) {
    tip.hidden = true;
    return;
  }
  const figure = dot.closest('figure');
  put(tip, h('strong', {text: dot.dataset.model}), h('br'),
    `${figure.querySelector('figcaption').textContent}: x ${fmt(Number(dot.dataset.x))}, y ${fmt(Number(dot.dataset.y))}`);
  tip.hidden = false;
  const pad = 12;
  const x = Math.min(event.clientX + pad, window.innerWidth - tip.offsetWidth - 4);
  tip.style.left = `${x}px`;
  tip.style.top = `${event.clientY + pad}px`;
}

export function init() {
  const box = $('#plots');
  box.addEventListener('pointermove', tooltip);
  box.addEventListener('pointerover', tooltip);
  box.addEventListener('pointerleave', () => { $('#tooltip').hidden = true; });
  box.addEventListener('click', (event) => {
    const dot = event.target.closest('circle.pt');
    if (dot) update({model: dot.dataset.model});
  });
}

/** Fetch the plots of the taxonomy in use (after an apply they follow the table). */
async function loadPlots() {
  const tx = ctx.tx;
  if (plotsTx === tx && plots) return;
  plots = null;
  renderPlots();
  try {
    const answer = await txApi('/api/plots');
    if (tx !== ctx.tx) return;
    plots = answer;
    plotsTx = tx;
    renderPlots();
  } catch (error) {
    fail(error);
  }
}

/** The table of an apply's answer, shown at once; the study's full table (MLA per class) and the
 * plots of the new taxonomy follow. */
export function setTable(rows, command) {
  const before = new Map((ctx.table ? ctx.table.rows : []).map((r) => [r.model, r]));
  ctx.table = {rows: rows.map((r) => ({mla_class: null, extra: (before.get(r.model) || {}).extra, ...r})), command};
  loadedTx = null;
  renderTable();
  show();
}

export async function show() {
  if (loadedTx !== ctx.tx || !ctx.table) {
    try {
      const tx = ctx.tx;
      const answer = await txApi('/api/models');
      if (tx !== ctx.tx) return;
      ctx.table = answer;
      loadedTx = tx;
    } catch (error) {
      fail(error);
      return;
    }
  }
  renderTable();
  showCommand('models', ctx.table.command);
  await loadPlots();
  renderPlots();
}

/** Re-mark the selected model without refetching. */
export function markSelection() {
  for (const tr of $$('#model-table tbody tr')) tr.classList.toggle('selected', tr.dataset.model === ctx.st.model);
  if (plots) renderPlots();
}
