// Drives the playground in Debian's headless Chromium through chromedriver (plain
// WebDriver over HTTP, so no npm package is needed), for playground/tests/browser.rs.
//
// usage: node browser.mjs PAGE_URL CASE.json SCREENSHOT.png
// CASE.json holds the workload to paste and what the native policy says about it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

import { encodeState } from '../../web/text.js';

const [pageUrl, casePath, screenshotPath] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(casePath, 'utf8'));
// The examples the served page offers, read from the same built file.
const { EXAMPLES } = await import(pathToFileURL(join(expected.site, 'examples.js')).href);

const CHROMIUM = process.env.PODGUARD_CHROMIUM ?? '/usr/bin/chromium';
const CHROMEDRIVER = process.env.PODGUARD_CHROMEDRIVER ?? '/usr/bin/chromedriver';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const port = await freePort();
const driver = spawn(CHROMEDRIVER, [`--port=${port}`], { stdio: ['ignore', 'ignore', 'inherit'] });
driver.on('error', (error) => {
  console.error(`cannot start ${CHROMEDRIVER}: ${error.message}; install it: apt-get install chromium chromium-driver`);
  process.exit(1);
});
const base = `http://127.0.0.1:${port}`;

async function call(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(answer.value)}`);
  return answer.value;
}

for (let tries = 0; ; tries++) {
  try {
    if ((await call('GET', '/status')).ready) break;
  } catch (error) {
    if (tries > 100) throw error;
  }
  await sleep(100);
}

const session = await call('POST', '/session', {
  capabilities: {
    alwaysMatch: {
      browserName: 'chrome',
      'goog:chromeOptions': {
        binary: CHROMIUM,
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1600,2400'],
      },
    },
  },
});
const sid = `/session/${session.sessionId}`;
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

const run = (script, ...args) => call('POST', `${sid}/execute/sync`, { script, args });
const find = async (css) => (await call('POST', `${sid}/element`, { using: 'css selector', value: css }))[ELEMENT];
const click = async (css) => call('POST', `${sid}/element/${await find(css)}/click`, {});
const navigate = (url) => call('POST', `${sid}/url`, { url });

async function until(what, script, ...args) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const value = await run(script, ...args);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits until the page has judged the current text and put it into the share link. */
async function settled(after) {
  await until('the page to evaluate and share', `
    const b = document.body.dataset;
    return b.ready === 'true' && b.pending === undefined && Number(b.evaluated) > arguments[0]
      && b.shared === b.evaluated;`, after);
  return Number(await run('return document.body.dataset.evaluated'));
}

const READ = `
  const rows = (css) => [...document.querySelectorAll(css)];
  return {
    documents: rows('#results article.document').map((a) => ({ verdict: a.dataset.verdict, kind: a.dataset.kind, name: a.dataset.name })),
    violations: rows('#results tr[data-violation]').map((tr) => ({
      check: tr.dataset.check,
      container: tr.dataset.container || null,
      field: tr.dataset.field,
      disposition: tr.dataset.disposition,
      message: tr.querySelector('.message').firstChild.textContent,
    })),
    message: document.querySelector('#results [data-message]')?.textContent ?? null,
    warnings: rows('#results [data-warnings] li').map((li) => li.textContent),
    diff: document.querySelector('#results [data-diff]')?.innerText ?? null,
    patch: JSON.parse(document.querySelector('#results [data-patch]')?.textContent ?? 'null'),
    modes: Object.fromEntries(rows('#checks select').map((s) => [s.dataset.check, s.value])),
    workloads: document.getElementById('workloads').value,
    settings: document.getElementById('settings').value,
    share: document.getElementById('share').href,
  };`;

const sortBy = (list) => [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

try {
  // 1. The page loads with the policy module, and every example shows what it promises.
  await navigate(pageUrl);
  let seen = await settled(0);
  assert.match(await run('return document.getElementById("version").textContent'), /podguard-policy \d/);
  for (const example of EXAMPLES) {
    await click(`#examples option[value="${example.id}"]`);
    seen = await settled(seen);
    const page = await run(READ);
    assert.equal(page.workloads, example.yaml, example.id);
    assert.deepEqual(page.documents.map((d) => d.verdict), example.verdicts, example.id);
  }

  // 2. Paste a non-compliant Deployment: each violation the native policy finds is shown,
  // per check and container, with its field path and message; so are the warnings.
  await call('POST', `${sid}/element/${await find('#workloads')}/clear`, {});
  await call('POST', `${sid}/element/${await find('#workloads')}/value`, { text: expected.workload });
  seen = await settled(seen);
  let page = await run(READ);
  assert.equal(page.workloads, expected.workload);
  assert.deepEqual(page.documents, [{ verdict: 'denied', kind: 'Deployment', name: expected.name }]);
  assert.deepEqual(sortBy(page.violations), sortBy(expected.denied.violations));
  assert.equal(page.message, expected.denied.message);
  assert.deepEqual(page.warnings, expected.denied.warnings);
  assert.equal(page.patch, null);

  // 3. Errors in either document are shown at their line.
  await run(`const t = document.getElementById('workloads');
    t.value = arguments[0]; t.dispatchEvent(new Event('input'));`, `${expected.workload}---\nkind: Pod\n  broken: [\n`);
  seen = await settled(seen);
  const badLine = expected.workload.split('\n').length + 2;
  assert.deepEqual(await run(`return [...document.querySelectorAll('#workloads-problems li')].map((li) => Number(li.dataset.line))`), [badLine]);
  assert.deepEqual(await run(`return [...document.querySelectorAll('#workloads-editor .gutter .bad')].map((s) => Number(s.textContent))`), [badLine]);
  await run(`const t = document.getElementById('workloads');
    t.value = arguments[0]; t.dispatchEvent(new Event('input'));`, expected.workload);
  seen = await settled(seen);
  const settingsBefore = (await run(READ)).settings;
  const wrong = settingsBefore.replace(/(  no-privileged:\n(?:    #.*\n)*)    mode: enforce/, '$1    mode: sometimes');
  assert.notEqual(wrong, settingsBefore, 'the default requirements changed shape; update this test');
  await run(`const t = document.getElementById('settings');
    t.value = arguments[0]; t.dispatchEvent(new Event('input'));`, wrong);
  seen = await settled(seen);
  const modeLine = wrong.split('\n').indexOf('    mode: sometimes') + 1;
  const problems = await run(`return [...document.querySelectorAll('#settings-problems li')].map((li) => [Number(li.dataset.line), li.textContent])`);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0][0], modeLine);
  assert.match(problems[0][1], /checks\.no-privileged\.mode/);
  await click('#reset-settings');
  seen = await settled(seen);

  // 4. Switch a check to mutate: the requirements change, and the mutated object shows
  // as a YAML diff with the JSON Patch a webhook would return.
  await click(`#checks select[data-check="${expected.mutateCheck}"] option[value="mutate"]`);
  seen = await settled(seen);
  page = await run(READ);
  assert.equal(page.modes[expected.mutateCheck], 'mutate');
  assert.notEqual(page.settings, settingsBefore);
  assert.deepEqual(page.documents.map((d) => d.verdict), ['mutated']);
  assert.deepEqual(sortBy(page.violations), sortBy(expected.mutated.violations));
  assert.deepEqual(page.warnings, expected.mutated.warnings);
  assert.deepEqual(page.patch, expected.mutated.patch);
  for (const line of expected.mutated.diffAdds) {
    assert.ok(page.diff.split('\n').some((l) => l.startsWith('+') && l.includes(line)), `diff lacks + ${line}:\n${page.diff}`);
  }
  const mutatedPage = page;

  // 5. The share link, opened afresh, reproduces the same state.
  await navigate('about:blank');
  await navigate(mutatedPage.share);
  await settled(0);
  page = await run(READ);
  for (const key of ['workloads', 'settings', 'documents', 'violations', 'warnings', 'patch', 'diff', 'modes']) {
    assert.deepEqual(page[key], mutatedPage[key], key);
  }

  // 6. Nothing was fetched from anywhere but the page's own origin.
  const origin = new URL(pageUrl).origin;
  const foreign = (await run(`return performance.getEntriesByType('resource').map((e) => e.name)`))
    .filter((name) => !name.startsWith(origin));
  assert.deepEqual(foreign, []);

  // The screenshot shows the mutated object's diff, the part a reader of CI logs wants.
  await run(`document.querySelector('#results [data-diff]').scrollIntoView({ block: 'center' })`);
  const png = await call('GET', `${sid}/screenshot`);
  writeFileSync(screenshotPath, Buffer.from(png, 'base64'));

  // 7. Hostile and oversized input (issue 19): each case gets its own verdict or a plain
  // message, in bounded time, and never a verdict left over from the previous text.
  const setText = (id, text) => run(`const t = document.getElementById(arguments[0]);
    window.typedAt = performance.now();
    t.value = arguments[1]; t.dispatchEvent(new Event('input'));`, id, text);
  // Times measured in the page (performance.now() counts from navigation), so WebDriver's
  // own round trips are not counted; the 50 ms polling is.
  const SETTLED_AT = `const b = document.body.dataset;
    return b.ready === 'true' && b.pending === undefined && Number(b.evaluated) > arguments[0]
      && b.shared === b.evaluated ? [Number(b.evaluated), performance.now() - (arguments[1] ? window.typedAt : 0)] : null;`;
  const settledAt = (after, sinceTyping) => until('the page to evaluate and share', SETTLED_AT, after, sinceTyping);
  const compliant = EXAMPLES.find((e) => e.id === 'compliant-deployment').yaml;
  await navigate(pageUrl);
  seen = await settled(0);
  await setText('workloads', expected.workload);
  seen = await settled(seen);
  assert.deepEqual((await run(READ)).documents.map((d) => d.verdict), ['denied']);
  // 70,000 lines: the gutter once spread two arguments per line into one call, V8 threw,
  // and the previous verdict (denied) stayed on screen.
  const bigConfigMap = `---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: |\n${'    line\n'.repeat(70000)}`;
  await setText('workloads', compliant + bigConfigMap);
  seen = await settled(seen);
  page = await run(READ);
  assert.deepEqual(page.documents.map((d) => d.verdict), ['allowed', 'skipped'], 'the 70,000-line input shows its own verdict');
  assert.equal(await run('return document.querySelector("#results [data-failure]")'), null);
  // 600,000 spaces inside a settings key: the settings error is answered in under a second.
  const spaced = `checks:\n  ? x${' '.repeat(600000)}y\n  : 1\n`;
  await setText('settings', spaced);
  let settingsTime;
  [seen, settingsTime] = await settledAt(seen, true);
  assert.ok(settingsTime < 1000, `the spaced settings took ${settingsTime} ms`);
  const spacedProblems = await run(`return [...document.querySelectorAll('#settings-problems li')].map((li) => li.textContent)`);
  assert.equal(spacedProblems.length, 1, JSON.stringify(spacedProblems).slice(0, 300));
  // A link that unpacks to 100 MiB fails closed with a message, the editors left empty
  // and the link kept in the address bar.
  const bomb = `#${await encodeState({ workloads: 'a'.repeat(100 * 1024 * 1024), settings: '' })}`;
  await navigate('about:blank');
  await navigate(`${pageUrl}${bomb}`);
  const [, bombTime] = await settledAt(0, false);
  const linkProblem = () => run(`const p = document.getElementById('link-problem');
    return { hidden: p.hidden, text: p.textContent, hash: location.hash,
             workloads: document.getElementById('workloads').value };`);
  let problem = await linkProblem();
  assert.ok(bombTime < 2000, `the bomb link took ${bombTime} ms`);
  assert.equal(problem.hidden, false);
  assert.match(problem.text, /damaged: it unpacks to more than 9 MiB/);
  assert.equal(problem.hash, bomb);
  assert.equal(problem.workloads, '');
  // A truncated link says it is damaged, and the first evaluation does not erase that.
  const good = `#${await encodeState({ workloads: compliant, settings: '' })}`;
  const cut = good.slice(0, good.length - 10);
  await navigate('about:blank');
  await navigate(`${pageUrl}${cut}`);
  await settled(0);
  problem = await linkProblem();
  assert.equal(problem.hidden, false);
  assert.match(problem.text, /damaged: .*cut short/);
  assert.equal(problem.hash, cut);
  assert.equal(problem.workloads, '');
  // 10,000 containers: judged or stopped within two seconds, drawn without a node per finding.
  const containers = Array.from({ length: 10000 }, (_, i) => `  - {name: c${i}, image: nginx}`).join('\n');
  const huge = `#${await encodeState({ workloads: `apiVersion: v1\nkind: Pod\nmetadata: {name: huge}\nspec:\n  containers:\n${containers}\n`, settings: '' })}`;
  await navigate('about:blank');
  await navigate(`${pageUrl}${huge}`);
  const [, hugeTime] = await settledAt(0, false);
  const hugePage = await run(`return {
    verdicts: [...document.querySelectorAll('#results article.document')].map((a) => a.dataset.verdict),
    failure: document.querySelector('#results [data-failure]')?.textContent ?? null,
    collapsed: document.querySelector('#results [data-collapsed]') !== null,
    nodes: document.getElementsByTagName('*').length };`);
  assert.ok(hugeTime < 2000, `the 10,000-container link took ${hugeTime} ms`);
  assert.ok(hugePage.failure !== null || (hugePage.verdicts[0] === 'denied' && hugePage.collapsed), JSON.stringify(hugePage));
  assert.ok(hugePage.nodes < 5000, `${hugePage.nodes} elements on the page`);
  console.log(`hostile input (page time): settings ${settingsTime.toFixed(0)} ms, bomb link ${bombTime.toFixed(0)} ms, 10,000 containers ${hugeTime.toFixed(0)} ms (${hugePage.failure ? 'stopped' : 'denied'}, ${hugePage.nodes} elements)`);

  console.log(`checked ${EXAMPLES.length} examples, ${expected.denied.violations.length} violations, the mutate diff and the share link; screenshot: ${screenshotPath}`);
} finally {
  await call('DELETE', sid).catch(() => {});
  driver.kill();
}
