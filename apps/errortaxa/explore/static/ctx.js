// What every view shares: the server's state, the taxonomy in use, the view state (mirrored in the
// URL), and the helpers that call the API with the current taxonomy.
import {api, ApiError} from './api.js';
import {writeHash} from './hashstate.js';
import {$, copyText, h, put} from './dom.js';

export const ctx = {
  server: null,      // GET /api/state
  baseTx: null,      // the loaded taxonomy's hash
  tx: null,          // the taxonomy in use (the loaded one or an applied edit)
  yaml: null,        // the applied edited YAML, null while the loaded taxonomy is in use
  y: null,           // `yaml` compressed for the URL
  applied: null,     // the last POST /api/taxonomy answer that was ok
  table: null,       // GET /api/models (or the rows of the last apply)
  st: {view: 'models'},
  render: () => {},  // set by app.js
};

/** Filters of the errors view; changing one returns the gallery to its first page. */
export const FILTERS = ['model', 'category', 'rule', 'target', 'pred', 'superclass', 'group', 'min_models',
  'from_tx', 'from_category', 'compare', 'a', 'b'];

/** Change the view state, write it to the URL and re-render. */
export function update(patch, {push = false} = {}) {
  const next = {...ctx.st, ...patch};
  if (FILTERS.some((k) => k in patch && patch[k] !== ctx.st[k]) && !('offset' in patch)) next.offset = '';
  for (const [key, value] of Object.entries(next)) if (value === '' || value === null || value === undefined) delete next[key];
  next.y = ctx.y || undefined;
  if (!next.y) delete next.y;
  ctx.st = next;
  writeHash(ctx.st, push);
  ctx.render();
}

/** The `tx` parameter: absent while the loaded taxonomy is in use. */
export function txParam() {
  return ctx.tx && ctx.tx !== ctx.baseTx ? {tx: ctx.tx} : {};
}

/** POST the edited YAML again (the server forgot it: evicted, or restarted) and use its new hash. */
async function reapply() {
  const answer = await api('/api/taxonomy', {params: {model: ctx.st.model}, body: ctx.yaml});
  if (!answer.ok) throw new Error('the taxonomy in the link does not validate any more');
  ctx.tx = answer.tx;
  ctx.applied = answer;
  return answer;
}

/** Call the API with the current taxonomy; an unknown `tx` is re-posted from the YAML once. */
export async function txApi(path, params = {}, options = {}) {
  const call = () => api(path, {...options, params: {...params, ...txParam()}});
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && error.field === 'tx' && ctx.yaml) {
      await reapply();
      return call();
    }
    throw error;
  }
}

/** A message in the status line (errors stay until the next message). */
let statusTimer = 0;

/** A message in the status line: information fades after a few seconds, errors stay until clicked. */
export function notify(message, kind = 'info') {
  const box = $('#status');
  put(box, message);
  box.className = `status ${kind}`;
  box.hidden = !message;
  clearTimeout(statusTimer);
  if (kind === 'info' && message) statusTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

export function fail(error) {
  notify(error instanceof Error ? error.message : String(error), 'error');
}

/** The CLI command computing a view's figures, with a copy button (one bar per view). */
export function showCommand(view, command) {
  const bar = $(`#cmd-${view}`);
  if (!bar) return;
  if (!command) {
    bar.hidden = true;
    return;
  }
  bar.hidden = false;
  const button = h('button', {class: 'small', type: 'button', text: 'Copy'});
  button.addEventListener('click', async () => {
    button.textContent = (await copyText(command)) ? 'Copied' : 'Copy failed';
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });
  put(bar, h('span', {class: 'cmd-label', text: 'CLI'}), h('code', {class: 'cmd-text', text: command}), button);
}

/** The categories in the taxonomy in use, precedence order. */
export function categories() {
  return (ctx.applied && ctx.applied.categories) || ctx.server.categories;
}
