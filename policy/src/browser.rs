//! The playground's front: the policy for `wasm32-unknown-unknown`, through wasm-bindgen.
//!
//! Nothing here judges a workload. [`validate`] and [`playground`] hand the work to the
//! functions the waPC module and the server call ([`crate::validate_payload`] and
//! [`crate::evaluate()`]); this module only reads YAML, builds the admission request a
//! `kubectl apply` would send, and turns the answer into JSON for the page. Results cross
//! into JavaScript as JSON text, so the same functions run natively in this crate's tests.
//!
//! ```
//! let answer = podguard_policy::browser::playground(
//!     "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: app, image: nginx:1.27}]\n",
//!     "",
//! );
//! let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
//! assert_eq!(answer["documents"][0]["outcome"]["accepted"], false);
//! ```

use serde::Serialize;
use serde_json::{Value, json};
use wasm_bindgen::prelude::wasm_bindgen;

use crate::contract::RequestBuilder;
use crate::object::WorkloadKind;
use crate::settings::{CheckId, Policy, SettingsError};
use crate::{Outcome, ValidationResponse};

/// The waPC `validate` operation, for the conformance tests: the same payload in, the
/// same [`ValidationResponse`] out, plus the RFC 6902 `patch` from `request.object` to the
/// mutated object that a webhook would send.
#[wasm_bindgen]
pub fn validate(payload: &str) -> String {
    let response = crate::validate_payload(payload.as_bytes());
    let object = serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|mut p| p.get_mut("request")?.get_mut("object").map(Value::take));
    let patch = match (&object, &response.mutated_object) {
        (Some(object), Some(mutated)) => patch_between(object, mutated),
        _ => None,
    };
    #[derive(Serialize)]
    struct Answer {
        #[serde(flatten)]
        response: ValidationResponse,
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<Value>,
    }
    serde_json::to_string(&Answer { response, patch }).expect("JSON values serialise")
}

/// Judges every document of `workloads` (YAML, one or more documents, `kind: List`
/// expanded) as a CREATE in its namespace, under `settings` (YAML runtime settings layered
/// over the embedded requirements, as Kubewarden's policy settings are).
///
/// Returns JSON: `settings` (`{ok, modes, problems}`), `yamlError` (`{message, line,
/// column}` or null) and `documents`, each with its start `line`, `kind`, `name`,
/// `namespace`, a `note` when podguard does not judge it, and otherwise the `outcome`,
/// the `patch` and the object before and after mutation as YAML.
#[wasm_bindgen]
pub fn playground(workloads: &str, settings: &str) -> String {
    let (policy, settings_report) = read_settings(settings);
    let mut answer = json!({
        "settings": settings_report,
        "yamlError": null,
        "documents": [],
    });
    match (read_documents(workloads), policy) {
        (Err(error), _) => answer["yamlError"] = error,
        (Ok(documents), Some(policy)) => {
            answer["documents"] = documents
                .into_iter()
                .map(|(line, object)| judge_document(&policy, line, object))
                .collect()
        }
        // Without usable settings there is no policy to judge by; the page says so rather
        // than judge by other settings than the ones it shows.
        (Ok(_), None) => {}
    }
    answer.to_string()
}

/// The policy's version, shown on the page so a result can be tied to a release.
#[wasm_bindgen]
pub fn version() -> String {
    crate::VERSION.to_owned()
}

fn patch_between(before: &Value, after: &Value) -> Option<Value> {
    let patch = json_patch::diff(before, after);
    (!patch.0.is_empty()).then(|| serde_json::to_value(patch).expect("patches serialise"))
}

fn yaml_error(error: &serde_saphyr::Error) -> Value {
    let location = error.location();
    json!({
        // The location is reported separately, so the page can put the message at its
        // line; the snippet serde-saphyr renders would repeat the text around it.
        "message": yaml_message(error.without_snippet()),
        "line": location.as_ref().map(|l| l.line()),
        "column": location.as_ref().map(|l| l.column()),
    })
}

/// serde-saphyr's message in the page's words: its own name a Rust API (`DuplicateKeyPolicy
/// in Options`, `budget breached: Nodes { .. }`) and end with the location the page already
/// shows beside them.
fn yaml_message(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    match error {
        Error::DuplicateMappingKey { key: Some(key), .. } => {
            format!("{key:?} is set twice in the same mapping; remove one of them")
        }
        Error::DuplicateMappingKey { key: None, .. } => {
            "a key is set twice in the same mapping; remove one of them".to_owned()
        }
        Error::Budget { breach, .. } => {
            let limit = match breach {
                BudgetBreach::Nodes { .. } => {
                    format!(
                        "more than {} values",
                        serde_saphyr::Budget::default().max_nodes
                    )
                }
                BudgetBreach::Documents { .. } => format!("more than {MAX_DOCUMENTS} documents"),
                BudgetBreach::ScalarBytes { .. } | BudgetBreach::InputBytes { .. } => {
                    "more text than the reader takes".to_owned()
                }
                BudgetBreach::Depth { .. } => "nesting deeper than the reader takes".to_owned(),
                _ => "more aliases, anchors or events than the reader takes".to_owned(),
            };
            format!(
                "the YAML holds {limit}; split it, or run `podguard audit`, which reads one document at a time"
            )
        }
        other => {
            let text = other.to_string();
            match text.rfind(" at line ") {
                Some(at) if text[at..].contains(", column ") => text[..at].to_owned(),
                _ => text,
            }
        }
    }
}

/// The most documents the page reads from one input; `podguard audit` reads any number.
const MAX_DOCUMENTS: usize = 20_000;

/// Reads the settings YAML; problems are reported with the dotted field path they concern
/// and, where YAML parsing itself failed, the line.
fn read_settings(text: &str) -> (Option<Policy>, Value) {
    let overrides = if text.trim().is_empty() {
        Ok(Value::Null)
    } else {
        serde_saphyr::from_str::<Value>(text)
    };
    let overrides = match overrides {
        Ok(value) => value,
        Err(error) => {
            return (None, json!({"ok": false, "problems": [yaml_error(&error)]}));
        }
    };
    match crate::policy_from_settings(&overrides) {
        Ok(policy) => {
            let modes: Vec<Value> = CheckId::ALL
                .into_iter()
                .map(|id| {
                    json!({
                        "check": id.as_str(),
                        "mode": policy.mode(id),
                        "canMutate": id.can_mutate(),
                        "description": id.description(),
                    })
                })
                .collect();
            (
                Some(policy),
                json!({"ok": true, "modes": modes, "problems": []}),
            )
        }
        Err(error) => {
            let problems: Vec<Value> = match error {
                SettingsError::Schema { field, message } => {
                    vec![json!({"field": field, "message": message})]
                }
                SettingsError::Invalid(problems) => problems
                    .into_iter()
                    .map(|p| json!({"field": p.field, "message": p.message}))
                    .collect(),
                SettingsError::NotJson(message) => vec![json!({"message": message})],
            };
            (None, json!({"ok": false, "problems": problems}))
        }
    }
}

/// Every document with the line it starts on; a list (`kind: List`, as `kubectl get -o
/// yaml` prints it, or a typed one such as `PodList`) contributes its items, each at the
/// list's line.
fn read_documents(text: &str) -> Result<Vec<(u64, Value)>, Value> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = MAX_DOCUMENTS;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let documents: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| yaml_error(&e))?;
    let mut out = Vec::new();
    for document in documents {
        let line = document.referenced.line();
        match document.value {
            Value::Object(mut list)
                if list
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| kind.ends_with("List"))
                    && list.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = list.remove("items") {
                    out.extend(items.into_iter().map(|item| (line, item)));
                }
            }
            value => out.push((line, value)),
        }
    }
    Ok(out)
}

fn judge_document(policy: &Policy, line: u64, object: Value) -> Value {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);
    let api_version = text(&object, "apiVersion").unwrap_or_default();
    let kind = text(&object, "kind");
    let name = text(&metadata, "name").or_else(|| text(&metadata, "generateName"));
    let mut document = json!({
        "line": line,
        "kind": kind,
        "apiVersion": api_version,
        "name": name,
    });
    let Some(kind_name) = kind.filter(|_| object.is_object()) else {
        document["note"] = json!("not a Kubernetes object: it needs `apiVersion` and `kind`");
        return document;
    };
    let Some(workload) = WorkloadKind::from_type_meta(&api_version, &kind_name) else {
        document["note"] = json!(format!(
            "podguard does not judge {kind_name} ({}): the API server would admit it untouched",
            if api_version.is_empty() {
                "no apiVersion"
            } else {
                &api_version
            }
        ));
        return document;
    };
    // kubectl sends namespaced objects without a namespace to its context's namespace;
    // the playground has no context, so it takes `default`, as a fresh kubeconfig does.
    let namespace = text(&metadata, "namespace").unwrap_or_else(|| "default".to_owned());
    document["namespace"] = json!(namespace);
    let object_json = serde_json::to_vec(&object).expect("JSON values serialise");
    let mut request_json = Vec::with_capacity(object_json.len() + 256);
    let builder = RequestBuilder::create(workload, &api_version, &object_json)
        .uid("playground")
        .namespace(&namespace)
        .dry_run(false);
    let builder = match &name {
        Some(name) => builder.name(name),
        None => builder,
    };
    builder.write_request(&mut request_json);
    // The same path as a host's request: the object read from the request's text.
    let outcome: Outcome = match crate::evaluate::evaluate_request_text(policy, &request_json) {
        Ok(outcome) => outcome,
        Err(err) => {
            document["note"] = json!(format!("podguard cannot read this object: {err}"));
            return document;
        }
    };
    let object = &object;
    let yaml = |v: &Value| serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# {e}"));
    document["patch"] = json!(
        outcome
            .mutated_object
            .as_ref()
            .and_then(|m| patch_between(object, m))
    );
    // The YAML diff is drawn only for a mutated object.
    if let Some(mutated) = &outcome.mutated_object {
        document["before"] = json!(yaml(object));
        document["after"] = json!(yaml(mutated));
    }
    let violations = outcome.violations.len();
    // The page receives the mutated object as YAML and as a patch; once is enough.
    let mut outcome = serde_json::to_value(&outcome).expect("outcomes serialise");
    if let Some(fields) = outcome.as_object_mut() {
        fields.remove("mutatedObject");
        if violations > MAX_VIOLATIONS_LISTED
            && let Some(Value::Array(listed)) = fields.get_mut("violations")
        {
            listed.truncate(MAX_VIOLATIONS_LISTED);
            document["violationsNotListed"] = json!(violations - MAX_VIOLATIONS_LISTED);
        }
    }
    document["outcome"] = outcome;
    document
}

/// The most findings of one object the page receives: an object with 10,000 containers has
/// 80,000, 30 MB of JSON to copy out of the worker and parse for a list nobody reads
/// whole. The verdict and the counts do not change; `podguard audit -o json` lists every one.
const MAX_VIOLATIONS_LISTED: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Mode;

    fn run(workloads: &str, settings: &str) -> Value {
        serde_json::from_str(&playground(workloads, settings)).unwrap()
    }

    const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      image: nginx:1.27
";

    #[test]
    fn typed_lists_are_split_into_their_items_as_kubectl_does() {
        let list = "apiVersion: v1\nkind: PodList\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: a}\n    spec: {containers: [{name: c, image: nginx}]}\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: b}\n    spec: {containers: [{name: c, image: nginx}]}\n";
        let answer = run(list, "");
        let names: Vec<_> = answer["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn an_object_with_thousands_of_findings_lists_the_first_thousand_and_counts_the_rest() {
        let containers: String = (0..2_000)
            .map(|i| format!("    - {{name: c{i}, image: nginx}}\n"))
            .collect();
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: many}}\nspec:\n  containers:\n{containers}"
        );
        let answer = run(&pod, "");
        let document = &answer["documents"][0];
        assert_eq!(document["outcome"]["accepted"], false);
        assert_eq!(
            document["outcome"]["violations"].as_array().unwrap().len(),
            MAX_VIOLATIONS_LISTED
        );
        assert!(document["violationsNotListed"].as_u64().unwrap() > 10_000);
        assert!(document["before"].is_null(), "no diff without a mutation");
    }

    #[test]
    fn more_than_1024_documents_are_judged() {
        let many = format!("{POD}---\n").repeat(1500);
        let answer = run(&many, "");
        assert!(answer["yamlError"].is_null(), "{}", answer["yamlError"]);
        assert_eq!(answer["documents"].as_array().unwrap().len(), 1500);
    }

    #[test]
    fn yaml_errors_speak_the_pages_words_and_give_the_location_once() {
        let duplicate = run("kind: Pod\nkind: Pod\n", "");
        let message = duplicate["yamlError"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            "\"kind\" is set twice in the same mapping; remove one of them"
        );
        assert_eq!(duplicate["yamlError"]["line"], 2);

        let broken = run("kind: Pod\nspec:\n  x: [\n", "");
        let message = broken["yamlError"]["message"].as_str().unwrap();
        assert!(!message.contains(" at line "), "{message}");

        let nodes = format!("items: [{}]\n", "1,".repeat(260_000));
        let budget = run(&nodes, "");
        let message = budget["yamlError"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("the YAML holds more than 250000 values;")
                && !message.contains("budget"),
            "{message}"
        );
    }

    #[test]
    fn every_document_is_judged_at_its_line() {
        let text =
            format!("{POD}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{POD}");
        let answer = run(&text, "");
        let documents = answer["documents"].as_array().unwrap();
        assert_eq!(documents.len(), 3, "{answer}");
        assert_eq!(documents[0]["outcome"]["accepted"], false);
        assert_eq!(documents[0]["namespace"], "default");
        assert!(documents[1]["note"].as_str().unwrap().contains("ConfigMap"));
        assert_eq!(documents[2]["line"], 14);
    }

    #[test]
    fn a_yaml_error_names_its_line() {
        let answer = run(&format!("{POD}---\nkind: Pod\n  bad: [\n"), "");
        assert_eq!(answer["yamlError"]["line"], 11, "{answer}");
        // Both documents are read, so both editors can show their problem at once.
        let answer = run(
            "kind: Pod\n  bad: [\n",
            "checks:\n  run-as-non-root: {mode: maybe}\n",
        );
        assert_eq!(answer["yamlError"]["line"], 2, "{answer}");
        assert_eq!(answer["settings"]["ok"], false);
        assert_eq!(
            answer["settings"]["problems"][0]["field"],
            "checks.run-as-non-root.mode"
        );
    }

    #[test]
    fn settings_are_layered_over_the_embedded_requirements() {
        // Only run-as-non-root and the warn-mode checks fail for this Pod.
        let pod = POD.replace(
            "      image: nginx:1.27\n",
            "      image: nginx:1.27\n      resources: {limits: {cpu: 1, memory: 1Gi}}\n      \
             securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n",
        );
        let settings = "checks:\n  run-as-non-root:\n    mode: mutate\n  prometheus-annotations: {mode: 'off'}\n";
        let answer = run(&pod, settings);
        let modes = &answer["settings"]["modes"];
        assert_eq!(modes[0]["mode"], "mutate", "{answer}");
        assert_eq!(modes[1]["mode"], "enforce", "{answer}");
        assert_eq!(modes[3]["mode"], "off", "{answer}");
        let document = &answer["documents"][0];
        assert!(
            document["patch"]
                .as_array()
                .unwrap()
                .iter()
                .any(|op| op["path"] == "/spec/securityContext"),
            "{document}"
        );
        assert!(document["after"].as_str().unwrap().contains("runAsNonRoot"));
        assert!(document["outcome"].get("mutatedObject").is_none());
    }

    #[test]
    fn validate_returns_the_wapc_answer_and_its_patch() {
        let payload = json!({
            "request": {
                "uid": "1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE",
                "namespace": "shop",
                "object": serde_saphyr::from_str::<Value>(POD).unwrap(),
            },
            "settings": {"checks": {
                "run-as-non-root": {"mode": "mutate"},
                "drop-capabilities": {"mode": "mutate"},
                "resource-limits": {"mode": "mutate"},
                "prometheus-annotations": {"mode": "off"},
                "no-privilege-escalation": {"mode": "mutate"},
            }},
        })
        .to_string();
        let answer: Value = serde_json::from_str(&validate(&payload)).unwrap();
        let native = serde_json::to_value(crate::validate_payload(payload.as_bytes())).unwrap();
        for (key, value) in native.as_object().unwrap() {
            assert_eq!(&answer[key], value, "{key}");
        }
        assert_eq!(answer["accepted"], true, "{answer}");
        assert!(
            answer["patch"].as_array().is_some_and(|p| !p.is_empty()),
            "{answer}"
        );
    }

    #[test]
    fn mode_is_reported_for_every_check() {
        let answer = run(POD, "");
        assert_eq!(
            answer["settings"]["modes"].as_array().unwrap().len(),
            CheckId::ALL.len()
        );
        let health = answer["settings"]["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["check"] == "health-probes")
            .expect("health-probes is listed");
        assert_eq!(health["mode"], json!(Mode::Off));
    }
}
