// Text helpers of the playground page, free of the DOM so Node's test runner checks them
// too (playground/tests/node/text.test.mjs).
//
// The YAML here is only ever walked line by line, never parsed: the policy's own YAML
// reader (inside the Wasm module) decides what a document means. These helpers find the
// line a settings field sits on and change one check's mode in place, keeping the user's
// comments and layout, which a parse-and-print round trip would lose.

/**
 * The key a block-mapping line opens: `{indent, key, rest}`, or null when the line holds
 * no `key:` (a list item, a comment, a flow collection, a complex `?` key). One pass over
 * the line: a link controls the settings text, and a pattern that backtracks would let a
 * line of spaces freeze the page.
 */
function keyAt(line) {
  let i = 0;
  while (i < line.length && line[i] === ' ') i++;
  if (i === line.length) return null;
  const indent = i;
  const first = line[i];
  let key;
  let colon;
  if (first === '?' && (i + 1 === line.length || isSpace(line[i + 1]))) {
    // A complex key, `? key` with its value on a later `: value` line.
    key = withoutComment(line.slice(i + 1)).trim();
    const quote = key[0];
    if ((quote === '"' || quote === "'") && key.endsWith(quote) && key.length > 1) key = key.slice(1, -1);
    return { indent, key, rest: '' };
  }
  if (first === '"' || first === "'") {
    const close = line.indexOf(first, i + 1);
    if (close < 0) return null;
    key = line.slice(i + 1, close);
    colon = close + 1;
    while (colon < line.length && isSpace(line[colon])) colon++;
    if (line[colon] !== ':') return null;
  } else {
    if (isSpace(first) || '#\'"{['.includes(first)) return null;
    if (first === '-' && (i + 1 === line.length || isSpace(line[i + 1]) || ':#'.includes(line[i + 1]))) return null;
    colon = i;
    while (colon < line.length && line[colon] !== ':' && line[colon] !== '#') colon++;
    if (line[colon] !== ':') return null;
    let end = colon;
    while (end > i && isSpace(line[end - 1])) end--;
    key = line.slice(i, end);
  }
  const after = line[colon + 1];
  if (after !== undefined && !isSpace(after)) return null;
  return { indent, key, rest: line.slice(colon + 1).trim() };
}

/** `text` up to a ` #` comment, found in one pass. */
function withoutComment(text) {
  for (let k = 1; k < text.length; k++) {
    if (text[k] === '#' && isSpace(text[k - 1])) return text.slice(0, k);
  }
  return text;
}

function isSpace(char) {
  return char === ' ' || char === '\t' || char === '\r' || char === '\n' || char === '\f' || char === '\v';
}

function isFiller(line) {
  return /^\s*(#.*)?$/.test(line);
}

function indentOf(line) {
  return /^ */.exec(line)[0].length;
}

/** The end (exclusive) of the block that the key on line `at` (indented `indent`) opens. */
function blockEnd(lines, at, indent, limit) {
  let end = at + 1;
  for (let l = at + 1; l < limit; l++) {
    if (isFiller(lines[l])) continue;
    if (indentOf(lines[l]) <= indent) break;
    end = l + 1;
  }
  return end;
}

/**
 * Finds `key` among the direct children of a block: the lines [from, to) whose indent
 * is greater than `parentIndent`. The first such line sets the children's indent.
 */
function findKey(lines, from, to, parentIndent, key) {
  let childIndent = null;
  for (let l = from; l < to; l++) {
    if (isFiller(lines[l])) continue;
    const indent = indentOf(lines[l]);
    if (indent <= parentIndent) break;
    if (childIndent === null) childIndent = indent;
    if (indent !== childIndent) continue;
    const found = keyAt(lines[l]);
    if (found && found.key === key) {
      return { line: l, indent, rest: found.rest, end: blockEnd(lines, l, indent, to) };
    }
  }
  return null;
}

/**
 * The 1-based line of a dotted settings path such as `checks.resource-limits.maximum`,
 * or of its deepest part that exists; null when not even the first part does. Keys may
 * contain dots themselves (`limits.cpu`), so the longest key that matches wins.
 */
export function lineOfPath(text, path) {
  const lines = text.split('\n');
  const parts = String(path).replace(/\[\d+\]/g, '').split('.').filter(Boolean);
  let from = 0;
  let to = lines.length;
  let indent = -1;
  let found = null;
  let i = 0;
  while (i < parts.length) {
    let hit = null;
    let next = i;
    for (let j = parts.length; j > i && !hit; j--) {
      hit = findKey(lines, from, to, indent, parts.slice(i, j).join('.'));
      next = j;
    }
    if (!hit) break;
    found = hit.line + 1;
    from = hit.line + 1;
    to = hit.end;
    indent = hit.indent;
    i = next;
  }
  return found;
}

// YAML 1.1 readers take a bare `off` for false; podguard's own reader would not, but a
// settings file copied from the page may meet another one.
function modeValue(mode) {
  return mode === 'off' ? '"off"' : mode;
}

/**
 * `text` with `checks.<check>.mode` set to `mode`, every other line untouched; the key is
 * added where it is missing. Returns null for a layout this cannot edit safely (a flow
 * mapping for `checks` itself), and the page then says so instead of guessing.
 */
export function setMode(text, check, mode) {
  const value = modeValue(mode);
  const lines = text.split('\n');
  const checks = findKey(lines, 0, lines.length, -1, 'checks');
  if (!checks) {
    const head = text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
    return `${head}checks:\n  ${check}:\n    mode: ${value}\n`;
  }
  if (checks.rest && !checks.rest.startsWith('#')) return null;
  const entry = findKey(lines, checks.line + 1, checks.end, checks.indent, check);
  if (!entry) {
    const sibling = lines.slice(checks.line + 1, checks.end).find((l) => !isFiller(l));
    const pad = ' '.repeat(sibling ? indentOf(sibling) : checks.indent + 2);
    lines.splice(checks.line + 1, 0, `${pad}${check}:`, `${pad}  mode: ${value}`);
    return lines.join('\n');
  }
  const pad = ' '.repeat(entry.indent);
  const rest = (entry.rest.startsWith('#') ? '' : withoutComment(entry.rest)).trimEnd();
  if (rest.startsWith('{') && rest.endsWith('}')) {
    const inner = rest.slice(1, -1).trim();
    const fields = /(^|,)\s*mode\s*:/.test(inner)
      ? inner.replace(/((?:^|,)\s*mode\s*:\s*)("[^"]*"|'[^']*'|[^,}]*)/, `$1${value}`)
      : [`mode: ${value}`, inner].filter(Boolean).join(', ');
    lines[entry.line] = `${pad}${check}: {${fields}}`;
    return lines.join('\n');
  }
  if (rest !== '' && rest !== 'null' && rest !== '~') return null;
  if (rest !== '') lines[entry.line] = `${pad}${check}:`;
  const modeLine = findKey(lines, entry.line + 1, entry.end, entry.indent, 'mode');
  if (modeLine) {
    const comment = /\s#.*$/.exec(lines[modeLine.line]);
    lines[modeLine.line] = `${' '.repeat(modeLine.indent)}mode: ${value}${comment ? comment[0] : ''}`;
  } else {
    const child = lines.slice(entry.line + 1, entry.end).find((l) => !isFiller(l));
    const childPad = ' '.repeat(child ? indentOf(child) : entry.indent + 2);
    lines.splice(entry.line + 1, 0, `${childPad}mode: ${value}`);
  }
  return lines.join('\n');
}

/**
 * A line diff: `[{op, text}]` with op ' ', '-' or '+', from a longest common subsequence.
 * Objects are at most a few thousand lines, so the quadratic table is fine.
 */
export function diffLines(before, after) {
  const a = before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  const n = a.length;
  const m = b.length;
  const common = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push({ op: ' ', text: a[i++] });
      j++;
    } else if (i < n && (j === m || common[i + 1][j] >= common[i][j + 1])) {
      // Removals before additions, as unified diffs print a changed line.
      out.push({ op: '-', text: a[i++] });
    } else {
      out.push({ op: '+', text: b[j++] });
    }
  }
  return out;
}

/** The diff cut to the changed lines and `context` lines around each, as unified hunks. */
export function hunks(diff, context = 3) {
  const keep = diff.map(() => false);
  diff.forEach((line, k) => {
    if (line.op === ' ') return;
    for (let c = Math.max(0, k - context); c <= Math.min(diff.length - 1, k + context); c++) keep[c] = true;
  });
  const out = [];
  let current = null;
  let oldLine = 1;
  let newLine = 1;
  diff.forEach((line, k) => {
    if (keep[k]) {
      if (!current) {
        current = { oldStart: oldLine, newStart: newLine, lines: [] };
        out.push(current);
      }
      current.lines.push(line);
    } else {
      current = null;
    }
    if (line.op !== '+') oldLine++;
    if (line.op !== '-') newLine++;
  });
  return out;
}

function toBase64Url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function through(stream, bytes) {
  const piped = new Blob([bytes]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(piped).arrayBuffer());
}

/**
 * The page's state as a URL fragment: `z=` and the deflated JSON in base64url, so a link
 * carries both documents without a server to store them.
 */
export async function encodeState(state) {
  const json = new TextEncoder().encode(JSON.stringify({ v: 1, ...state }));
  return `z=${toBase64Url(await through(new CompressionStream('deflate-raw'), json))}`;
}

/** The most a link may unpack to: two editors at their limit, and room for the JSON around them. */
export const MAX_LINK_BYTES = 9 * 1024 * 1024;

/** A link whose state cannot be read: cut short, edited, or unpacking to too much. */
export class DamagedLink extends Error {}

/**
 * The state a fragment from {@link encodeState} holds, or null if it holds none. Throws
 * {@link DamagedLink} when the fragment is one but cannot be read; never unpacks more
 * than {@link MAX_LINK_BYTES}, whatever the link claims.
 */
export async function decodeState(fragment) {
  const match = /^#?z=([A-Za-z0-9_-]*)$/.exec(fragment);
  if (!match) {
    if (/^#?z=/.test(fragment)) throw new DamagedLink('it holds characters a podguard link never does; it was probably edited or cut');
    return null;
  }
  let compressed;
  try {
    compressed = fromBase64Url(match[1]);
  } catch {
    throw new DamagedLink('it is not valid base64url; it was probably cut short or edited');
  }
  const reader = new Blob([compressed]).stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > MAX_LINK_BYTES) {
        reader.cancel().catch(() => {});
        throw new DamagedLink(`it unpacks to more than ${MAX_LINK_BYTES / 1024 / 1024} MiB, more than the page holds`);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof DamagedLink) throw error;
    throw new DamagedLink('its compressed data is incomplete or corrupt; it was probably cut short');
  }
  let state;
  try {
    state = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await new Blob(chunks).arrayBuffer()));
  } catch {
    throw new DamagedLink('it unpacks to something that is not a podguard playground state');
  }
  if (!state || state.v !== 1 || typeof state !== 'object') throw new DamagedLink('it was written by another version of this page or edited');
  for (const key of ['workloads', 'settings']) {
    if (state[key] !== undefined && typeof state[key] !== 'string') throw new DamagedLink(`its ${key} are not text`);
  }
  return state;
}
