// The ErrorTaxa Explorer page: starts from GET /api/state and the URL, then renders the view the
// URL names.  Views: models.js, errors.js, rules.js, compare.js; shared state: ctx.js.
import {api, onUnauthorized} from './api.js';
import {$, copyText, h} from './dom.js';
import {decompress, readHash, VIEWS} from './hashstate.js';
import {ctx, fail, notify, showCommand, update} from './ctx.js';
import * as models from './models.js';
import * as errors from './errors.js';
import * as rules from './rules.js';
import * as compare from './compare.js';

const VIEW_MODULES = {models, errors, rules, compare};
let lastModel;

function askToken() {
  const box = $('#login');
  const form = $('#login-form');
  const input = $('#login-token');
  const said = $('#login-error');
  box.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    const submit = async (event) => {
      event.preventDefault();
      said.textContent = '';
      try {
        await api('/api/login', {body: {token: input.value}});
        input.value = '';
        box.hidden = true;
        form.removeEventListener('submit', submit);
        resolve();
      } catch (error) {
        said.textContent = error.status === 401 || error.status === 403 ? 'That token is not accepted.' : error.message;
        input.select();
      }
    };
    form.addEventListener('submit', submit);
  });
}

function render() {
  const st = ctx.st;
  for (const view of VIEWS) {
    $(`#view-${view}`).hidden = view !== st.view;
    const tab = $(`#tab-${view}`);
    tab.classList.toggle('active', view === st.view);
    tab.setAttribute('aria-selected', String(view === st.view));
  }
  const select = $('#model-select');
  if (select.value !== (st.model || '')) select.value = st.model || '';
  if (st.model !== lastModel) {
    lastModel = st.model;
    models.markSelection();
    rules.modelChanged();
  }
  VIEW_MODULES[st.view].show();
  errors.syncModal();
}

function header() {
  const tx = ctx.server.taxonomy;
  $('#tx-name').textContent = tx.name;
  $('#tx-version').textContent = tx.version ? `v${tx.version}` : '';
  $('#source-line').textContent = `${ctx.server.models.length} models · ${ctx.server.images} images`;
  const select = $('#model-select');
  select.replaceChildren(h('option', {value: ''}, 'all models'), ...ctx.server.models.map((m) => h('option', {value: m}, m)));
  select.addEventListener('change', () => update({model: select.value}));
  for (const view of VIEWS) {
    $(`#tab-${view}`).addEventListener('click', () => update({view}, {push: true}));
  }
  $('#status').addEventListener('click', () => { $('#status').hidden = true; });
  $('#copy-link').addEventListener('click', async () => {
    notify((await copyText(location.href)) ? 'link copied: it opens this view with the same sources' : location.href);
  });
}

async function start() {
  onUnauthorized(askToken);
  ctx.server = await api('/api/state');
  ctx.baseTx = ctx.server.taxonomy.tx;
  ctx.tx = ctx.baseTx;
  ctx.st = readHash();
  lastModel = ctx.st.model;
  header();
  models.init();
  errors.init();
  rules.init();
  compare.init();
  showCommand('models', ctx.server.command);
  if (ctx.st.y) {
    try {
      await rules.restore(await decompress(ctx.st.y));
    } catch (error) {
      fail(error);
    }
  }
  ctx.render = render;
  window.addEventListener('hashchange', () => {
    ctx.st = readHash();
    render();
  });
  window.addEventListener('popstate', () => {
    ctx.st = readHash();
    render();
  });
  render();
  document.body.dataset.ready = '1';
}

start().catch(fail);
