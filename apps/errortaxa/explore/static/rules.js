// The rules view: the taxonomy's YAML in an editor (textarea over a highlighted <pre>), problems
// while typing (POST /api/validate, debounced), Apply (POST /api/taxonomy): the transition matrix
// whose cells open the moved errors, the cases' pass / fail, download and save.
import {api, url} from './api.js';
import {compress} from './hashstate.js';
import {$, chip, debounce, h, put} from './dom.js';
import {categories, ctx, fail, notify, showCommand, update} from './ctx.js';
import {highlight} from './yaml.js';
import * as models from './models.js';

let problems = [];
let validateSeq = 0;
let painted = 0;
let shownLines = [];  // the highlighted HTML of each line on screen

const editor = () => $('#yaml-input');

function marks() {
  const map = new Map();
  for (const p of problems) {
    if (!p.line) continue;
    const kind = p.severity === 'warning' ? 'warn' : 'bad';
    if (map.get(p.line) !== 'bad') map.set(p.line, kind);
  }
  return map;
}

/** The lines [from, to) of `text` that differ from the loaded taxonomy (one span: its common
 * beginning and end trimmed), for the gutter's change bar. */
function changedRange(text) {
  const base = ctx.server.taxonomy.yaml.split('\n');
  const now = text.split('\n');
  let from = 0;
  while (from < base.length && from < now.length && base[from] === now[from]) from += 1;
  let endBase = base.length;
  let endNow = now.length;
  while (endNow > from && endBase > from && base[endBase - 1] === now[endNow - 1]) {
    endBase -= 1;
    endNow -= 1;
  }
  return [from, endNow];
}

/** Highlight the editor's text: only the lines that changed since the last paint are replaced. */
function paint() {
  painted = 0;
  const problemLines = marks();
  const lines = highlight(editor().value, problemLines);
  const code = $('#yaml-code');
  let start = 0;
  while (start < lines.length && start < shownLines.length && lines[start] === shownLines[start]) start += 1;
  let endNew = lines.length;
  let endOld = shownLines.length;
  while (endNew > start && endOld > start && lines[endNew - 1] === shownLines[endOld - 1]) {
    endNew -= 1;
    endOld -= 1;
  }
  for (let k = endOld - 1; k >= start; k--) code.children[k].remove();
  const fresh = document.createDocumentFragment();
  for (let k = start; k < endNew; k++) {
    const line = document.createElement('div');
    line.className = 'yl';
    line.innerHTML = lines[k];  // class names only: the tokenizer escapes the text
    fresh.append(line);
  }
  code.insertBefore(fresh, code.children[start] || null);
  shownLines = lines;
  const [changedFrom, changedTo] = changedRange(editor().value);
  const gutterKey = `${lines.length}|${[...problemLines].join(';')}|${changedFrom}-${changedTo}`;
  const gutter = $('#yaml-gutter');
  if (gutter.dataset.key !== gutterKey) {
    gutter.dataset.key = gutterKey;
    put(gutter, lines.map((_, k) => {
      const mark = problemLines.get(k + 1);
      const changed = k >= changedFrom && k < changedTo ? ' chg' : '';
      const cell = h('div', {class: `gl${mark ? ` ${mark}` : ''}${changed}`, text: String(k + 1)});
      if (mark) cell.title = problems.filter((p) => p.line === k + 1).map((p) => p.message).join('\n');
      return cell;
    }));
  }
  syncScroll();
}

function schedulePaint() {
  if (!painted) painted = requestAnimationFrame(paint);
}

function syncScroll() {
  const area = editor();
  $('#yaml-pre').scrollTop = area.scrollTop;
  $('#yaml-pre').scrollLeft = area.scrollLeft;
  $('#yaml-gutter').scrollTop = area.scrollTop;
}

function goToLine(line) {
  const area = editor();
  const lines = area.value.split('\n');
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + (lines[line - 1] || '').length);
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
  area.scrollTop = Math.max(0, (line - 5) * lineHeight);
  syncScroll();
}

function renderProblems(where = '#problems') {
  const list = $(where);
  if (!problems.length) {
    put(list, h('li', {class: 'ok', text: 'No problems.'}));
    return;
  }
  put(list, problems.map((p) => h('li', {class: p.severity === 'warning' ? 'warn' : 'bad'},
    p.line ? h('button', {type: 'button', class: 'link line-link', text: `line ${p.line}`, onclick: () => goToLine(p.line)}) : null,
    p.key ? h('code', {class: 'key', text: p.key}) : null,
    h('span', {text: p.message}))));
}

async function validate() {
  const mine = ++validateSeq;
  $('#validate-state').textContent = 'checking…';
  try {
    const answer = await api('/api/validate', {body: editor().value});
    if (mine !== validateSeq) return;
    problems = answer.problems || [];
    $('#validate-state').textContent = answer.ok ? 'valid' : `${problems.filter((p) => p.severity !== 'warning').length} problem(s)`;
    $('#validate-state').className = answer.ok ? 'pill ok' : 'pill bad';
    renderProblems();
    paint();
  } catch (error) {
    if (mine === validateSeq) {
      $('#validate-state').textContent = 'not checked';
      fail(error);
    }
  }
}

const validateSoon = debounce(validate, 300);

function matrix(title, from, to, counts, model) {
  if (!counts) return null;
  const total = counts.flat().reduce((a, b) => a + b, 0);
  const moved = counts.reduce((n, row, i) => n + row.reduce((m, v, j) => m + (from[i] === to[j] ? 0 : v), 0), 0);
  // only the categories with a decision on either side: the matrix stays small
  const rowsShown = from.map((a, i) => [a, i]).filter(([, i]) => counts[i].some(Boolean));
  const colsShown = to.map((b, j) => [b, j]).filter(([, j]) => counts.some((row) => row[j]));
  const head = h('tr', {}, h('th', {class: 'corner', text: 'old ↓ / new →'}),
    colsShown.map(([b]) => h('th', {scope: 'col', class: 'to'}, chip(categories(), b))), h('th', {class: 'total', text: 'before'}));
  const rowTotal = (i) => counts[i].reduce((a, b) => a + b, 0);
  const colTotal = (j) => counts.reduce((a, row) => a + row[j], 0);
  const foot = h('tr', {}, h('th', {scope: 'row', class: 'total', text: 'after'}),
    colsShown.map(([, j]) => h('td', {class: 'total', text: String(colTotal(j))})), h('td', {class: 'total', text: String(total)}));
  const rows = rowsShown.map(([a, i]) => h('tr', {}, h('th', {scope: 'row'}, chip(categories(), a)), colsShown.map(([b, j]) => {
    const n = counts[i][j];
    if (!n) return h('td', {class: 'zero', text: '·'});
    if (a === b) return h('td', {class: 'same', text: String(n)});
    return h('td', {class: 'moved'}, h('button', {type: 'button', class: 'cell', dataset: {from: a, to: b},
      title: `open the ${n} errors that moved from ${a} to ${b}`, text: String(n),
      onclick: () => update({view: 'errors', model: model || '', from_tx: ctx.applied.from_tx, from_category: a, category: b,
        compare: '', a: '', b: '', rule: '', target: '', pred: '', superclass: '', group: '', min_models: ''}, {push: true})}));
  }), h('td', {class: 'total', text: String(rowTotal(i))})));
  return h('section', {class: 'matrix-box'}, h('h3', {}, title, h('span', {class: 'muted', text: ` ${moved} of ${total} moved`})),
    h('div', {class: 'scroll'}, h('table', {class: 'matrix', dataset: {scope: model ? 'model' : 'all'}}, h('thead', {}, head), h('tbody', {}, rows), h('tfoot', {}, foot))));
}

function renderApplied() {
  const box = $('#apply-result');
  const answer = ctx.applied;
  if (!answer) {
    put(box, h('p', {class: 'muted', text: 'Edit the rules and press Apply: every loaded model is re-classified, and the '
      + 'transition matrix shows which decisions moved.'}));
    return;
  }
  const t = answer.transitions;
  const cases = answer.cases || [];
  const failed = cases.filter((c) => c.status === 'failed').length;
  put(box,
    matrix('All models', t.from, t.to, t.all, null),
    t.model && ctx.st.model ? matrix(`Model ${ctx.st.model}`, t.from, t.to, t.model, ctx.st.model) : null,
    h('section', {class: 'cases'}, h('h3', {}, 'Expected cases ', h('span', {class: failed ? 'pill bad' : 'pill ok',
      text: `${cases.length - failed} of ${cases.length} pass`})),
    h('ul', {id: 'case-list'}, cases.map((c) => h('li', {class: `case ${c.status}`},
      h('span', {class: 'outcome', text: c.status}),
      c.line ? h('button', {type: 'button', class: 'link', text: c.name, title: `line ${c.line}`, onclick: () => goToLine(c.line)})
        : h('span', {text: c.name}),
      c.message ? h('div', {class: 'reason', text: c.message}) : null)))));
  showCommand('rules', answer.command);
}

/** Use an ok POST /api/taxonomy answer everywhere. */
async function use(answer, yaml) {
  ctx.applied = answer;
  ctx.tx = answer.tx;
  ctx.yaml = answer.tx === ctx.baseTx ? null : yaml;
  ctx.y = ctx.yaml ? await compress(ctx.yaml) : null;
  models.setTable(answer.table, answer.command);
  renderHeader();
  renderApplied();
}

async function apply() {
  const yaml = editor().value;
  const button = $('#apply');
  button.disabled = true;
  notify('applying: re-classifying every loaded model…');
  try {
    const answer = await api('/api/taxonomy', {params: {model: ctx.st.model}, body: yaml});
    if (!answer.ok) {
      problems = answer.problems || [];
      renderProblems();
      paint();
      notify('the edit has problems: see the marked lines', 'error');
      return;
    }
    await use(answer, yaml);
    notify(`applied: taxonomy ${answer.tx.slice(0, 10)}`);
    update({});
  } catch (error) {
    fail(error);
  } finally {
    button.disabled = false;
  }
}

function renderHeader() {
  const edited = Boolean(ctx.yaml);
  $('#tx-state').hidden = !edited;
  $('#tx-state').textContent = edited ? `edited · ${ctx.tx.slice(0, 8)}` : '';
  $('#download').href = url('/api/taxonomy', {tx: ctx.tx});
  $('#save').hidden = !ctx.server.can_save;
  $('#reset').disabled = !edited && editor().value === ctx.server.taxonomy.yaml;
}

function reset() {
  editor().value = ctx.server.taxonomy.yaml;
  problems = [];
  renderProblems();
  paint();
  ctx.tx = ctx.baseTx;
  ctx.yaml = null;
  ctx.y = null;
  ctx.applied = null;
  renderApplied();
  renderHeader();
  update({from_tx: '', from_category: ''});
}

async function save() {
  try {
    await api('/api/save', {method: 'POST', params: {tx: ctx.tx}, body: {}});
    notify(`saved the applied taxonomy to ${ctx.server.taxonomy_path || 'the --taxonomy file'}`);
  } catch (error) {
    fail(error);
  }
}

export function init() {
  const area = editor();
  area.value = ctx.server.taxonomy.yaml;
  area.addEventListener('input', () => {
    schedulePaint();
    validateSoon();
    $('#reset').disabled = false;
  });
  area.addEventListener('scroll', syncScroll);
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Tab' && !event.shiftKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      document.execCommand('insertText', false, '  ');
    } else if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      apply();
    }
  });
  $('#apply').addEventListener('click', apply);
  $('#reset').addEventListener('click', reset);
  $('#save').addEventListener('click', save);
  paint();
  renderProblems();
  renderApplied();
  renderHeader();
}

/** A link carrying an edited taxonomy: show it in the editor and apply it before anything else. */
export async function restore(yaml) {
  editor().value = yaml;
  paint();
  const answer = await api('/api/taxonomy', {params: {model: ctx.st.model}, body: yaml});
  if (!answer.ok) {
    problems = answer.problems || [];
    renderProblems();
    paint();
    throw new Error('the taxonomy in this link has problems (see the Rules tab)');
  }
  await use(answer, yaml);
}

export function show() {
  renderHeader();
  renderApplied();
  if (!ctx.applied) showCommand('rules', ctx.server.command);
  schedulePaint();
}

/** The selected model changed: its transition matrix needs the server (counts per model). */
export async function modelChanged() {
  if (!ctx.applied || !ctx.yaml) return;
  try {
    const answer = await api('/api/taxonomy', {params: {model: ctx.st.model}, body: ctx.yaml});
    if (answer.ok) {
      ctx.applied = answer;
      ctx.tx = answer.tx;
      if (ctx.st.view === 'rules') renderApplied();
    }
  } catch (error) {
    fail(error);
  }
}
