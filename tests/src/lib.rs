//! The fixture harness: AdmissionReview fixtures under `tests/fixtures/<case>/`, each with
//! `review.json` (what kube-apiserver sends), an optional `settings.json` (runtime
//! settings) and `expected.json` (verdict, messages, warnings, audit annotations and the
//! JSON Patch a mutating webhook returns).
//!
//! `PODGUARD_BLESS=1 cargo test -p podguard-conformance` rewrites `expected.json` from the
//! native policy; review the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use podguard_policy::ValidationResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One fixture case.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The directory name.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// `review.json`, as bytes.
    pub review_bytes: Vec<u8>,
    /// `review.json`, parsed.
    pub review: Value,
    /// `settings.json`, or `{}`.
    pub settings: Value,
}

impl Fixture {
    /// The waPC `validate` payload for this case.
    pub fn validate_payload(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "request": self.review["request"],
            "settings": self.settings,
        }))
        .expect("JSON values serialise")
    }

    /// `request.object`, which a patch applies to.
    pub fn object(&self) -> &Value {
        &self.review["request"]["object"]
    }

    /// The stored expectation.
    pub fn expected(&self) -> Option<Expected> {
        let text = std::fs::read_to_string(self.dir.join("expected.json")).ok()?;
        Some(
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}/expected.json: {e}", self.name)),
        )
    }
}

/// The repository's `tests/fixtures` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture, by name.
pub fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("tests/fixtures exists") {
        let dir = entry.expect("readable fixtures dir").path();
        let review_path = dir.join("review.json");
        if !review_path.is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let review_bytes = std::fs::read(&review_path).unwrap();
        let review = serde_json::from_slice(&review_bytes)
            .unwrap_or_else(|e| panic!("{name}/review.json: {e}"));
        let settings = match std::fs::read_to_string(dir.join("settings.json")) {
            Ok(text) => {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}/settings.json: {e}"))
            }
            Err(_) => serde_json::json!({}),
        };
        out.push(Fixture {
            name,
            dir,
            review_bytes,
            review,
            settings,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        !out.is_empty(),
        "no fixtures found under {}",
        fixtures_dir().display()
    );
    out
}

/// What a fixture's answer must be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expected {
    /// The verdict.
    pub allowed: bool,
    /// The rejection message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Admission warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Audit annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    /// The RFC 6902 patch a mutating webhook returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
}

impl Expected {
    /// The expectation a policy response amounts to for `fixture`.
    pub fn from_response(fixture: &Fixture, response: &ValidationResponse) -> Expected {
        let patch = response
            .mutated_object
            .as_ref()
            .map(|mutated| json_patch::diff(fixture.object(), mutated))
            .filter(|patch| !patch.0.is_empty())
            .map(|patch| serde_json::to_value(patch).unwrap());
        Expected {
            allowed: response.accepted,
            message: response.message.clone(),
            warnings: response.warnings.clone().unwrap_or_default(),
            audit_annotations: response.audit_annotations.clone().unwrap_or_default(),
            patch,
        }
    }
}

/// Whether this run rewrites the expectations.
pub fn blessing() -> bool {
    std::env::var_os("PODGUARD_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the stored expectation (or stores it when blessing); returns a
/// description of the difference.
pub fn check(fixture: &Fixture, actual: &Expected) -> Result<(), String> {
    if blessing() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(fixture.dir.join("expected.json"), text).unwrap();
        return Ok(());
    }
    match fixture.expected() {
        None => Err(format!(
            "{}: no expected.json; run PODGUARD_BLESS=1 cargo test -p podguard-conformance and review it",
            fixture.name
        )),
        Some(expected) if &expected == actual => Ok(()),
        Some(expected) => Err(format!(
            "{}:\n  expected: {}\n  actual:   {}",
            fixture.name,
            serde_json::to_string(&expected).unwrap(),
            serde_json::to_string(actual).unwrap()
        )),
    }
}

/// Fails the test with every fixture's difference, one per line, when there is any: a
/// conformance run reports all the cases that differ, not only the first.
pub fn assert_all_conform(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The release `wasm32-wasip1` policy module, built once per test run so the tests always
/// judge the module built from this source (cargo makes this a no-op when up to date).
pub fn policy_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace)
            .args(["build", "--release", "--target", "wasm32-wasip1", "-p", "podguard-policy"])
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the policy module failed; is the target installed? (rustup target add wasm32-wasip1)"
        );
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        target_dir.join("wasm32-wasip1/release/podguard_policy.wasm")
    })
}
