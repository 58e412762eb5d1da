// The page's text helpers (playground/web/text.js), under Node's test runner.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { DamagedLink, MAX_LINK_BYTES, decodeState, diffLines, encodeState, hunks, lineOfPath, setMode } from '../../web/text.js';

const requirements = readFileSync(new URL('../../../policy/requirements.yaml', import.meta.url), 'utf8');

function lineOf(text, needle) {
  return text.split('\n').findIndex((l) => l.includes(needle)) + 1;
}

test('a settings field is found at its line', () => {
  assert.equal(lineOfPath(requirements, 'checks.resource-limits.maximum'), lineOf(requirements, '    maximum: {}'));
  // `limits.cpu` is one key with a dot in it.
  assert.equal(lineOfPath(requirements, 'checks.resource-limits.defaults.limits.cpu'), lineOf(requirements, 'limits.cpu: 500m'));
  assert.equal(lineOfPath(requirements, 'checks.drop-capabilities.allowedAdd[0]'), lineOf(requirements, 'allowedAdd:'));
  // A missing leaf points at the deepest part that exists.
  assert.equal(lineOfPath(requirements, 'checks.health-probes.nope'), lineOf(requirements, '  health-probes:'));
  assert.equal(lineOfPath(requirements, 'nope'), null);
  // Only direct children count: `mode` under another check is not this one's.
  const text = 'checks:\n  a:\n    mode: warn\n  b:\n    x: 1\n';
  assert.equal(lineOfPath(text, 'checks.b.mode'), 4);
});

test('a mode changes in place and keeps the comments', () => {
  const next = setMode(requirements, 'run-as-non-root', 'mutate');
  const before = requirements.split('\n');
  const after = next.split('\n');
  assert.equal(after.length, before.length);
  const changed = after.flatMap((line, i) => (line === before[i] ? [] : [[before[i], line]]));
  assert.deepEqual(changed, [['    mode: enforce', '    mode: mutate']]);
  assert.match(setMode(requirements, 'read-only-root-filesystem', 'off'), /read-only-root-filesystem:\n(?: {4}#.*\n)* {4}mode: "off"\n/);
});

test('a missing mode, check or checks key is added', () => {
  assert.equal(setMode('', 'no-privileged', 'warn'), 'checks:\n  no-privileged:\n    mode: warn\n');
  assert.equal(setMode('exemptions:\n  images: []', 'no-privileged', 'warn'),
    'exemptions:\n  images: []\nchecks:\n  no-privileged:\n    mode: warn\n');
  assert.equal(setMode('checks:\n    a:\n        mode: warn\n', 'b', 'mutate'),
    'checks:\n    b:\n      mode: mutate\n    a:\n        mode: warn\n');
  assert.equal(setMode('checks:\n  a:\n    x: 1\n', 'a', 'mutate'), 'checks:\n  a:\n    mode: mutate\n    x: 1\n');
  assert.equal(setMode('checks:\n  a: {mode: warn, x: 1}\n', 'a', 'off'), 'checks:\n  a: {mode: "off", x: 1}\n');
  assert.equal(setMode('checks:\n  a: {x: 1}\n', 'a', 'warn'), 'checks:\n  a: {mode: warn, x: 1}\n');
  assert.equal(setMode('checks: {a: {mode: warn}}\n', 'a', 'off'), null);
});

test('the diff marks exactly the changed lines', () => {
  const diff = diffLines('a\nb\nc\n', 'a\nx\nc\nd\n');
  assert.deepEqual(diff.map((l) => l.op + l.text), [' a', '-b', '+x', ' c', '+d']);
  const long = Array.from({ length: 20 }, (_, i) => `line ${i}`);
  const edited = [...long];
  edited[10] = 'changed';
  const [only, ...rest] = hunks(diffLines(long.join('\n'), edited.join('\n')), 2);
  assert.equal(rest.length, 0);
  assert.equal(only.oldStart, 9);
  assert.deepEqual(only.lines.map((l) => l.op), [' ', ' ', '-', '+', ' ', ' ']);
});

test('the state survives the URL fragment', async () => {
  const state = { workloads: 'kind: Pod\n# ünïcode ✓\n', settings: requirements };
  const fragment = await encodeState(state);
  assert.match(fragment, /^z=[A-Za-z0-9_-]+$/);
  assert.ok(fragment.length < requirements.length, 'the fragment is compressed');
  assert.deepEqual(await decodeState(`#${fragment}`), { v: 1, ...state });
  assert.equal(await decodeState('#something-else'), null);
});

// A link controls the settings text: 600,000 spaces inside a key took the old pattern
// 100 s. Linear now, and a `? key` line is found where it is, not pinned to line 1.
test('a long run of spaces in a key is read in linear time', () => {
  const key = `x${' '.repeat(600000)}y`;
  const text = `checks:\n  ? ${key}\n  : 1\n  run-as-non-root:\n    mode:${' '.repeat(300000)}# c\n`;
  const started = performance.now();
  assert.equal(lineOfPath(text, `checks.${key}`), 2);
  assert.equal(lineOfPath(text, 'checks.run-as-non-root.mode'), 5);
  assert.notEqual(setMode(text, 'run-as-non-root', 'warn'), null);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1000, `took ${elapsed} ms`);
});

test('keys are read as YAML writes them', () => {
  assert.equal(lineOfPath('a:\n  "c d" : 2\n', 'a.c d'), 2);
  assert.equal(lineOfPath('a:\n  -e: 3\n', 'a.-e'), 2);
  assert.equal(lineOfPath('a:\n  - e: 3\n', 'a.e'), 1, 'a list item is not a key of a');
  assert.equal(lineOfPath('a:\n  url:http://x\n', 'a.url'), 1, 'a colon not followed by a space is no key');
  assert.equal(lineOfPath('a:\n  b: 1 # c\n', 'a.b'), 2);
});

async function rejects(fragment, pattern) {
  await assert.rejects(decodeState(fragment), (error) => error instanceof DamagedLink && pattern.test(error.message));
}

test('a damaged link is named so, and a bomb is not unpacked', async () => {
  const good = await encodeState({ workloads: 'kind: Pod\n', settings: '' });
  assert.equal((await decodeState(`#${good}`)).workloads, 'kind: Pod\n');
  assert.equal(await decodeState('#section-2'), null, 'a fragment that is no state is not an error');
  await rejects(`#${good.slice(0, good.length - 6)}`, /cut short/);
  await rejects('#z=abc$def', /edited/);
  // 100 MiB of one character deflates to about 100 KB.
  const bomb = await encodeState({ workloads: 'a'.repeat(100 * 1024 * 1024), settings: '' });
  assert.ok(bomb.length < 200 * 1024, `the bomb link is ${bomb.length} characters`);
  const started = performance.now();
  await rejects(`#${bomb}`, new RegExp(`more than ${MAX_LINK_BYTES / 1024 / 1024} MiB`));
  assert.ok(performance.now() - started < 2000);
});
