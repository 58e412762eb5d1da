//! Every fixture through the native policy, the Wasm module in podguard's host, and the
//! AdmissionReview layer: identical verdicts, messages, warnings and patches.

use base64::Engine as _;
use podguard_conformance::{Expected, Fixture, assert_all_conform, check, fixtures, policy_module};
use podguard_host::admission::{self, Endpoint, FailureMode};
use podguard_host::{HostConfig, PolicyModule, Runtime};
use podguard_policy::ValidationResponse;

fn load_module(runtime: &Runtime) -> PolicyModule {
    let bytes = std::fs::read(policy_module()).expect("the module was built");
    runtime.load("podguard", &bytes).expect("the module loads")
}

fn native(fixture: &Fixture) -> ValidationResponse {
    podguard_policy::validate_payload(&fixture.validate_payload())
}

#[test]
fn native_policy_answers_every_fixture_as_expected() {
    let failures = fixtures()
        .iter()
        .filter_map(|f| check(f, &Expected::from_response(f, &native(f))).err())
        .collect();
    assert_all_conform(failures);
}

#[test]
fn wasm_module_answers_exactly_as_the_native_policy() {
    let runtime = Runtime::new(HostConfig::default()).unwrap();
    let module = load_module(&runtime);
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let bytes = module
            .call("validate", &fixture.validate_payload())
            .expect("validate runs");
        let wasm: ValidationResponse =
            serde_json::from_slice(&bytes).expect("a ValidationResponse");
        let native = native(&fixture);
        if wasm != native {
            failures.push(format!(
                "{}:\n  native: {}\n  wasm:   {}",
                fixture.name,
                serde_json::to_string(&native).unwrap(),
                serde_json::to_string(&wasm).unwrap()
            ));
        }
    }
    assert_all_conform(failures);
}

#[test]
fn admission_responses_carry_the_expected_verdicts_and_patches() {
    let runtime = Runtime::new(HostConfig::default()).unwrap();
    let module = load_module(&runtime);
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let Some(expected) = fixture.expected() else {
            continue;
        };
        let settings = fixture.settings.to_string();
        let answer = admission::review(
            &module,
            &settings,
            &fixture.review_bytes,
            Endpoint::Mutate,
            FailureMode::Deny,
        )
        .expect("fixtures are valid reviews");
        let response = &answer.review["response"];
        let uid = fixture.review["request"]["uid"].as_str().unwrap();
        let patch = response["patch"].as_str().map(|p| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        });
        let problems = [
            (response["uid"] != uid).then(|| format!("uid {} != {uid}", response["uid"])),
            (response["allowed"] != expected.allowed)
                .then(|| format!("allowed {}", response["allowed"])),
            (patch != expected.patch).then(|| format!("patch {patch:?} != {:?}", expected.patch)),
            (expected.patch.is_some() != (response["patchType"] == "JSONPatch"))
                .then(|| "patchType".to_owned()),
            (!expected.allowed
                && response["status"]["message"] != expected.message.clone().unwrap_or_default())
            .then(|| format!("status.message {}", response["status"]["message"])),
        ];
        for problem in problems.into_iter().flatten() {
            failures.push(format!("{}: {problem}", fixture.name));
        }
        // A patch applied to the object must give an object the same policy admits
        // without further changes.
        if let Some(patch) = patch {
            let mut object = fixture.object().clone();
            let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
            json_patch::patch(&mut object, &patch).unwrap();
            let mut review = fixture.review.clone();
            review["request"]["object"] = object;
            let body = serde_json::to_vec(&review).unwrap();
            let again = admission::review(
                &module,
                &settings,
                &body,
                Endpoint::Mutate,
                FailureMode::Deny,
            )
            .unwrap();
            if !again.allowed || again.patched {
                failures.push(format!(
                    "{}: the patched object is not clean: {}",
                    fixture.name, again.review
                ));
            }
        }
        // A validating webhook never patches.
        let validate = admission::review(
            &module,
            &settings,
            &fixture.review_bytes,
            Endpoint::Validate,
            FailureMode::Deny,
        )
        .unwrap();
        if validate.patched || validate.allowed != expected.allowed {
            failures.push(format!(
                "{}: /validate answered {}",
                fixture.name, validate.review
            ));
        }
    }
    assert_all_conform(failures);
}

#[test]
fn module_exports_the_wapc_and_kubewarden_entry_points() {
    let bytes = std::fs::read(policy_module()).unwrap();
    let mut exports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::ExportSection(section) = payload.unwrap() {
            for export in section {
                exports.push(export.unwrap().name.to_owned());
            }
        }
    }
    for required in ["__guest_call", "wapc_init", "memory"] {
        assert!(
            exports.iter().any(|e| e == required),
            "missing export {required}; exports: {exports:?}"
        );
    }

    // validate, validate_settings and protocol_version are waPC operations registered by
    // wapc_init, so they are checked by calling them.
    let runtime = Runtime::new(HostConfig::default()).unwrap();
    let module = load_module(&runtime);
    assert_eq!(module.call("protocol_version", b"").unwrap(), br#""v1""#);
    let settings: serde_json::Value =
        serde_json::from_slice(&module.call("validate_settings", b"{}").unwrap()).unwrap();
    assert_eq!(settings["valid"], true);
    let refused: serde_json::Value = serde_json::from_slice(
        &module
            .call("validate_settings", br#"{"checks":{"nope":{}}}"#)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(refused["valid"], false);
    assert!(
        refused["message"].as_str().unwrap().contains("checks.nope"),
        "{refused}"
    );
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.name == "pod-noncompliant")
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(
        &module
            .call("validate", &fixture.validate_payload())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["accepted"], false);
    let unknown = module.call("no_such_operation", b"{}").unwrap_err();
    assert!(
        unknown.to_string().contains("no_such_operation")
            || unknown.to_string().contains("not found"),
        "{unknown}"
    );
}
