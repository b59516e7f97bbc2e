// Small DOM helpers: elements built with properties and children, never from HTML strings.
const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = String(value);
    else if (key === 'class') el.setAttribute('class', value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' && 'value' in el) el.value = value;
    else if (key === 'checked' || key === 'disabled' || key === 'hidden' || key === 'selected') el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h('div', {class: 'x', onclick: f}, 'text', child). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Replace every child of `el`. */
export function put(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return Number(value).toFixed(digits);
}

export function pct(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return `${(100 * value).toFixed(digits)}%`;
}

/** Copy text to the clipboard; falls back to a selected textarea where the API is missing. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', {class: 'offscreen', readonly: true, value: text});
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const PALETTE = ['#3b7dd8', '#2aa876', '#8e6bd1', '#d9a21b', '#15a3b5', '#e0662f', '#c2459b', '#7a8b2b',
  '#d63c3c', '#5f6b7a', '#a0522d', '#4aa3df', '#9acd32', '#b8860b', '#6a5acd', '#708090'];

/** The colour of a category: its place in the taxonomy's precedence order. */
export function categoryColour(categories, category) {
  const k = categories.indexOf(category);
  return k < 0 ? '#888' : PALETTE[k % PALETTE.length];
}

/** A coloured chip naming a category. */
export function chip(categories, category) {
  const el = h('span', {class: 'chip', text: (category || '').replaceAll('_', ' ')});
  el.style.setProperty('--c', categoryColour(categories, category));
  return el;
}
