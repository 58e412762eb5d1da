//! The files generated from the check definitions are current: the requirements document,
//! the settings form, the README's table and the settings schema in the Helm chart's
//! `values.schema.json`. `PODGUARD_BLESS=1` rewrites them.

use std::path::{Path, PathBuf};

use podguard_policy::docs;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn bless() -> bool {
    std::env::var_os("PODGUARD_BLESS").is_some_and(|v| v == "1")
}

/// Compares `path` with `expected`, or writes it when blessing.
fn check(path: &Path, expected: &str) {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current == expected {
        return;
    }
    if bless() {
        std::fs::write(path, expected).unwrap();
        return;
    }
    let first_difference = current
        .lines()
        .zip(expected.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| current.lines().count().min(expected.lines().count()));
    panic!(
        "{} is not what the check definitions generate (first difference at line {}):\n  file:      {:?}\n  generated: {:?}\nregenerate it with PODGUARD_BLESS=1 cargo test -p podguard-policy --test generated",
        path.display(),
        first_difference + 1,
        current.lines().nth(first_difference),
        expected.lines().nth(first_difference)
    );
}

#[test]
fn the_requirements_document_is_generated() {
    check(
        &repo().join("policy/requirements.yaml"),
        &docs::requirements_yaml(),
    );
}

#[test]
fn the_settings_form_is_generated() {
    check(
        &repo().join("policy/questions-ui.yml"),
        &docs::questions_ui_yaml(),
    );
}

#[test]
fn the_readme_table_is_generated() {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(docs::README_TABLE_START)
        .expect("README.md has the start marker of the checks table")
        + docs::README_TABLE_START.len()
        + 1;
    let end = readme[start..]
        .find(docs::README_TABLE_END)
        .expect("README.md has the end marker of the checks table")
        + start;
    let expected = format!(
        "{}{}{}",
        &readme[..start],
        docs::readme_table(),
        &readme[end..]
    );
    check(&path, &expected);
}

/// The chart's `values.schema.json` checks `settings` with the schema the definitions
/// generate (its `definitions.settings`; the rest of the file is the chart's own).
#[test]
fn the_chart_settings_schema_is_generated() {
    let path = repo().join("charts/podguard/values.schema.json");
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    schema["definitions"]["settings"] = docs::settings_schema();
    let expected = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    check(&path, &expected);
}

/// The settings schema takes the requirements document (every key, at its default) and
/// refuses a mistyped check, option or mode.
#[test]
fn the_settings_schema_takes_the_requirements_and_nothing_else() {
    let schema = docs::settings_schema();
    let document: serde_json::Value = serde_saphyr::from_str(&docs::requirements_yaml()).unwrap();
    let checks = &schema["properties"]["checks"]["properties"];
    for (id, check) in document["checks"].as_object().unwrap() {
        let properties = &checks[id.as_str()]["properties"];
        assert!(properties.is_object(), "no schema for check {id}");
        for key in check.as_object().unwrap().keys() {
            assert!(properties.get(key).is_some(), "no schema for {id}.{key}");
        }
    }
    for section in ["exemptions", "rollout"] {
        let properties = &schema["properties"][section]["properties"];
        for (key, value) in document[section].as_object().unwrap() {
            assert!(
                properties.get(key).is_some(),
                "no schema for {section}.{key}"
            );
            if let Some(nested) = value.as_object() {
                for inner in nested.keys() {
                    assert!(
                        properties[key]["properties"].get(inner).is_some(),
                        "no schema for {section}.{key}.{inner}"
                    );
                }
            }
        }
    }
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["checks"]["additionalProperties"],
        false
    );
    assert_eq!(
        checks["run-as-non-root"]["properties"]["mode"]["enum"],
        serde_json::json!(["enforce", "mutate", "warn", "off"])
    );
}

/// The generated requirements document is the built-in baseline: read back, it compiles
/// to the same settings as no document at all.
#[test]
fn the_generated_document_is_the_baseline() {
    let document: serde_json::Value = serde_saphyr::from_str(&docs::requirements_yaml()).unwrap();
    let from_document = podguard_policy::Settings::from_value(document).unwrap();
    assert_eq!(from_document, podguard_policy::Settings::default());
}
