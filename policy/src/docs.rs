//! The documents that describe the checks to people, generated from their definitions
//! ([`crate::checks::Definition`]) and their options' defaults: the requirements document
//! (`policy/requirements.yaml`, the settings with every default and comment), the settings
//! form (`policy/questions-ui.yml`, which ArtifactHub and Rancher show) and the README's
//! table of checks, and the settings' JSON Schema (the Helm chart's `values.schema.json`
//! checks `settings` with it). `policy/tests/generated.rs` regenerates each and compares it with the
//! file in the repository (`PODGUARD_BLESS=1` rewrites them).

use std::fmt::Write as _;

use serde_json::Value;

use crate::checks::{CheckId, Checks, Input, KINDS_DOC, OptionDoc};
use crate::object::WorkloadKind;
use crate::settings::{Exemptions, Mode, Rollout};

/// Where the README's generated table starts and ends.
pub const README_TABLE_START: &str = "<!-- checks: generated from policy/src/checks by `PODGUARD_BLESS=1 cargo test -p podguard-policy --test generated` -->";
/// See [`README_TABLE_START`].
pub const README_TABLE_END: &str = "<!-- end of checks -->";

const REQUIREMENTS_HEADER: &str = "\
# podguard requirements: the workload-hardening baseline this module enforces.
#
# This file is the policy's settings schema and its defaults. The build embeds it into the
# module, so a module built from your own copy enforces it with no runtime settings:
#
#   PODGUARD_REQUIREMENTS=/path/to/requirements.yaml \\
#     cargo build --release --target wasm32-wasip1 -p podguard-policy
#
# Runtime settings (Kubewarden policy settings, or `podguard --settings`) override this file
# field by field: maps merge key by key, lists and scalars replace.
#
# Every check takes `mode`: enforce (reject), mutate (fix what can be fixed, reject the
# rest), warn (allow with an admission warning) or off; and `kinds`: the workload kinds it
# judges, of Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job
# and CronJob. A Pod whose controller is a Job counts as a Job, a Job whose controller is a
# CronJob as a CronJob.
#
# (Generated from the check definitions in policy/src/checks; an edited copy for your
# own build is yours to keep.)
";

/// The exemption options, as the form and the document describe them.
const EXEMPTION_DOCS: &[OptionDoc] = &[
    OptionDoc {
        key: "namespaces",
        label: "Exempt namespaces",
        description: "Requests in these namespaces are not evaluated (reported as an audit annotation).",
        input: Input::List,
        mutate_only: false,
    },
    OptionDoc {
        key: "images",
        label: "Exempt images",
        description: "Containers whose image matches one of these globs skip every container check. `*` matches any run of characters (including `/`), `?` one character, `[a-z]` a class.",
        input: Input::List,
        mutate_only: false,
    },
    OptionDoc {
        key: "annotation.checks",
        label: "Annotation exemptions, checks",
        description: "Checks a workload may exempt itself from with the annotation podguard.io/exempt: \"<check-id>,...\" beside a podguard.io/exempt-reason that says why. Whoever writes a workload writes its annotations, so this is empty (annotation exemptions off) unless you list checks, and namespaces below.",
        input: Input::List,
        mutate_only: false,
    },
    OptionDoc {
        key: "annotation.namespaces",
        label: "Annotation exemptions, namespaces",
        description: "Namespaces (names or globs such as team-*) where the podguard.io/exempt annotation counts, for the checks above.",
        input: Input::List,
        mutate_only: false,
    },
];

/// The rollout options, as the form and the document describe them.
const ROLLOUT_DOCS: &[OptionDoc] = &[
    OptionDoc {
        key: "observeOnly",
        label: "Observe only",
        description: "Every enforce and mutate check only warns, in every namespace (per-namespace modes included): nothing is rejected or changed and every finding is still reported, as Kubewarden's monitor mode. Turn it on to roll podguard out, off once the warnings are fixed.",
        input: Input::Bool,
        mutate_only: false,
    },
    OptionDoc {
        key: "namespaces",
        label: "Per-namespace modes",
        description: "Modes for some namespaces, the first entry that matches wins: {names: [team-a, legacy-*], mode: warn, checks: {resource-limits: enforce}}; `mode` sets every check there, `checks` some of them. Admission requests carry a namespace's name, not its labels, so namespaces are named here.",
        input: Input::List,
        mutate_only: false,
    },
];

/// `policy/requirements.yaml`.
pub fn requirements_yaml() -> String {
    let defaults = serde_json::to_value(Checks::default()).expect("settings serialise");
    let mut out = String::from(REQUIREMENTS_HEADER);
    out.push_str("\nchecks:\n");
    for id in CheckId::ALL {
        let definition = id.definition();
        let options = &defaults[id.as_str()];
        let _ = writeln!(out, "  {}:", id.as_str());
        comment(&mut out, 4, definition.description);
        let _ = writeln!(out, "    mode: {}", yaml_scalar(&options["mode"]));
        write_options(&mut out, 4, options, definition.options);
        out.push('\n');
    }
    out.push_str("exemptions:\n");
    let exemptions = serde_json::to_value(Exemptions::default()).expect("settings serialise");
    write_options(&mut out, 2, &exemptions, EXEMPTION_DOCS);
    out.push_str("\nrollout:\n");
    let rollout = serde_json::to_value(Rollout::default()).expect("settings serialise");
    write_options(&mut out, 2, &rollout, ROLLOUT_DOCS);
    out
}

/// Writes the options of `object` but `mode`, each under the comments of its docs.
fn write_options(out: &mut String, indent: usize, object: &Value, docs: &[OptionDoc]) {
    let Value::Object(map) = object else { return };
    for (key, value) in map.iter().filter(|(key, _)| *key != "mode") {
        for doc in docs.iter().filter(|d| top_key(d.key) == key) {
            match doc.key.split_once('.') {
                Some((_, inner)) => comment(out, indent, &format!("{inner}: {}", doc.description)),
                None => comment(out, indent, doc.description),
            }
        }
        write_entry(out, indent, key, value);
    }
}

fn top_key(key: &str) -> &str {
    key.split_once('.').map_or(key, |(top, _)| top)
}

fn write_entry(out: &mut String, indent: usize, key: &str, value: &Value) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            let _ = writeln!(out, "{pad}{}:", yaml_key(key));
            for (inner, value) in map {
                write_entry(out, indent + 2, inner, value);
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}: {}", yaml_key(key), yaml_value(other));
        }
    }
}

/// A value on one line: scalars, flow lists, `{}`.
fn yaml_value(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(yaml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", yaml_key(k), yaml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        scalar => yaml_scalar(scalar),
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::String(text) if plain(text) => text.clone(),
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

fn yaml_key(key: &str) -> String {
    if plain(key) {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Whether a string reads back as itself unquoted, in YAML 1.1 and 1.2 alike.
fn plain(text: &str) -> bool {
    const SPECIAL: [&str; 12] = [
        "", "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", "NULL",
    ];
    !SPECIAL.contains(&text.to_ascii_lowercase().as_str())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./<>|".contains(c))
        && !text.starts_with(['-', '.', '<', '>', '|'])
        && text.parse::<f64>().is_err()
}

/// `text` as `#` comment lines wrapped at 92 columns.
fn comment(out: &mut String, indent: usize, text: &str) {
    let prefix = format!("{}# ", " ".repeat(indent));
    for line in wrap(text, 92 - prefix.len()) {
        let _ = writeln!(out, "{prefix}{line}");
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `policy/questions-ui.yml`: the settings form.
pub fn questions_ui_yaml() -> String {
    let defaults = serde_json::to_value(Checks::default()).expect("settings serialise");
    let mut out = String::from(
        "# Generated from the check definitions in policy/src/checks by\n#   PODGUARD_BLESS=1 cargo test -p podguard-policy --test generated\nquestions:\n",
    );
    for id in CheckId::ALL {
        let definition = id.definition();
        let variable = format!("checks.{}", id.as_str());
        out.push_str("- default: {}\n");
        folded(&mut out, 2, "description", definition.description);
        out.push_str("  group: Settings\n");
        let _ = writeln!(out, "  label: {}", definition.title);
        out.push_str("  hide_input: true\n  type: map[\n");
        let _ = writeln!(out, "  variable: {variable}");
        out.push_str("  subquestions:\n");
        let mode = Mode::from_value(&defaults[id.as_str()]["mode"]);
        let _ = writeln!(
            out,
            "    - default: {}",
            yaml_scalar(&Value::String(mode.to_string()))
        );
        let mutate = match definition.mutation {
            Some(sets) => format!("mutate fixes what it can ({sets}) and rejects the rest"),
            None => "mutate rejects too (only a person can fix a violation)".to_owned(),
        };
        folded(
            &mut out,
            6,
            "tooltip",
            &format!(
                "enforce rejects; {mutate}; warn allows with an admission warning; off disables the check."
            ),
        );
        out.push_str("      group: Settings\n      label: Mode\n      options:\n");
        for option in ["enforce", "mutate", "warn", "\"off\""] {
            let _ = writeln!(out, "        - {option}");
        }
        let _ = writeln!(out, "      type: enum\n      variable: {variable}.mode");
        for doc in std::iter::once(&KINDS_DOC).chain(definition.options) {
            question(
                &mut out,
                &variable,
                doc,
                &defaults[id.as_str()],
                definition.mutation.is_some(),
            );
        }
    }
    let exemptions = serde_json::to_value(Exemptions::default()).expect("settings serialise");
    out.push_str("- default: {}\n");
    folded(
        &mut out,
        2,
        "description",
        "Requests and containers podguard does not evaluate. Every exemption is reported as an audit annotation. Namespace and image exemptions are yours; a workload's own podguard.io/exempt annotation counts only for the checks and namespaces listed under the annotation exemptions.",
    );
    out.push_str("  group: Settings\n  label: Exemptions\n  hide_input: true\n  type: map[\n  variable: exemptions\n  subquestions:\n");
    for doc in EXEMPTION_DOCS {
        question(&mut out, "exemptions", doc, &exemptions, false);
    }
    // Per-namespace modes are a list of maps, which the form cannot ask for; they are
    // written in the settings YAML.
    let rollout = serde_json::to_value(Rollout::default()).expect("settings serialise");
    out.push_str("- default: {}\n");
    folded(
        &mut out,
        2,
        "description",
        "Rolling podguard out: observe first, then enforce namespace by namespace (per-namespace modes go in the settings YAML, rollout.namespaces).",
    );
    out.push_str("  group: Settings\n  label: Rollout\n  hide_input: true\n  type: map[\n  variable: rollout\n  subquestions:\n");
    for doc in ROLLOUT_DOCS.iter().filter(|doc| doc.input != Input::List) {
        question(&mut out, "rollout", doc, &rollout, false);
    }
    out
}

/// One option of the form, under `variable`.
fn question(out: &mut String, variable: &str, doc: &OptionDoc, defaults: &Value, mutable: bool) {
    let default = doc
        .key
        .split('.')
        .try_fold(defaults, |value, key| value.get(key))
        .unwrap_or(&Value::Null);
    match default {
        Value::Array(items) if !items.is_empty() => {
            out.push_str("    - default:\n");
            for item in items {
                let _ = writeln!(out, "        - {}", yaml_scalar(item));
            }
        }
        Value::Object(map) if !map.is_empty() => {
            out.push_str("    - default:\n");
            for (key, value) in map {
                let _ = writeln!(out, "        {}: {}", yaml_key(key), yaml_value(value));
            }
        }
        other => {
            let _ = writeln!(out, "    - default: {}", yaml_value(other));
        }
    }
    folded(out, 6, "description", doc.description);
    out.push_str("      group: Settings\n");
    let _ = writeln!(out, "      label: {}", doc.label);
    if doc.mutate_only && mutable {
        let _ = writeln!(out, "      show_if: {variable}.mode=mutate");
    }
    let kind = match doc.input {
        Input::Int => "int",
        Input::Bool => "boolean",
        Input::String => "string",
        Input::List => "array[",
        Input::Map => "map[",
    };
    if doc.input != Input::Bool {
        out.push_str("      required: false\n");
    }
    let _ = writeln!(
        out,
        "      type: {kind}\n      variable: {variable}.{}",
        doc.key
    );
}

/// `key: >-` and the text folded under it.
fn folded(out: &mut String, indent: usize, key: &str, text: &str) {
    let pad = " ".repeat(indent);
    let _ = writeln!(out, "{pad}{key}: >-");
    for line in wrap(text, 80 - indent - 2) {
        let _ = writeln!(out, "{pad}  {line}");
    }
}

/// The README's table of checks, between [`README_TABLE_START`] and
/// [`README_TABLE_END`].
pub fn readme_table() -> String {
    let mut out = String::from(
        "| id | Pod Security Standards | default | judges | requires | mutate mode sets |\n|---|---|---|---|---|---|\n",
    );
    for id in CheckId::ALL {
        let definition = id.definition();
        let pss = match definition.pss {
            [] => "-".to_owned(),
            controls => controls
                .iter()
                .map(|control| format!("{} `{}`", control.level.as_str(), control.check))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let kinds = if definition.kinds == WorkloadKind::ALL {
            "every kind".to_owned()
        } else {
            let listed: Vec<_> = definition.kinds.iter().map(|kind| kind.as_str()).collect();
            let left: Vec<_> = WorkloadKind::ALL
                .iter()
                .filter(|kind| !definition.kinds.contains(kind))
                .map(|kind| kind.as_str())
                .collect();
            format!("{} ({} opt in)", listed.join(", "), left.join(", "))
        };
        let _ = writeln!(
            out,
            "| `{}` | {pss} | {} | {kinds} | {} | {} |",
            id.as_str(),
            definition.default_mode,
            definition.requires,
            definition.mutation.unwrap_or("-")
        );
    }
    out
}

impl Mode {
    fn from_value(value: &Value) -> Mode {
        serde_json::from_value(value.clone()).expect("a default mode is a mode")
    }
}

/// The settings as a JSON Schema (draft 7, as Helm reads it): every check with its
/// `mode`, `kinds` and options, the exemptions and the rollout, and no key beside them, so
/// a mistyped check or option fails `helm install` with its name instead of the server's
/// start. Option values are typed by their form input; the module still validates them
/// fully (quantities, globs, ranges).
pub fn settings_schema() -> Value {
    let mut checks = serde_json::Map::new();
    for id in CheckId::ALL {
        let definition = id.definition();
        let mut properties = serde_json::Map::new();
        properties.insert(
            "mode".to_owned(),
            serde_json::json!({"enum": ["enforce", "mutate", "warn", "off"]}),
        );
        properties.insert(
            "kinds".to_owned(),
            serde_json::json!({
                "type": "array",
                "items": {"enum": WorkloadKind::ALL.map(WorkloadKind::as_str)},
            }),
        );
        insert_options(&mut properties, definition.options);
        checks.insert(
            id.as_str().to_owned(),
            closed_object(definition.description, properties),
        );
    }
    let section = |description: &str, docs: &[OptionDoc]| {
        let mut properties = serde_json::Map::new();
        insert_options(&mut properties, docs);
        closed_object(description, properties)
    };
    let mut properties = serde_json::Map::new();
    properties.insert(
        "checks".to_owned(),
        closed_object("Each check's mode, kinds and options.", checks),
    );
    properties.insert(
        "exemptions".to_owned(),
        section(
            "Requests and containers podguard does not evaluate.",
            EXEMPTION_DOCS,
        ),
    );
    properties.insert(
        "rollout".to_owned(),
        section("Observe-only and per-namespace modes.", ROLLOUT_DOCS),
    );
    closed_object(
        "podguard's runtime settings, layered over the requirements built into the module (policy/requirements.yaml lists every key with its default).",
        properties,
    )
}

fn closed_object(description: &str, properties: serde_json::Map<String, Value>) -> Value {
    serde_json::json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "properties": properties,
    })
}

/// Adds each option's schema; a dotted key (`annotation.checks`) nests an object.
fn insert_options(properties: &mut serde_json::Map<String, Value>, docs: &[OptionDoc]) {
    for doc in docs {
        let schema = match doc.input {
            Input::Int => serde_json::json!({"type": ["integer", "null"]}),
            Input::Bool => serde_json::json!({"type": "boolean"}),
            Input::String => serde_json::json!({"type": ["string", "null"]}),
            Input::List => serde_json::json!({"type": "array"}),
            Input::Map => serde_json::json!({"type": "object"}),
        };
        let mut schema = schema;
        schema["description"] = Value::String(doc.description.to_owned());
        match doc.key.split_once('.') {
            None => {
                properties.insert(doc.key.to_owned(), schema);
            }
            Some((outer, inner)) => {
                let nested = properties
                    .entry(outer.to_owned())
                    .or_insert_with(|| closed_object("", serde_json::Map::new()));
                nested["properties"][inner] = schema;
            }
        }
    }
}
