// Two checkpoints side by side: errors fixed, introduced and changed, with McNemar's test; each
// count opens the gallery of those errors.
import {$, fmt, h, put} from './dom.js';
import {ctx, fail, showCommand, txApi, update} from './ctx.js';

let shownKey = null;

function pick(id, value) {
  put($(id), ctx.server.models.map((m) => h('option', {value: m, selected: m === value}, m)));
}

function pair() {
  const names = ctx.server.models;
  const a = ctx.st.a || ctx.st.model || names[0];
  const b = ctx.st.b || names.find((m) => m !== a) || a;
  return {a, b};
}

export function init() {
  const change = () => update({a: $('#cmp-a').value, b: $('#cmp-b').value});
  $('#cmp-a').addEventListener('change', change);
  $('#cmp-b').addEventListener('change', change);
  $('#cmp-swap').addEventListener('click', () => {
    const {a, b} = pair();
    update({a: b, b: a});
  });
}

function stat(kind, label, n, help, a, b) {
  return h('div', {class: `stat ${kind}`},
    h('div', {class: 'stat-n', text: String(n)}),
    h('div', {class: 'stat-label', text: label}),
    h('div', {class: 'muted small', text: help}),
    h('button', {type: 'button', class: 'small', dataset: {compare: kind}, text: 'show these errors', disabled: !n,
      onclick: () => update({view: 'errors', compare: kind, a, b, model: '',
        from_tx: '', from_category: '', category: ''}, {push: true})}));
}

export async function show() {
  const {a, b} = pair();
  pick('#cmp-a', a);
  pick('#cmp-b', b);
  const key = `${ctx.tx}|${a}|${b}`;
  if (key === shownKey) return;
  const box = $('#compare-result');
  put(box, h('p', {class: 'muted', text: 'Comparing…'}));
  try {
    const answer = await txApi('/api/compare', {a, b});
    shownKey = key;
    const m = answer.mcnemar || {};
    put(box,
      h('div', {class: 'stats'},
        stat('fixed', 'fixed', answer.fixed, `errors of ${a} that ${b} gets right`, a, b),
        stat('introduced', 'introduced', answer.introduced, `errors of ${b} that ${a} got right`, a, b),
        stat('changed', 'changed category', answer.changed, 'errors of both, in different categories', a, b)),
      h('p', {class: 'mcnemar'}, h('strong', {text: "McNemar's test: "}),
        `b = ${m.b}, c = ${m.c}, statistic = ${fmt(m.statistic)}, p = ${m.p === undefined ? '–' : Number(m.p).toPrecision(3)}`,
        h('span', {class: 'muted', text: m.p !== undefined && m.p < 0.05 ? ' (the two differ at the 5% level)' : ' (no significant difference at the 5% level)'}),
        m.accuracy_a !== undefined ? h('div', {class: 'muted small',
          text: `multi-label accuracy: ${a} ${fmt(m.accuracy_a)}, ${b} ${fmt(m.accuracy_b)} (${m.samples} images)`}) : null));
    showCommand('compare', answer.command);
  } catch (error) {
    put(box, h('p', {class: 'error', text: error.message}));
    fail(error);
  }
}
