// Runs waPC `validate` payloads through the playground's build of the policy (the very
// files the page loads), for the conformance test in playground/tests/conformance.rs.
//
// usage: node validate.mjs SITE_DIR < payloads.json   (a JSON array of payloads)
// prints a JSON array with the module's answer to each.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const site = resolve(process.argv[2] ?? 'target/playground');
const glue = await import(pathToFileURL(join(site, 'pkg/podguard_policy.js')).href);
glue.initSync({ module: readFileSync(join(site, 'pkg/podguard_policy_bg.wasm')) });

const payloads = JSON.parse(readFileSync(0, 'utf8'));
const answers = payloads.map((payload) => JSON.parse(glue.validate(JSON.stringify(payload))));
process.stdout.write(JSON.stringify(answers));
