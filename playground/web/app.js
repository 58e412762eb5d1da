// The playground page: editors in, the policy module's answer out. Every verdict comes
// from `playground()` in the Wasm module (podguard-policy's `browser` front), run in a
// worker (worker.js); this file only draws it.

import { EXAMPLES } from './examples.js';
import { DamagedLink, decodeState, diffLines, encodeState, hunks, lineOfPath, setMode } from './text.js';

const MODES = ['enforce', 'mutate', 'warn', 'off'];
const LINE_HEIGHT = 18;
// The page's limits, as podguard serve has its own: past them it refuses with a message
// instead of freezing the tab.
const EVALUATION_LIMIT_MS = 1000;
const MAX_EDITOR_CHARS = 4 * 1024 * 1024;
// Past this many findings in one object, the results list containers, each opened on demand.
const MAX_ROWS_PER_DOCUMENT = 300;
const MAX_CONTAINERS_LISTED = 200;
const MAX_LIST_ITEMS = 100;

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

/** Replaces `node`'s children with `items`, however many (no spread into an argument list). */
function fill(node, items) {
  const fragment = document.createDocumentFragment();
  for (const item of items) fragment.append(item);
  node.replaceChildren(fragment);
}

function lineCount(text) {
  let count = 1;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
  return count;
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
      const count = lineCount(textarea.value);
      const fragment = document.createDocumentFragment();
      // Plain numbers go in as runs of text, a node only for each marked line: an editor
      // may hold tens of thousands of lines.
      let run = '';
      for (let n = 1; n <= count; n++) {
        if (!bad.has(n)) {
          run += `${n}\n`;
          continue;
        }
        fragment.append(run, h('span', { class: 'bad', title: 'see the message below' }, n));
        run = '\n';
      }
      // Room for the textarea's horizontal scrollbar, so the last numbers stay aligned.
      fragment.append(`${run}\n\n`);
      gutter.replaceChildren(fragment);
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

/**
 * At most the first 300 characters of a message: messages may repeat what the editors
 * hold (a key of 600,000 characters), and the text is there already.
 */
function clip(text) {
  const MAX = 300;
  return text.length <= MAX ? text : `${text.slice(0, MAX)}… (${text.length} characters)`;
}

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
    workloadList.push(problemItem(workloads, line, column ? `column ${column}: ${clip(message)}` : clip(message)));
  }
  fill($('workloads-problems'), workloadList);
  workloads.mark(workloadBad);

  const settingsBad = new Set();
  const settingsList = (answer.settings.problems ?? []).map((problem) => {
    // A YAML error carries its line; a schema or value error names its field.
    const line = problem.line ?? (problem.field ? lineOfPath(settings.textarea.value, problem.field) : null);
    if (line) settingsBad.add(line);
    const where = problem.field ? `${clip(problem.field)}: ` : '';
    return problemItem(settings, line, `${where}${clip(problem.message)}`);
  });
  fill($('settings-problems'), settingsList);
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
  fill($('checks').tBodies[0], rows);
}

function changeMode(check, mode) {
  const next = setMode(settings.textarea.value, check, mode);
  if (next === null) {
    $('settings-problems').replaceChildren(h('li', {},
      `cannot change checks.${check}.mode in this layout; edit the YAML directly`));
    return;
  }
  settings.textarea.value = next;
  schedule();
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

function violationRow(v, check) {
  return h('tr', {
    dataset: { violation: '', check, container: v.container ?? '', field: v.field, disposition: v.disposition },
  },
  h('td', { class: 'verdict' }, h('span', { class: `badge ${v.disposition}` }, v.disposition)),
  h('td', { class: 'container' }, v.container ?? 'pod'),
  h('td', {},
    h('code', { class: 'field' }, v.field),
    h('div', { class: 'message' }, v.message,
      v.fixable && v.disposition !== 'fixed' && v.mode !== 'mutate' ? h('span', { class: 'note' }, ' (mutate mode can fix)') : null)));
}

/**
 * Findings grouped by container, each container's rows drawn when it is opened: an object
 * with thousands of containers would otherwise put hundreds of thousands of nodes on the page.
 */
function collapsedRows(document) {
  const byContainer = new Map();
  for (const v of document.outcome.violations) {
    const key = v.container ?? 'pod';
    if (!byContainer.has(key)) byContainer.set(key, []);
    byContainer.get(key).push(v);
  }
  const notListed = document.violationsNotListed ?? 0;
  const list = h('div', { class: 'collapsed', dataset: { collapsed: '' } },
    h('p', { class: 'note' }, `${document.outcome.violations.length + notListed} findings: too many to list at once, `
      + 'so each container opens on its own.'
      + (notListed ? ` The page received the first ${document.outcome.violations.length}; `
        + '`podguard audit -o json` lists every one.' : '')));
  let listed = 0;
  for (const [container, violations] of byContainer) {
    if (listed++ === MAX_CONTAINERS_LISTED) {
      list.append(h('p', { class: 'note' }, `… and ${byContainer.size - MAX_CONTAINERS_LISTED} more containers; `
        + '`podguard audit -o json` lists every finding.'));
      break;
    }
    const checks = [...new Set(violations.map((v) => v.check))].join(', ');
    const details = h('details', { dataset: { container } },
      h('summary', {}, `${container}: ${violations.length} finding${violations.length === 1 ? '' : 's'} (${checks})`));
    details.addEventListener('toggle', () => {
      if (!details.open || details.querySelector('table')) return;
      details.append(h('table', { class: 'verdicts' }, h('tbody', {}, violations.map((v) => violationRow(v, v.check)))));
    });
    list.append(details);
  }
  return list;
}

function checkRows(document, modes) {
  const outcome = document.outcome;
  if (outcome.violations.length > MAX_ROWS_PER_DOCUMENT) return collapsedRows(document);
  const rows = [];
  for (const { check } of modes) {
    const mode = outcome.violations.find((v) => v.check === check)?.mode ?? modes.find((m) => m.check === check).mode;
    const violations = outcome.violations.filter((v) => v.check === check);
    const exempt = outcome.exemptions.filter((e) => e.check === check || e.check === null);
    const lines = [];
    for (const v of violations) lines.push(violationRow(v, check));
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
    for (const line of lines) rows.push(line);
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

/** At most MAX_LIST_ITEMS of `items`, then a line saying how many more there are. */
function capped(items, what) {
  if (items.length <= MAX_LIST_ITEMS) return items;
  return [...items.slice(0, MAX_LIST_ITEMS), `… and ${items.length - MAX_LIST_ITEMS} more ${what}`];
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
  if (outcome.warnings.length) parts.push(h('h4', {}, 'Warnings'), h('ul', { class: 'lines', dataset: { warnings: '' } }, capped(outcome.warnings, 'warnings').map((w) => h('li', {}, w))));
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
  fill(results, answer.documents.map((d) => renderDocument(d, answer.settings.modes)));
}

/** Says plainly that there is no verdict for the text on screen, and why. */
function renderFailure(message) {
  $('results').replaceChildren(h('p', { class: 'document failure', role: 'alert', dataset: { failure: '' } },
    `No verdict for the text on screen: ${message}`));
}

/**
 * The policy module in a worker, one evaluation at a time, each stopped (the worker
 * replaced) when it runs past EVALUATION_LIMIT_MS.
 */
class Evaluator {
  constructor() {
    this.ids = 0;
    this.queue = Promise.resolve();
    this.start();
  }

  start() {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.answers = new Map();
    this.ready = new Promise((resolve, reject) => {
      this.worker.addEventListener('message', ({ data }) => {
        if ('ready' in data) {
          if (data.ready) resolve(data.version);
          else reject(new Error(data.error));
          return;
        }
        this.answers.get(data.id)?.(data);
      });
      this.worker.addEventListener('error', (event) => {
        reject(new Error(event.message || 'the policy worker did not start'));
        for (const answer of this.answers.values()) answer({ error: event.message || 'the policy worker failed' });
      });
    });
    // A failed start is reported by the evaluation that waits for it.
    this.ready.catch(() => {});
  }

  restart() {
    this.worker.terminate();
    this.start();
  }

  /** Judges `texts` after the evaluations already queued; `isCurrent()` false skips it. */
  judge(texts, isCurrent) {
    const turn = this.queue.then(() => (isCurrent() ? this.run(texts) : { superseded: true }));
    this.queue = turn.catch(() => {});
    return turn;
  }

  async run(texts) {
    await this.ready;
    const id = ++this.ids;
    const data = await new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.answers.delete(id);
        this.restart();
        resolve({
          error: `the policy ran longer than the page's ${EVALUATION_LIMIT_MS / 1000} s limit and was stopped. `
            + 'podguard serve stops a policy at its deadline too, and answers by its failure mode (deny, by default).',
        });
      }, EVALUATION_LIMIT_MS);
      this.answers.set(id, (answer) => {
        clearTimeout(timer);
        this.answers.delete(id);
        resolve(answer);
      });
      this.worker.postMessage({ id, ...texts });
    });
    if (data.error) {
      if (!data.error.startsWith('the policy ran longer')) this.restart();
      return { failure: data.error };
    }
    return { answer: JSON.parse(data.answer) };
  }
}

const evaluator = new Evaluator();

let shareTurn = 0;
// While a damaged link is in the address bar, the page leaves it there until the user edits.
let keepLink = false;

// `data-shared` names the evaluation whose state the fragment holds, so a test (or a
// person) can tell when the link is current.
async function share() {
  const turn = ++shareTurn;
  const evaluation = evaluations;
  if (keepLink) {
    document.body.dataset.shared = String(evaluation);
    return;
  }
  const fragment = await encodeState({ workloads: workloads.textarea.value, settings: settings.textarea.value });
  if (turn !== shareTurn) return;
  history.replaceState(null, '', `#${fragment}`);
  $('share').href = location.href;
  document.body.dataset.shared = String(evaluation);
}

function oversized() {
  for (const [name, target] of [['workloads', workloads], ['requirements', settings]]) {
    const size = target.textarea.value.length;
    if (size > MAX_EDITOR_CHARS) {
      return `the ${name} are ${(size / 1024 / 1024).toFixed(1)} MiB of text, more than the `
        + `${MAX_EDITOR_CHARS / 1024 / 1024} MiB the page judges at once; split them, or run \`podguard audit\`, which reads any size.`;
    }
  }
  return null;
}

let turns = 0;

async function evaluate() {
  clearTimeout(pending);
  delete document.body.dataset.pending;
  const turn = ++turns;
  $('results').dataset.stale = 'true';
  const texts = { workloads: workloads.textarea.value, settings: settings.textarea.value };
  const tooLarge = oversized();
  const outcome = tooLarge
    ? { failure: tooLarge }
    : await evaluator.judge(texts, () => turn === turns).catch((error) => ({ failure: error.message }));
  // A later evaluation draws its own result; this one is no longer the text on screen.
  if (turn !== turns || outcome.superseded) return;
  try {
    if (outcome.failure) {
      fill($('workloads-problems'), []);
      fill($('settings-problems'), []);
      renderFailure(outcome.failure);
    } else {
      renderProblems(outcome.answer);
      renderChecks(outcome.answer);
      renderResults(outcome.answer);
    }
  } catch (error) {
    renderFailure(`the page could not draw the verdict (${error.message}).`);
  }
  $('status').textContent = '';
  delete $('results').dataset.stale;
  document.body.dataset.evaluated = String(++evaluations);
  share();
}

// Typing re-judges after a pause; `data-pending` tells a test, and the status line tells
// a person, that the text on screen is not judged yet.
let pending = null;
function schedule() {
  clearTimeout(pending);
  document.body.dataset.pending = 'true';
  $('results').dataset.stale = 'true';
  $('status').textContent = 'Edited: the verdict below is for the text before your last change until this one is judged.';
  if (keepLink) {
    keepLink = false;
    $('link-problem').hidden = true;
  }
  pending = setTimeout(evaluate, 150);
}

/** Loads the link's state into the editors: true when it held one. */
async function loadFragment() {
  try {
    const state = await decodeState(location.hash);
    if (!state) return false;
    workloads.textarea.value = state.workloads ?? '';
    settings.textarea.value = state.settings ?? '';
    keepLink = false;
    $('link-problem').hidden = true;
    return true;
  } catch (error) {
    const reason = error instanceof DamagedLink ? error.message : `it cannot be read (${error.message})`;
    $('link-problem').textContent = `This link is damaged: ${reason}. Nothing was loaded from it; `
      + 'the address bar keeps it, so you can compare it with the one you were sent.';
    $('link-problem').hidden = false;
    keepLink = true;
    return true;
  }
}

async function start() {
  const version = await evaluator.ready;
  $('version').textContent = `podguard-policy ${version}.`;
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
    schedule();
  });
  $('reset-settings').addEventListener('click', () => {
    settings.textarea.value = defaults;
    schedule();
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
  await evaluate();
  document.body.dataset.ready = 'true';
}

start().catch((error) => {
  document.body.dataset.ready = 'failed';
  $('results').replaceChildren(h('p', { class: 'document failure', role: 'alert' }, `The policy module did not load: ${error.message}`));
});
