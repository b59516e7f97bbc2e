// A small YAML tokenizer for highlighting (not a parser): per line, keys, strings, numbers,
// booleans, comments, flow punctuation, and the lines of block scalars (`>` / `|`).

const ESCAPES = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'};
const escape = (text) => text.replace(/[&<>"]/g, (c) => ESCAPES[c]);
const span = (cls, text) => (cls ? `<span class="y-${cls}">${escape(text)}</span>` : escape(text));

const KEY = /^(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^\s#'"{}[\],:&*!|>%@`-][^#{}[\],:]*?|-[^\s#{}[\],:][^#{}[\],:]*?)(?=\s*:(?:\s|$|[,}\]]))/;
const SCALAR_WORDS = /^(?:true|false|null|yes|no|on|off|~)$/i;
const NUMBER = /^[-+]?(?:\d[\d_]*(?:\.\d*)?(?:e[-+]?\d+)?|\.\d+|0x[0-9a-f]+|\.inf|\.nan)$/i;

function scalar(text) {
  const trimmed = text.trim();
  if (!trimmed) return escape(text);
  const lead = text.slice(0, text.indexOf(trimmed));
  const tail = text.slice(lead.length + trimmed.length);
  let cls = 'str';
  if (NUMBER.test(trimmed)) cls = 'num';
  else if (SCALAR_WORDS.test(trimmed)) cls = 'bool';
  else if (/^[&*][^\s]+$/.test(trimmed)) cls = 'anchor';
  return escape(lead) + span(cls, trimmed) + escape(tail);
}

/** Tokens of the part of a line after its indentation, dashes and key. */
function value(text, flow) {
  let out = '';
  let i = 0;
  let plain = '';
  const flush = () => { out += scalar(plain); plain = ''; };
  while (i < text.length) {
    const c = text[i];
    const rest = text.slice(i);
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      flush();
      out += span('comment', rest);
      break;
    }
    if ((c === '"' || c === "'") && !plain.trim()) {
      flush();
      const end = c === '"' ? /^"(?:[^"\\]|\\.)*"?/.exec(rest) : /^'(?:[^']|'')*'?/.exec(rest);
      out += span('str', end[0]);
      i += end[0].length;
      continue;
    }
    if (flow > 0 || '{['.includes(c)) {
      if ('{}[],'.includes(c)) {
        flush();
        flow += '{['.includes(c) ? 1 : '}]'.includes(c) ? -1 : 0;
        out += span('punct', c);
        i += 1;
        continue;
      }
      const key = !plain.trim() && KEY.exec(rest);
      if (key) {
        flush();
        out += span('key', key[0]);
        i += key[0].length;
        continue;
      }
      if (c === ':' && (rest.length === 1 || /\s/.test(rest[1]))) {
        flush();
        out += span('punct', ':');
        i += 1;
        continue;
      }
    }
    plain += c;
    i += 1;
  }
  flush();
  return {html: out, flow};
}

/**
 * Highlighted HTML of `text`, one string per line (class names only: fits a strict CSP).
 * `marks` maps 1-based line numbers to a class added to that line (problems).
 */
export function highlight(text, marks = new Map()) {
  const lines = text.split('\n');
  const out = [];
  let block = -1;   // indentation of the key that opened a block scalar, -1 outside one
  let flow = 0;     // depth of an open flow collection spanning lines
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    const indent = /^\s*/.exec(line)[0].length;
    let html;
    if (block >= 0 && (line.trim() === '' || indent > block)) {
      html = span('str', line);
    } else {
      block = -1;
      let rest = line.slice(indent);
      if (indent === 0 && /^[\w"'-]/.test(rest)) flow = 0;  // a top-level entry: an unclosed [ or { above was an error
      html = escape(line.slice(0, indent));
      if (/^(---|\.\.\.)(\s|$)/.test(rest) && indent === 0) {
        html += span('punct', rest);
        rest = '';
      }
      let keyIndent = indent;
      while (flow === 0 && /^-(\s|$)/.test(rest)) {
        const dash = /^-\s*/.exec(rest)[0];
        html += span('dash', '-') + escape(dash.slice(1));
        keyIndent += dash.length;
        rest = rest.slice(dash.length);
      }
      const key = flow === 0 && !rest.startsWith('#') ? KEY.exec(rest) : null;
      if (key) {
        html += span('key', key[0]);
        rest = rest.slice(key[0].length);
        const colon = /^\s*:/.exec(rest)[0];
        html += span('punct', colon);
        rest = rest.slice(colon.length);
      }
      if (/^\s*[>|][-+0-9]*\s*(#.*)?$/.test(rest)) {
        const indicator = /^\s*[>|][-+0-9]*/.exec(rest)[0];
        html += span('punct', indicator);
        const comment = rest.slice(indicator.length);
        html += comment.trim() ? escape(/^\s*/.exec(comment)[0]) + span('comment', comment.trim()) : escape(comment);
        block = key ? keyIndent : indent;
      } else {
        const tokens = value(rest, flow);
        html += tokens.html;
        flow = Math.max(0, tokens.flow);
      }
    }
    const mark = marks.get(n + 1);
    out.push(mark ? `<span class="y-line ${mark}">${html || ' '}</span>` : html);
  }
  return out;
}
