//! Every fixture through the playground's build of the policy, run by Node from the very
//! files the page loads: the same verdicts, messages, warnings, audit annotations and JSON
//! Patches as the native policy and the `wasm32-wasip1` module (tests/tests/conformance.rs
//! holds the module to the same expectations).

mod support;

use podguard_conformance::{Expected, assert_all_conform, blessing, check, fixtures};
use podguard_policy::ValidationResponse;
use serde_json::Value;

#[test]
fn browser_build_answers_every_fixture_as_expected() {
    let site = support::site();
    let fixtures = fixtures();
    let payloads: Vec<Value> = fixtures
        .iter()
        .map(|f| serde_json::from_slice(&f.validate_payload()).unwrap())
        .collect();
    let output = support::node(
        &["playground/tests/node/validate.mjs", site.to_str().unwrap()],
        &serde_json::to_vec(&payloads).unwrap(),
    );
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).expect("node prints JSON");
    assert_eq!(answers.len(), fixtures.len());

    let mut failures = Vec::new();
    for (fixture, answer) in fixtures.iter().zip(answers) {
        let native = podguard_policy::validate_payload(&fixture.validate_payload());
        let browser: ValidationResponse = serde_json::from_value(answer.clone()).unwrap();
        if browser != native {
            failures.push(format!(
                "{}: the browser build's response differs from the native one:\n  native:  {}\n  browser: {}",
                fixture.name,
                serde_json::to_string(&native).unwrap(),
                serde_json::to_string(&browser).unwrap()
            ));
        }
        // The patch is the browser build's own, computed in the Wasm module, not
        // recomputed here from its mutated object.
        let actual = Expected {
            allowed: browser.accepted,
            message: browser.message.clone(),
            warnings: browser.warnings.clone().unwrap_or_default(),
            audit_annotations: browser.audit_annotations.clone().unwrap_or_default(),
            patch: answer.get("patch").cloned(),
        };
        // While the native test rewrites expected.json, hold the browser build to the
        // native answer instead of racing it for the file.
        let verdict = if blessing() {
            let native = Expected::from_response(fixture, &native);
            (native == actual)
                .then_some(())
                .ok_or_else(|| format!("{}: browser {actual:?} != native {native:?}", fixture.name))
        } else {
            check(fixture, &actual)
        };
        if let Err(difference) = verdict {
            failures.push(difference);
        }
    }
    assert_all_conform(failures);
}

#[test]
fn page_helpers_pass_their_node_tests() {
    support::node(&["--test", "playground/tests/node/text.test.mjs"], b"");
}
