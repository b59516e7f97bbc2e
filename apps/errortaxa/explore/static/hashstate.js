// The state of a view in location.hash (URLSearchParams); the edited YAML travels compressed
// (deflate-raw + base64url) in `y`.  The token never goes here.

const KEYS = ['view', 'model', 'category', 'rule', 'target', 'pred', 'superclass', 'group', 'min_models',
  'sort', 'offset', 'open', 'open_pred', 'open_model', 'from_tx', 'from_category', 'compare', 'a', 'b', 'y'];
export const VIEWS = ['models', 'errors', 'rules', 'compare'];

export function readHash(hash = location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const state = {};
  for (const key of KEYS) {
    const value = params.get(key);
    if (value !== null && value !== '') state[key] = value;
  }
  if (!VIEWS.includes(state.view)) state.view = 'models';
  return state;
}

function hashOf(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) {
    const value = state[key];
    if (value !== undefined && value !== null && value !== '' && !(key === 'offset' && Number(value) === 0)) {
      params.set(key, String(value));
    }
  }
  return `#${params.toString()}`;
}

/** Write the state into the address; `push` makes a history entry (view changes), else replaces. */
export function writeHash(state, push = false) {
  const next = hashOf(state);
  if (next === location.hash || (next === '#' && !location.hash)) return;
  if (push) history.pushState(null, '', next);
  else history.replaceState(null, '', next);
}

function toBase64Url(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  const b64 = text.replaceAll('-', '+').replaceAll('_', '/');
  const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function pipe(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

export async function compress(text) {
  return toBase64Url(await pipe(new TextEncoder().encode(text), new CompressionStream('deflate-raw')));
}

export async function decompress(token) {
  return new TextDecoder().decode(await pipe(fromBase64Url(token), new DecompressionStream('deflate-raw')));
}
