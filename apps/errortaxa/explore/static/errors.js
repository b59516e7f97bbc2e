// The errors view: filters, a paged gallery of error cards, the explanation modal (large image,
// every rule tried, the models making the same error, notes), and export links.
import {api, url} from './api.js';
import {$, chip, h, put} from './dom.js';
import {categories, ctx, fail, FILTERS, notify, showCommand, txApi, txParam, update} from './ctx.js';

const PAGE = 60;
const TEXT_FILTERS = ['rule', 'target', 'pred', 'superclass', 'min_models'];
let shownKey = null;
let seq = 0;
let openKey = null;

/** The query of /api/errors (and /api/export) for the current view state. */
function query() {
  const st = ctx.st;
  const params = {sort: st.sort || 'models', offset: st.offset || 0, limit: PAGE, ...txParam()};
  for (const key of FILTERS) if (st[key]) params[key] = st[key];
  return params;
}

function option(value, label, selected) {
  return h('option', {value, selected: value === (selected || '')}, label);
}

/** Rule ids and superclass names of the YAML in use, for the filters' suggestions. */
function yamlNames(yaml) {
  const rules = new Set();
  const superclasses = new Set();
  let section = null;
  for (const line of (yaml || '').split('\n')) {
    const top = /^([A-Za-z_][\w-]*):/.exec(line);
    if (top) section = top[1];
    const superclass = /^ {2}([A-Za-z_][\w.-]*):\s*(#.*)?$/.exec(line);
    if (section === 'superclasses' && superclass) superclasses.add(superclass[1]);
    const rule = /^\s+rules:\s*$/.test(line) ? null : /^\s*- id:\s*([\w.-]+)/.exec(line);
    if (section === 'axes' && rule) rules.add(rule[1]);
  }
  return {rules: [...rules], superclasses: [...superclasses]};
}

function renderFilters() {
  const st = ctx.st;
  const names = ctx.yaml ? yamlNames(ctx.yaml) : {rules: ctx.server.rules || [], superclasses: ctx.server.superclasses || []};
  put($('#dl-rules'), names.rules.map((r) => h('option', {value: r})));
  put($('#dl-superclasses'), names.superclasses.map((r) => h('option', {value: r})));
  put($('#f-model'), option('', `all models (${ctx.server.models.length})`, st.model),
    ctx.server.models.map((m) => option(m, m, st.model)));
  put($('#f-category'), option('', 'any category', st.category), categories().map((c) => option(c, c.replaceAll('_', ' '), st.category)));
  put($('#f-group'), option('', 'any', st.group), (ctx.server.groups || []).map((g) => option(g, g, st.group)));
  $('#f-sort').value = st.sort || 'models';
  for (const key of TEXT_FILTERS) {
    const input = $(`#f-${key.replace('_', '-')}`);
    if (document.activeElement !== input) input.value = st[key] || '';
  }
  const chips = [];
  if (st.from_category || st.from_tx) {
    chips.push(filterChip(`moved: ${st.from_category || 'any'} → ${st.category || 'any'} (edited rules)`,
      {from_tx: '', from_category: '', category: ''}));
  }
  if (st.compare) {
    chips.push(filterChip(`${st.compare}: ${st.a} → ${st.b}`, {compare: '', a: '', b: ''}));
  }
  put($('#active-filters'), chips);
}

function filterChip(text, clear) {
  return h('span', {class: 'filter-chip'}, text,
    h('button', {type: 'button', class: 'link', title: 'remove this filter', 'aria-label': 'remove filter', text: '×',
      onclick: () => update(clear)}));
}

function card(record) {
  const image = record.image;
  const figure = h('article', {class: 'card', tabindex: 0, dataset: {image, pred: String(record.pred.id), model: record.model || ''}},
    h('div', {class: 'thumb'}, h('img', {src: url(`/thumb/${encodeURIComponent(image)}`), loading: 'lazy', alt: image, width: 256, height: 256})),
    h('div', {class: 'card-body'},
      h('div', {class: 'card-head'}, chip(categories(), record.category),
        h('span', {class: 'badge', title: 'models making this error', text: `${record.models_count} model${record.models_count === 1 ? '' : 's'}`})),
      h('div', {class: 'pair'},
        h('div', {}, h('span', {class: 'k', text: 'target'}), h('span', {class: 'v', text: record.target.name})),
        h('div', {}, h('span', {class: 'k', text: 'predicted'}), h('span', {class: 'v pred', text: record.pred.name}))),
      record.labels && record.labels.length
        ? h('div', {class: 'labels', title: 'correct labels'}, h('span', {class: 'k', text: 'labels'}), record.labels.map((l) => l.name).join(', '))
        : h('div', {class: 'labels muted', text: 'no correct label'}),
      h('ul', {class: 'evidence'}, (record.evidence_text || []).map((t) => h('li', {text: t}))),
      h('div', {class: 'card-foot muted'}, `rule ${record.rule}`, record.model ? ` · ${record.model}` : '', ` · ${image}`)));
  const open = () => update({open: image, open_pred: String(record.pred.id), open_model: record.model || ''});
  figure.addEventListener('click', open);
  figure.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  return figure;
}

function renderPage(answer) {
  const total = answer.total;
  const offset = answer.offset;
  const end = Math.min(total, offset + answer.records.length);
  put($('#gallery'), answer.records.length ? answer.records.map(card)
    : h('p', {class: 'empty', text: 'No errors match these filters.'}));
  const pager = (where) => put($(where),
    h('button', {type: 'button', disabled: offset <= 0, text: '← previous',
      onclick: () => update({offset: String(Math.max(0, offset - PAGE))})}),
    h('span', {class: 'range', text: total ? `${offset + 1}–${end} of ${total}` : '0 errors'}),
    h('button', {type: 'button', disabled: end >= total, text: 'next →', onclick: () => update({offset: String(offset + PAGE)})}));
  pager('#pager-top');
  pager('#pager-bottom');
  $('#error-total').textContent = `${total} error${total === 1 ? '' : 's'}`;
  const exportParams = {...query()};
  delete exportParams.offset;
  delete exportParams.limit;
  $('#export-csv').href = url('/api/export', {...exportParams, format: 'csv'});
  $('#export-jsonl').href = url('/api/export', {...exportParams, format: 'jsonl'});
  showCommand('errors', answer.command);
}

async function loadPage() {
  const params = query();
  const key = JSON.stringify(params);
  if (key === shownKey) return;
  const mine = ++seq;
  $('#gallery').classList.add('loading');
  try {
    const answer = await txApi('/api/errors', {...params, tx: undefined});
    if (mine !== seq) return;
    shownKey = key;
    renderPage(answer);
  } catch (error) {
    if (mine === seq) fail(error);
  } finally {
    if (mine === seq) $('#gallery').classList.remove('loading');
  }
}

function outcomeOf(trace) {
  const outcome = String(trace.outcome || '');
  return outcome in OUTCOME_WORDS ? outcome : 'not_evaluated';
}

const OUTCOME_WORDS = {held: 'held', failed: 'failed', not_evaluated: 'not evaluated', not_reached: 'not reached'};

const NOTE_WORDS = {label_problem: 'label problem', non_prototypical: 'non-prototypical'};

function noteItem(note) {
  return h('li', {}, h('strong', {text: NOTE_WORDS[note.kind] || note.kind}), note.note ? `: ${note.note}` : '');
}

/** The review box: the image's notes so far, and buttons appending one to the --notes file. */
function noteBox(image) {
  const note = h('textarea', {id: 'note-text', rows: 2, placeholder: 'a note (optional)'});
  const said = h('span', {class: 'muted', role: 'status'});
  const list = h('ul', {class: 'note-list'});
  api('/api/notes').then((answer) => {
    list.append(...answer.notes.filter((n) => n.image === image).map(noteItem));
  }).catch((error) => { said.textContent = error.message; });
  const send = (kind) => async () => {
    try {
      const body = {image, kind, note: note.value};
      await api('/api/notes', {body});
      list.append(noteItem(body));
      said.textContent = `saved as ${NOTE_WORDS[kind]}`;
      note.value = '';
    } catch (error) {
      said.textContent = error.message;
    }
  };
  return h('section', {class: 'notes'}, h('h3', {text: 'Review'}), list, note,
    h('div', {class: 'row'},
      h('button', {type: 'button', id: 'note-label', text: 'Label problem', onclick: send('label_problem')}),
      h('button', {type: 'button', id: 'note-proto', text: 'Non-prototypical', onclick: send('non_prototypical')}),
      said));
}

/** Open (or close) the explanation modal as the view state says; any view can show it. */
export async function syncModal() {
  const st = ctx.st;
  const dialog = $('#modal');
  const key = `${ctx.tx}|${st.open}|${st.open_pred}|${st.open_model}`;
  if (!st.open) {
    openKey = null;
    if (dialog.open) dialog.close();
    return;
  }
  if (key === openKey && dialog.open) return;
  openKey = key;
  const body = $('#modal-body');
  put(body, h('p', {class: 'muted', text: 'Loading the explanation…'}));
  if (!dialog.open) dialog.showModal();
  try {
    let model = st.open_model || st.model;
    let models = null;
    if (!model) {
      models = (await txApi('/api/error_models', {image: st.open, pred: st.open_pred})).models;
      model = models[0];
    }
    if (!model) throw new Error(`no model predicts class ${st.open_pred} for ${st.open}`);
    const ex = await txApi('/api/explain', {model, image: st.open});
    if (openKey !== key) return;
    models = ex.models || models || [];
    const traces = ex.traces || [];
    put(body,
      h('div', {class: 'modal-grid'},
        h('div', {class: 'modal-image'}, h('img', {src: url(`/image/${encodeURIComponent(ex.image || st.open)}`), alt: st.open}),
          h('h3', {text: `Models making the same error (${models.length})`}),
          h('ul', {class: 'model-list'}, models.map((m) => h('li', {},
            h('button', {type: 'button', class: 'link', text: m, title: 'select this model',
              onclick: () => update({model: m, open_model: m})})))),
          ctx.server.notes_enabled ? noteBox(ex.image || st.open) : null),
        h('div', {class: 'modal-text'},
          h('h2', {}, chip(categories(), ex.category), ' ', h('span', {class: 'muted', text: `rule ${ex.rule}`})),
          h('dl', {class: 'facts'},
            h('dt', {text: 'image'}), h('dd', {text: ex.image || st.open}),
            h('dt', {text: 'model'}), h('dd', {text: model}),
            h('dt', {text: 'target'}), h('dd', {text: ex.target ? ex.target.name : ''}),
            h('dt', {text: 'predicted'}), h('dd', {text: ex.pred ? ex.pred.name : ''}),
            h('dt', {text: 'labels'}), h('dd', {text: (ex.labels || []).map((l) => l.name).join(', ') || 'none'})),
          h('ul', {class: 'evidence'}, (ex.evidence_text || []).map((t) => h('li', {text: t}))),
          h('h3', {text: 'Every rule, in order'}),
          h('ol', {class: 'traces'}, traces.map((t) => {
            const outcome = outcomeOf(t);
            return h('li', {class: `trace ${outcome}`},
              h('span', {class: 'outcome', text: OUTCOME_WORDS[outcome]}),
              h('span', {class: 'rule-id', text: t.axis && t.axis !== 'category' ? `${t.axis}: ${t.rule}` : t.rule}),
              h('div', {class: 'reason', text: t.reason || t.detail || ''}),
              (t.evidence_text || []).length ? h('div', {class: 'reason ev', text: t.evidence_text.join('; ')}) : null);
          })))));
    showCommand('modal', ex.command);
  } catch (error) {
    if (openKey === key) put(body, h('p', {class: 'error', text: error.message}));
  }
}

export function init() {
  const set = (key) => (event) => update({[key]: event.target.value});
  $('#f-model').addEventListener('change', set('model'));
  $('#f-category').addEventListener('change', set('category'));
  $('#f-group').addEventListener('change', set('group'));
  $('#f-sort').addEventListener('change', set('sort'));
  for (const key of TEXT_FILTERS) {
    const input = $(`#f-${key.replace('_', '-')}`);
    // applied on Enter or on leaving the field: a half-typed class name is not asked for
    input.addEventListener('change', () => {
      if ((ctx.st[key] || '') !== input.value.trim()) update({[key]: input.value.trim()});
    });
  }
  $('#filters').addEventListener('submit', (event) => event.preventDefault());
  $('#clear-filters').addEventListener('click', () => update(Object.fromEntries(
    ['category', 'rule', 'target', 'pred', 'superclass', 'group', 'min_models', 'from_tx', 'from_category', 'compare', 'a', 'b']
      .map((k) => [k, '']))));
  const dialog = $('#modal');
  dialog.addEventListener('close', () => {
    if (ctx.st.open) update({open: '', open_pred: '', open_model: ''});
  });
  dialog.addEventListener('click', (event) => { if (event.target === dialog) dialog.close(); });
  $('#modal-close').addEventListener('click', () => dialog.close());
  $('#export-csv').addEventListener('click', () => notify('exporting the filtered errors as CSV'));
  $('#export-jsonl').addEventListener('click', () => notify('exporting the filtered errors as JSONL'));
}

export function show() {
  renderFilters();
  loadPage();
}
