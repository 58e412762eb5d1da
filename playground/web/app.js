// The playground page: editors in, the policy module's answer out. Every verdict comes
// from `playground()` in the Wasm module (podguard-policy's `browser` front); this file
// only draws it.

import init, { playground, version } from './pkg/podguard_policy.js';
import { EXAMPLES } from './examples.js';
import { decodeState, diffLines, encodeState, hunks, lineOfPath, setMode } from './text.js';

const MODES = ['enforce', 'mutate', 'warn', 'off'];
const LINE_HEIGHT = 18;

const $ = (id) => document.getElementById(id);

/** A DOM element; text always goes in as text, never as markup (links carry any YAML). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function editor(textarea) {
  const gutter = textarea.parentElement.querySelector('.gutter');
  textarea.addEventListener('scroll', () => {
    gutter.scrollTop = textarea.scrollTop;
  });
  return {
    textarea,
    /** Redraws the line numbers, with `bad` (1-based lines) marked. */
    mark(bad) {
      const count = textarea.value.split('\n').length;
      const lines = [];
      for (let n = 1; n <= count; n++) {
        lines.push(bad.has(n) ? h('span', { class: 'bad', title: 'see the message below' }, n) : String(n), '\n');
      }
      // Room for the textarea's horizontal scrollbar, so the last numbers stay aligned.
      lines.push('\n\n');
      gutter.replaceChildren(...lines);
      gutter.scrollTop = textarea.scrollTop;
    },
    /** Selects line `line` (1-based) and scrolls it into view. */
    reveal(line) {
      const lines = textarea.value.split('\n');
      const start = lines.slice(0, line - 1).reduce((sum, l) => sum + l.length + 1, 0);
      textarea.focus();
      textarea.setSelectionRange(start, start + (lines[line - 1] ?? '').length);
      textarea.scrollTop = Math.max(0, (line - 3) * LINE_HEIGHT);
    },
  };
}

const workloads = editor($('workloads'));
const settings = editor($('settings'));
let defaults = '';
let evaluations = 0;

function problemItem(target, line, text) {
  if (!line) return h('li', {}, text);
  return h('li', { dataset: { line } },
    h('button', { type: 'button', onclick: () => target.reveal(line) }, `line ${line}`), `: ${text}`);
}

function renderProblems(answer) {
  const workloadBad = new Set();
  const workloadList = [];
  if (answer.yamlError) {
    const { line, column, message } = answer.yamlError;
    if (line) workloadBad.add(line);
    workloadList.push(problemItem(workloads, line, column ? `column ${column}: ${message}` : message));
  }
  $('workloads-problems').replaceChildren(...workloadList);
  workloads.mark(workloadBad);

  const settingsBad = new Set();
  const settingsList = (answer.settings.problems ?? []).map((problem) => {
    // A YAML error carries its line; a schema or value error names its field.
    const line = problem.line ?? (problem.field ? lineOfPath(settings.textarea.value, problem.field) : null);
    if (line) settingsBad.add(line);
    const where = problem.field ? `${problem.field}: ` : '';
    return problemItem(settings, line, `${where}${problem.message}`);
  });
  $('settings-problems').replaceChildren(...settingsList);
  settings.mark(settingsBad);
}

let lastModes = null;

function renderChecks(answer) {
  const ok = answer.settings.ok;
  if (ok) lastModes = answer.settings.modes;
  const rows = (lastModes ?? []).map((check) => {
    const select = h('select', {
      'aria-label': `mode of ${check.check}`,
      dataset: { check: check.check },
      disabled: !ok,
      onchange: (event) => changeMode(check.check, event.target.value),
    }, MODES.map((mode) => h('option', { value: mode, selected: mode === check.mode }, mode)));
    const requires = check.canMutate ? check.description : `${check.description} (mutate mode cannot fix it)`;
    return h('tr', { dataset: { check: check.check } }, h('td', { class: 'id' }, check.check), h('td', {}, select), h('td', {}, requires));
  });
  $('checks').tBodies[0].replaceChildren(...rows);
}

function changeMode(check, mode) {
  const next = setMode(settings.textarea.value, check, mode);
  if (next === null) {
    $('settings-problems').replaceChildren(h('li', {},
      `cannot change checks.${check}.mode in this layout; edit the YAML directly`));
    return;
  }
  settings.textarea.value = next;
  evaluate();
}

function verdictOf(document) {
  const outcome = document.outcome;
  if (!outcome.accepted) return ['denied', 'denied'];
  if (document.patch) return ['mutated', 'allowed, mutated'];
  if (outcome.warnings.length) return ['warnings', 'allowed with warnings'];
  return ['allowed', 'allowed'];
}

function describeExemption(exemption) {
  const check = exemption.check ?? 'every check';
  const by = exemption.by;
  if (by.kind === 'namespace') return `${check}: namespace "${by.namespace}" is exempt (exemptions.namespaces)`;
  if (by.kind === 'image') return `${check}: container "${exemption.container}" runs an image matching "${by.glob}" (exemptions.images)`;
  return `${check}: podguard.io/exempt annotation (reason: ${by.reason})`;
}

function checkRows(document, modes) {
  const outcome = document.outcome;
  const rows = [];
  for (const { check } of modes) {
    const mode = outcome.violations.find((v) => v.check === check)?.mode ?? modes.find((m) => m.check === check).mode;
    const violations = outcome.violations.filter((v) => v.check === check);
    const exempt = outcome.exemptions.filter((e) => e.check === check || e.check === null);
    const lines = [];
    for (const v of violations) {
      lines.push(h('tr', {
        dataset: { violation: '', check, container: v.container ?? '', field: v.field, disposition: v.disposition },
      },
      h('td', { class: 'verdict' }, h('span', { class: `badge ${v.disposition}` }, v.disposition)),
      h('td', { class: 'container' }, v.container ?? 'pod'),
      h('td', {},
        h('code', { class: 'field' }, v.field),
        h('div', { class: 'message' }, v.message,
          v.fixable && v.disposition !== 'fixed' && v.mode !== 'mutate' ? h('span', { class: 'note' }, ' (mutate mode can fix)') : null))));
    }
    for (const e of exempt) {
      lines.push(h('tr', { dataset: { exemption: '', check } },
        h('td', {}, h('span', { class: 'badge exempt' }, 'exempt')),
        h('td', {}, e.container ?? '-'), h('td', {}, describeExemption(e))));
    }
    if (lines.length === 0) {
      const status = mode === 'off' ? 'off' : 'pass';
      lines.push(h('tr', { dataset: { pass: '', check } },
        h('td', {}, h('span', { class: `badge ${status}` }, status)), h('td', {}, ''),
        h('td', { class: 'note' }, status === 'off' ? 'not checked' : 'no violation')));
    }
    lines[0].prepend(
      h('td', { class: 'id', rowspan: lines.length }, check),
      h('td', { rowspan: lines.length }, mode));
    rows.push(...lines);
  }
  return h('table', { class: 'verdicts' },
    h('thead', {}, h('tr', {}, ['check', 'mode', 'verdict', 'container', 'field and message'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows));
}

function diffBlock(before, after) {
  const lines = [];
  for (const hunk of hunks(diffLines(before, after))) {
    lines.push(h('span', { class: 'hunk' }, `@@ line ${hunk.oldStart} → ${hunk.newStart} @@`));
    for (const line of hunk.lines) {
      const cls = line.op === '+' ? 'add' : line.op === '-' ? 'del' : null;
      lines.push(cls ? h('span', { class: cls }, `${line.op} ${line.text}`) : `  ${line.text}\n`);
    }
  }
  return h('pre', { class: 'block diff', dataset: { diff: '' } }, lines);
}

function renderDocument(document, modes) {
  const where = h('button', { type: 'button', onclick: () => workloads.reveal(document.line) }, `line ${document.line}`);
  const title = [document.kind ?? '(no kind)', document.namespace && document.name ? `${document.namespace}/${document.name}` : document.name]
    .filter(Boolean).join(' ');
  if (document.note) {
    return h('article', { class: 'document', dataset: { verdict: 'skipped', kind: document.kind ?? '', name: document.name ?? '' } },
      h('div', { class: 'document-head' }, h('h3', {}, title), where, h('span', { class: 'badge skipped' }, 'not judged')),
      h('p', { class: 'note' }, document.note));
  }
  const outcome = document.outcome;
  const [verdict, verdictText] = verdictOf(document);
  const parts = [
    h('div', { class: 'document-head' }, h('h3', {}, title), where, h('span', { class: `badge ${verdict}`, dataset: { verdictBadge: '' } }, verdictText)),
    checkRows(document, modes),
  ];
  if (outcome.message) parts.push(h('h4', {}, 'Rejection message'), h('pre', { class: 'block', dataset: { message: '' } }, outcome.message));
  if (outcome.warnings.length) parts.push(h('h4', {}, 'Warnings'), h('ul', { class: 'lines', dataset: { warnings: '' } }, outcome.warnings.map((w) => h('li', {}, w))));
  if (outcome.exemptions.length) parts.push(h('h4', {}, 'Exemptions used'), h('ul', { class: 'lines' }, outcome.exemptions.map((e) => h('li', {}, describeExemption(e)))));
  const annotations = Object.entries(outcome.auditAnnotations);
  if (annotations.length) parts.push(h('h4', {}, 'Audit annotations'), h('ul', { class: 'lines' }, annotations.map(([k, v]) => h('li', {}, `${k}: ${v}`))));
  if (document.patch) {
    parts.push(
      h('h4', {}, 'Mutated object (YAML diff)'), diffBlock(document.before, document.after),
      h('details', {}, h('summary', {}, 'JSON Patch the webhook returns'),
        h('pre', { class: 'block', dataset: { patch: '' } }, JSON.stringify(document.patch, null, 2))));
  } else {
    const fixed = outcome.violations.filter((v) => v.disposition === 'fixed').length;
    if (!outcome.accepted && fixed) {
      parts.push(h('p', { class: 'note' }, `Mutate mode fixes ${fixed} of these violations, but a rejected request gets no patch: `
        + 'switch the remaining checks to mutate, or fix them in the YAML, to see the mutated object.'));
    }
  }
  return h('article', { class: 'document', dataset: { verdict, kind: document.kind, name: document.name ?? '' } }, parts);
}

function renderResults(answer) {
  const results = $('results');
  if (!answer.settings.ok) {
    results.replaceChildren(h('p', { class: 'document note' }, 'Fix the requirements first: the module judges nothing with settings it would refuse.'));
    return;
  }
  if (answer.yamlError) {
    results.replaceChildren(h('p', { class: 'document note' }, 'Fix the workload YAML first (see the marked line).'));
    return;
  }
  if (answer.documents.length === 0) {
    results.replaceChildren(h('p', { class: 'document note' }, 'Paste a workload, or start from an example.'));
    return;
  }
  results.replaceChildren(...answer.documents.map((d) => renderDocument(d, answer.settings.modes)));
}

let shareTurn = 0;

// `data-shared` names the evaluation whose state the fragment holds, so a test (or a
// person) can tell when the link is current.
async function share() {
  const turn = ++shareTurn;
  const evaluation = evaluations;
  const fragment = await encodeState({ workloads: workloads.textarea.value, settings: settings.textarea.value });
  if (turn !== shareTurn) return;
  history.replaceState(null, '', `#${fragment}`);
  $('share').href = location.href;
  document.body.dataset.shared = String(evaluation);
}

function evaluate() {
  clearTimeout(pending);
  delete document.body.dataset.pending;
  const answer = JSON.parse(playground(workloads.textarea.value, settings.textarea.value));
  renderProblems(answer);
  renderChecks(answer);
  renderResults(answer);
  document.body.dataset.evaluated = String(++evaluations);
  share();
}

// Typing re-judges after a pause; `data-pending` tells a test that the text on screen is
// not judged yet.
let pending = null;
function schedule() {
  clearTimeout(pending);
  document.body.dataset.pending = 'true';
  pending = setTimeout(evaluate, 150);
}

async function loadFragment() {
  try {
    const state = await decodeState(location.hash);
    if (!state) return false;
    workloads.textarea.value = state.workloads ?? '';
    settings.textarea.value = state.settings ?? '';
    return true;
  } catch (error) {
    $('workloads-problems').replaceChildren(h('li', {}, `this link's state cannot be read: ${error.message}`));
    return false;
  }
}

async function start() {
  await init();
  $('version').textContent = `podguard-policy ${version()}.`;
  defaults = await (await fetch('requirements.yaml')).text();
  for (const example of EXAMPLES) $('examples').append(h('option', { value: example.id }, example.label));
  if (!(await loadFragment())) {
    workloads.textarea.value = EXAMPLES[1].yaml;
    settings.textarea.value = defaults;
  }
  $('examples').addEventListener('change', (event) => {
    const example = EXAMPLES.find((e) => e.id === event.target.value);
    if (!example) return;
    workloads.textarea.value = example.yaml;
    event.target.value = '';
    evaluate();
  });
  $('reset-settings').addEventListener('click', () => {
    settings.textarea.value = defaults;
    evaluate();
  });
  $('copy-share').addEventListener('click', async () => {
    await navigator.clipboard.writeText($('share').href);
    $('copied').hidden = false;
    setTimeout(() => { $('copied').hidden = true; }, 1500);
  });
  for (const target of [workloads, settings]) target.textarea.addEventListener('input', schedule);
  window.addEventListener('hashchange', async () => {
    if (await loadFragment()) evaluate();
  });
  evaluate();
  document.body.dataset.ready = 'true';
}

start().catch((error) => {
  document.body.dataset.ready = 'failed';
  $('results').replaceChildren(h('p', { class: 'document' }, `The policy module did not load: ${error.message}`));
});
