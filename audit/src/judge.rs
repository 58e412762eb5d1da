//! The worker side: parse a unit, pick out the workloads, and ask the policy module about
//! each one. No rule is evaluated here; every verdict is the module's `Outcome`.

use std::borrow::Cow;

use podguard_policy::{CheckId, Disposition, ExemptedBy, Exemption, Mode, Outcome, WorkloadKind};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::input::{ListHead, implied_item_type, is_list_kind};
use super::model::{
    Finding, FixProposal, InputError, Item, Judged, Judgement, Origin, Owner, Skip, SkipReason,
    Unit, UnitBody, Verdict, WorkloadRef,
};
use super::yaml::{self, LineIndex, Style};
use podguard_host::{CallError, PolicyModule};

/// The waPC operation that returns the whole `Outcome` (every violation with its mode and
/// disposition); Kubewarden's `validate` answer carries only the message.
pub const EVALUATE_OPERATION: &str = "podguard_evaluate";

/// What `--show-fix`/`--fix` ask of each workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixMode {
    /// Report only.
    Off,
    /// Compute what mutate mode would change.
    Show,
    /// Compute it and mark what rewriting the file fixes.
    Write,
}

/// Everything a worker needs; shared by all workers.
pub struct Judge<'m> {
    /// The policy module.
    pub module: &'m PolicyModule,
    /// Runtime settings, JSON.
    pub settings: String,
    /// Settings for the fix evaluation: every mutable check that is not off switched to
    /// mutate, every other check that is on to warn (so the mutated object is returned).
    pub fix_overrides: Option<Value>,
    /// `--namespace`: the namespace of objects that name none, and the only one audited.
    pub namespace: Option<String>,
    /// Fix proposals.
    pub fix_mode: FixMode,
    /// Whether to find the line of every violation's field (SARIF and JSON reports).
    pub field_lines: bool,
    /// Whether objects owned by a controller are judged too (files and stdin, where the
    /// controller may be missing from the input), or skipped as judged through it (a
    /// live cluster, which holds every controller).
    pub judge_owned: bool,
}

/// Describes an exemption the module used, for the report.
fn describe_exemption(exemption: &Exemption) -> String {
    let check = exemption.check.map_or("all checks", CheckId::as_str);
    match (&exemption.by, &exemption.container) {
        (ExemptedBy::Namespace { namespace }, _) => {
            format!("{check}: namespace {namespace:?} is exempt")
        }
        (ExemptedBy::Image { glob }, Some(container)) => {
            format!("{check}: container {container:?} image matches {glob:?}")
        }
        (ExemptedBy::Image { glob }, None) => format!("{check}: image matches {glob:?}"),
        (ExemptedBy::Annotation { reason }, _) => {
            format!("{check}: podguard.io/exempt ({reason})")
        }
    }
}

/// The identifying fields of an object, read without decoding the rest.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<MetaHead>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaHead {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    generate_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerReference>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerReference {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    controller: Option<bool>,
}

/// An object as the input holds it: parsed, or the exact JSON text.
#[derive(Clone, Copy)]
enum Object<'a> {
    Value(&'a Value),
    Raw(&'a str),
}

impl Object<'_> {
    fn head(&self) -> Result<Head, String> {
        match self {
            Object::Value(value) => Head::deserialize(*value).map_err(|e| e.to_string()),
            Object::Raw(text) => serde_json::from_str(text).map_err(|e| e.to_string()),
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Object::Value(value) => {
                serde_json::to_writer(&mut *out, value).expect("a JSON value serialises")
            }
            Object::Raw(text) => out.extend_from_slice(text.as_bytes()),
        }
    }

    fn to_value(self) -> Result<Cow<'static, Value>, String> {
        match self {
            Object::Value(value) => Ok(Cow::Owned(value.clone())),
            Object::Raw(text) => serde_json::from_str(text)
                .map(Cow::Owned)
                .map_err(|e| e.to_string()),
        }
    }
}

/// A YAML document's text, and the lines of its fields when they were recorded.
#[derive(Clone, Copy)]
struct YamlSource<'a> {
    text: &'a str,
    first_line: usize,
    lines: Option<&'a LineIndex>,
}

/// Where an object's text is, for finding the lines of its fields.
struct TextSpan<'a> {
    text: &'a str,
    first_line: usize,
    /// Pointer prefix of the object in that text (`/items/3` for a list item).
    prefix: String,
    /// The lines, when the transcoder already recorded them.
    index: Option<&'a LineIndex>,
}

impl Judge<'_> {
    /// Judges every object of one unit. `buffer` is the worker's reusable payload buffer.
    pub fn unit(&self, unit: Unit, buffer: &mut Vec<u8>) -> Judged {
        let items = match unit.body {
            UnitBody::Error(error) => vec![Item::Error(error)],
            UnitBody::FileDone(input) => vec![Item::FileDone(input)],
            UnitBody::Object { origin, value } => {
                vec![self.object(Object::Value(&value), origin, None, None, buffer)]
            }
            UnitBody::Json {
                origin,
                text,
                range,
                implied_type,
            } => {
                let slice = &text[range];
                let span = TextSpan {
                    text: slice,
                    first_line: origin.line,
                    prefix: String::new(),
                    index: None,
                };
                vec![self.object(
                    Object::Raw(slice),
                    origin,
                    implied_type.as_deref(),
                    Some(span),
                    buffer,
                )]
            }
            UnitBody::Yaml {
                origin,
                text,
                first_line,
            } => self.yaml_document(origin, &text, first_line, None, buffer),
            UnitBody::YamlItem {
                origin,
                document,
                item,
                implied_type,
            } => {
                let text = item.text(&document);
                drop(document);
                let first_line = item.first_line;
                self.yaml_document(origin, &text, first_line, implied_type.as_deref(), buffer)
            }
        };
        Judged {
            seq: unit.seq,
            items,
        }
    }

    fn yaml_document(
        &self,
        origin: Origin,
        text: &str,
        first_line: usize,
        implied: Option<&(String, String)>,
        buffer: &mut Vec<u8>,
    ) -> Vec<Item> {
        // Most manifests transcode straight to JSON; the rest take serde-saphyr's path.
        let mut json = Vec::with_capacity(text.len() + text.len() / 4);
        let mut lines = self.field_lines.then(LineIndex::default);
        if let Ok(found) = yaml::transcode_with_lines(text, first_line, &mut json, lines.as_mut()) {
            let Some(found) = found else {
                return Vec::new();
            };
            let json = String::from_utf8(json).expect("transcoding writes UTF-8");
            let source = YamlSource {
                text,
                first_line,
                lines: lines.as_ref(),
            };
            return self.yaml_as_json(origin, source, &json, found, implied, buffer);
        }
        let value: Value = match serde_saphyr::from_str(text) {
            Ok(value) => value,
            Err(err) => {
                // A parser that runs off the end of the document reports the line after
                // it, which belongs to the next document: point at the last line instead.
                let last_line = first_line + text.lines().count().max(1) - 1;
                let line = err
                    .location()
                    .filter(|l| l.line() > 0)
                    .map(|l| (first_line + l.line() as usize - 1).min(last_line))
                    .unwrap_or(origin.line);
                return vec![Item::Error(InputError {
                    input: origin.input.to_string(),
                    line: Some(line),
                    message: format!(
                        "this document is not valid YAML ({}); fix it (the other documents were audited)",
                        yaml_error_text(&err)
                    ),
                })];
            }
        };
        let list_kind = value
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| is_list_kind(k));
        match (
            &value,
            list_kind,
            value.get("items").and_then(Value::as_array),
        ) {
            (Value::Null, ..) => Vec::new(),
            (Value::Object(_), Some(kind), Some(items)) => {
                let implied =
                    implied_item_type(value.get("apiVersion").and_then(Value::as_str), kind);
                let lines = list_item_lines(text, first_line);
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        let origin = Origin {
                            item: Some(index),
                            line: lines.get(index).copied().unwrap_or(origin.line),
                            ..origin.clone()
                        };
                        let span = TextSpan {
                            text,
                            first_line,
                            prefix: format!("/items/{index}"),
                            index: None,
                        };
                        self.object(
                            Object::Value(item),
                            origin,
                            implied.as_ref(),
                            Some(span),
                            buffer,
                        )
                    })
                    .collect()
            }
            _ => {
                let span = TextSpan {
                    text,
                    first_line,
                    prefix: String::new(),
                    index: None,
                };
                vec![self.object(Object::Value(&value), origin, implied, Some(span), buffer)]
            }
        }
    }

    /// A YAML document transcoded to JSON: judged like JSON input, with lines from the
    /// YAML text.
    fn yaml_as_json(
        &self,
        origin: Origin,
        source: YamlSource,
        json: &str,
        found: yaml::Transcoded,
        implied: Option<&(String, String)>,
        buffer: &mut Vec<u8>,
    ) -> Vec<Item> {
        let span = |prefix: String| TextSpan {
            text: source.text,
            first_line: source.first_line,
            prefix,
            index: source.lines,
        };
        if found.list_kind
            && let Ok(ListHead {
                api_version,
                kind: Some(kind),
                items: Some(items),
            }) = serde_json::from_str::<ListHead>(json)
            && is_list_kind(&kind)
        {
            let implied = implied_item_type(api_version.as_deref(), &kind);
            return items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let origin = Origin {
                        item: Some(index),
                        line: found.item_lines.get(index).copied().unwrap_or(origin.line),
                        ..origin.clone()
                    };
                    self.object(
                        Object::Raw(item.get()),
                        origin,
                        implied.as_ref(),
                        Some(span(format!("/items/{index}"))),
                        buffer,
                    )
                })
                .collect();
        }
        if !found.mapping {
            return vec![Item::Skipped(Skip {
                kind: "(not a mapping)".to_owned(),
                reason: SkipReason::NotKubernetesObject,
            })];
        }
        vec![self.object(
            Object::Raw(json),
            origin,
            implied,
            Some(span(String::new())),
            buffer,
        )]
    }

    fn object(
        &self,
        object: Object,
        origin: Origin,
        implied_type: Option<&(String, String)>,
        span: Option<TextSpan>,
        buffer: &mut Vec<u8>,
    ) -> Item {
        let skip = |kind: String, reason| Item::Skipped(Skip { kind, reason });
        let mapping = match object {
            Object::Value(value) => value.is_object(),
            Object::Raw(text) => text.starts_with('{'),
        };
        if !mapping {
            return skip(
                "(not a mapping)".to_owned(),
                SkipReason::NotKubernetesObject,
            );
        }
        let head = match object.head() {
            Ok(head) => head,
            Err(err) => {
                return Item::Error(InputError {
                    input: origin.input.to_string(),
                    line: (origin.line > 0).then_some(origin.line),
                    message: format!(
                        "this object's apiVersion, kind or metadata is malformed ({err}); fix it as `kubectl apply --dry-run=client` would ask"
                    ),
                });
            }
        };
        let (api_version, kind) = match (&head.api_version, &head.kind, implied_type) {
            (Some(api_version), Some(kind), _) => (api_version.clone(), kind.clone()),
            (_, _, Some((api_version, kind))) => (api_version.clone(), kind.clone()),
            (_, kind, _) => {
                return skip(
                    kind.clone().unwrap_or_else(|| "(no kind)".to_owned()),
                    SkipReason::NotKubernetesObject,
                );
            }
        };
        let Some(workload_kind) = WorkloadKind::from_type_meta(&api_version, &kind) else {
            return skip(kind, SkipReason::NotWorkload);
        };
        let metadata = head.metadata.unwrap_or_default();
        let owner = metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|owner| owner.controller == Some(true))
            .find_map(|owner| {
                Some(Owner {
                    kind: WorkloadKind::from_type_meta(&owner.api_version, &owner.kind)?,
                    name: owner.name.clone(),
                })
            });
        if let Some(owner) = &owner
            && !self.judge_owned
        {
            return skip(
                kind,
                SkipReason::OwnedByController {
                    owner: owner.to_string(),
                },
            );
        }
        let namespace = match (&metadata.namespace, &self.namespace) {
            (Some(own), Some(wanted)) if own != wanted => {
                return skip(kind, SkipReason::OtherNamespace);
            }
            (Some(own), _) => Some(own.clone()),
            (None, assumed) => assumed.clone(),
        };
        let name = metadata
            .name
            .clone()
            .or_else(|| metadata.generate_name.as_ref().map(|g| format!("{g}*")))
            .unwrap_or_else(|| "(unnamed)".to_owned());
        let workload = WorkloadRef {
            api_version,
            kind: workload_kind,
            namespace,
            name,
            uid: metadata.uid.clone(),
            origin,
        };
        let result = self.evaluate(&workload, object, span, buffer);
        Item::Workload(Box::new(Verdict {
            workload,
            owner,
            result,
        }))
    }

    fn evaluate(
        &self,
        workload: &WorkloadRef,
        object: Object,
        span: Option<TextSpan>,
        buffer: &mut Vec<u8>,
    ) -> Result<Judgement, String> {
        write_payload(buffer, workload, object, &self.settings);
        let outcome = self.call(buffer)?;
        let mut judgement = Judgement::default();
        for exemption in &outcome.exemptions {
            if let ExemptedBy::Namespace { namespace } = &exemption.by {
                judgement.exempt_namespace = Some(namespace.clone());
            }
            judgement.exemptions.push(describe_exemption(exemption));
        }
        judgement.violations = outcome
            .violations
            .into_iter()
            .map(|v| Finding {
                check: v.check,
                mode: v.mode,
                container: v.container,
                field: v.field,
                pointer: v.pointer,
                message: v.message,
                fixable: v.fixable,
                disposition: v.disposition,
                line: None,
                fixed_in_file: false,
            })
            .collect();
        judgement.notes = outcome.notes;
        if !outcome.accepted
            && judgement.violations.is_empty()
            && let Some(message) = outcome.message
        {
            // A rejection without violations: the module could not judge the object.
            return Err(message);
        }

        if self.field_lines
            && !judgement.violations.is_empty()
            && let Some(span) = &span
        {
            let built;
            let index = match span.index {
                Some(index) => index,
                None => {
                    built = LineIndex::build(span.text, span.first_line);
                    &built
                }
            };
            for finding in &mut judgement.violations {
                let pointer = format!("{}{}", span.prefix, finding.pointer);
                finding.line = index.line_of(&pointer);
            }
        }

        if self.fix_mode != FixMode::Off && judgement.violations.iter().any(|v| v.fixable) {
            let style = span
                .as_ref()
                .map_or_else(Style::default, |s| Style::detect(s.text));
            match self.propose_fix(workload, object, style, buffer) {
                Ok(Some(proposal)) => {
                    if self.fix_mode == FixMode::Write {
                        for finding in &mut judgement.violations {
                            let identity = (finding.check, finding.pointer.clone());
                            finding.fixed_in_file = proposal.fixes.contains(&finding.check)
                                && !proposal.unfixable_at.contains(&identity);
                        }
                    }
                    judgement.fix = Some(proposal);
                }
                Ok(None) => {}
                Err(message) => judgement.notes.push(format!(
                    "podguard: cannot show what mutate mode would change: {message}"
                )),
            }
        }
        Ok(judgement)
    }

    fn call(&self, payload: &[u8]) -> Result<Outcome, String> {
        let answer = self
            .module
            .call(EVALUATE_OPERATION, payload)
            .map_err(|err| {
                let hint = match err {
                    CallError::Deadline(_) => "raise --eval-timeout if the object is very large",
                    CallError::MemoryCap(_) => {
                        "raise --memory-limit-mib if the object is very large"
                    }
                    _ => "report it with the object: the module should judge any object",
                };
                format!("the policy module could not judge it: {err}; {hint}")
            })?;
        serde_json::from_slice(&answer).map_err(|err| {
            format!(
                "the policy module answered {EVALUATE_OPERATION} with something that is not an Outcome ({err}); pass a podguard policy module built from this version"
            )
        })
    }

    /// Evaluates the object with every mutable check in mutate mode and returns what the
    /// mutation changes. A check whose violations mutation cannot all fix rejects the
    /// object, and a rejected object carries no mutation; such checks are run in warn
    /// mode instead, so the others' fixes still show.
    fn propose_fix(
        &self,
        workload: &WorkloadRef,
        object: Object,
        style: Style,
        buffer: &mut Vec<u8>,
    ) -> Result<Option<FixProposal>, String> {
        let Some(base) = &self.fix_overrides else {
            return Ok(None);
        };
        let mut overrides = base.clone();
        let mut left_out: Vec<CheckId> = Vec::new();
        for _ in 0..=CheckId::ALL.len() {
            let settings = overrides.to_string();
            write_payload(buffer, workload, object, &settings);
            let outcome = self.call(buffer)?;
            if !outcome.accepted {
                let stuck: Vec<CheckId> = outcome
                    .violations
                    .iter()
                    .filter(|v| v.disposition == Disposition::Rejected)
                    .map(|v| v.check)
                    .collect();
                if stuck.is_empty() {
                    return Err(outcome
                        .message
                        .unwrap_or_else(|| "mutate mode rejects it".to_owned()));
                }
                for check in stuck {
                    set_mode(&mut overrides, check, Mode::Warn);
                    if check.can_mutate() && !left_out.contains(&check) {
                        left_out.push(check);
                    }
                }
                continue;
            }
            let Some(mutated) = outcome.mutated_object else {
                return Ok(None);
            };
            let original = object.to_value()?;
            let patch = json_patch::diff(&original, &mutated);
            if patch.0.is_empty() {
                return Ok(None);
            }
            let mut fixes: Vec<CheckId> = outcome
                .violations
                .iter()
                .filter(|v| v.disposition == Disposition::Fixed)
                .map(|v| v.check)
                .collect();
            fixes.sort();
            fixes.dedup();
            let stuck: Vec<&podguard_policy::Violation> = outcome
                .violations
                .iter()
                .filter(|v| v.disposition != Disposition::Fixed)
                .collect();
            let unfixable = stuck.iter().map(|v| v.message.clone()).collect();
            let unfixable_at = stuck.iter().map(|v| (v.check, v.pointer.clone())).collect();
            let before = yaml::emit(&original, style);
            let after = yaml::emit(&mutated, style);
            let label = workload.origin.input.to_string();
            let diff = similar::TextDiff::from_lines(&before, &after)
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{label}"), &format!("b/{label}"))
                .to_string();
            return Ok(Some(FixProposal {
                patch: serde_json::to_value(&patch).expect("a JSON Patch serialises"),
                mutated,
                diff,
                fixes,
                unfixable,
                unfixable_at,
                left_out,
            }));
        }
        Err("mutate mode keeps rejecting it".to_owned())
    }
}

/// Sets `checks.<id>.mode` in a settings document.
pub fn set_mode(settings: &mut Value, check: CheckId, mode: Mode) {
    if !settings.is_object() {
        *settings = Value::Object(Default::default());
    }
    let checks = settings
        .as_object_mut()
        .expect("an object")
        .entry("checks")
        .or_insert_with(|| Value::Object(Default::default()));
    if !checks.is_object() {
        *checks = Value::Object(Default::default());
    }
    let entry = checks
        .as_object_mut()
        .expect("an object")
        .entry(check.as_str())
        .or_insert_with(|| Value::Object(Default::default()));
    if !entry.is_object() {
        *entry = Value::Object(Default::default());
    }
    entry
        .as_object_mut()
        .expect("an object")
        .insert("mode".to_owned(), Value::String(mode.to_string()));
}

/// The `resource` (plural) of a kind, for the request's `resource` field.
fn resource_of(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Pod => "pods",
        WorkloadKind::Deployment => "deployments",
        WorkloadKind::ReplicaSet => "replicasets",
        WorkloadKind::StatefulSet => "statefulsets",
        WorkloadKind::DaemonSet => "daemonsets",
        WorkloadKind::Job => "jobs",
        WorkloadKind::CronJob => "cronjobs",
        WorkloadKind::ReplicationController => "replicationcontrollers",
    }
}

/// Writes the `{"request": AdmissionRequest, "settings": ...}` payload: a CREATE of the
/// object as it stands, with no user (audit asks what admission would say of it today).
/// The object's own JSON text goes in unchanged when the input was JSON.
fn write_payload(buffer: &mut Vec<u8>, workload: &WorkloadRef, object: Object, settings: &str) {
    let (group, version) = workload
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &workload.api_version));
    let string = |buffer: &mut Vec<u8>, text: &str| {
        serde_json::to_writer(&mut *buffer, text).expect("a string serialises")
    };
    buffer.clear();
    buffer.extend_from_slice(b"{\"request\":{\"uid\":\"podguard-audit\",\"kind\":{\"group\":");
    string(buffer, group);
    buffer.extend_from_slice(b",\"version\":");
    string(buffer, version);
    buffer.extend_from_slice(b",\"kind\":");
    string(buffer, workload.kind.as_str());
    buffer.extend_from_slice(b"},\"resource\":{\"group\":");
    string(buffer, group);
    buffer.extend_from_slice(b",\"version\":");
    string(buffer, version);
    buffer.extend_from_slice(b",\"resource\":");
    string(buffer, resource_of(workload.kind));
    buffer.extend_from_slice(b"},\"name\":");
    string(buffer, &workload.name);
    if let Some(namespace) = &workload.namespace {
        buffer.extend_from_slice(b",\"namespace\":");
        string(buffer, namespace);
    }
    buffer.extend_from_slice(b",\"operation\":\"CREATE\",\"dryRun\":true,\"object\":");
    object.write_json(buffer);
    buffer.extend_from_slice(b"},\"settings\":");
    buffer.extend_from_slice(settings.as_bytes());
    buffer.push(b'}');
}

/// Lines of the items of a `kind: List` document, in order.
fn list_item_lines(text: &str, first_line: usize) -> Vec<usize> {
    #[derive(Deserialize)]
    struct Items {
        #[serde(default)]
        items: Vec<serde_saphyr::Spanned<IgnoredAny>>,
    }
    serde_saphyr::from_str::<Items>(text)
        .map(|list| {
            list.items
                .iter()
                .map(|item| first_line + item.referenced.line() as usize - 1)
                .collect()
        })
        .unwrap_or_default()
}

/// A YAML error's message without its location (the report prints the file line).
fn yaml_error_text(err: &serde_saphyr::Error) -> String {
    // The user-facing wording: the default one speaks to the library's caller ("set
    // DuplicateKeyPolicy in Options").
    let options = serde_saphyr::render_options! {
        formatter: &serde_saphyr::UserMessageFormatter,
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let text = err.render_with_options(options);
    let text = text.lines().next().unwrap_or_default().trim();
    // "... at line 3, column 5" is relative to the document; the report names the file line.
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn payload_is_a_create_request() {
        let workload = WorkloadRef {
            api_version: "apps/v1".to_owned(),
            kind: WorkloadKind::Deployment,
            namespace: Some("shop".to_owned()),
            name: "web \"1\"".to_owned(),
            uid: None,
            origin: Origin {
                input: Arc::new(super::super::model::InputName::Stdin),
                document: 0,
                item: None,
                line: 1,
                helm_source: None,
            },
        };
        let mut buffer = Vec::new();
        write_payload(
            &mut buffer,
            &workload,
            Object::Raw(r#"{"kind":"Deployment"}"#),
            "{}",
        );
        let payload: Value = serde_json::from_slice(&buffer).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({"request": {
                "uid": "podguard-audit",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": "web \"1\"", "namespace": "shop",
                "operation": "CREATE", "dryRun": true,
                "object": {"kind": "Deployment"}},
              "settings": {}})
        );
        assert!(payload["request"].get("userInfo").is_none());
    }

    #[test]
    fn list_items_have_their_own_lines() {
        let text =
            "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  apiVersion: v1\n- kind: Service\n";
        assert_eq!(list_item_lines(text, 5), vec![8, 10]);
    }

    #[test]
    fn yaml_errors_lose_their_document_relative_location() {
        let err = serde_saphyr::from_str::<Value>("a: [1, 2\nb: c\n").unwrap_err();
        let text = yaml_error_text(&err);
        assert!(!text.is_empty() && !text.contains(" at line "), "{text}");
    }
}
