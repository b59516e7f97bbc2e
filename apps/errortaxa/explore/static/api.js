// The explorer's JSON API as the page uses it: one fetch wrapper, 401 -> the token box.

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && typeof body === 'object' && body.error ? body.error : null;
    super(error ? error.message : `HTTP ${status}`);
    this.status = status;
    this.field = error ? error.field : null;
    this.body = body;
  }
}

let askToken = null;
let pendingLogin = null;

/** Called on 401 with no argument; resolves once a token was accepted. */
export function onUnauthorized(handler) {
  askToken = handler;
}

/** A same-origin URL of `path` with the non-empty `params` as its query. */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Call the API. `body` is sent as text (YAML) when a string, as JSON otherwise.
 * Answers the parsed JSON (or text); throws ApiError on 4xx/5xx.
 */
export async function api(path, {params = {}, method = 'GET', body} = {}) {
  const init = {method, credentials: 'same-origin', headers: {Accept: 'application/json'}};
  if (body !== undefined) {
    init.method = method === 'GET' ? 'POST' : method;
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['Content-Type'] = typeof body === 'string' ? 'text/yaml; charset=utf-8' : 'application/json';
  }
  const response = await fetch(url(path, params), init);
  if (response.status === 401 && askToken && path !== '/api/login') {
    pendingLogin = pendingLogin || askToken().finally(() => { pendingLogin = null; });
    await pendingLogin;
    return api(path, {params, method, body});
  }
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
