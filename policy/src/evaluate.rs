//! From a request to a verdict: scope, exemptions, modes, mutation and the messages.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::{self, Finding, Scope};
use crate::object::{FieldPath, Workload, WorkloadKind};
use crate::request::{AdmissionRequest, GroupVersionKind, Operation, ValueAt, WireRequest};
use crate::response::ValidationResponse;
use crate::settings::{CheckId, Mode, Policy};
use crate::view::{ObjectView, OldObjectView, Scalar, set};

/// The workload annotation listing checks exempted for it.
pub const EXEMPT_ANNOTATION: &str = "podguard.io/exempt";
/// The annotation that must say why; an exemption without it does not count.
pub const EXEMPT_REASON_ANNOTATION: &str = "podguard.io/exempt-reason";

/// Everything podguard concluded about one request. `podguard audit` reads it back from the
/// module's `podguard_evaluate` answer, hence `Deserialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Whether the request is allowed.
    pub accepted: bool,
    /// The rejection message: a header, then one violation per line.
    pub message: Option<String>,
    /// Admission warnings.
    pub warnings: Vec<String>,
    /// The mutated object, when mutate mode changed something and the request is allowed.
    pub mutated_object: Option<Value>,
    /// Audit annotations (short keys: the API server prefixes them with the webhook name).
    pub audit_annotations: BTreeMap<String, String>,
    /// Every violation of the object as submitted, including those mutate mode fixed:
    /// a workload that mutation would fix is still non-compliant as it stands.
    pub violations: Vec<Violation>,
    /// Every exemption that was used.
    pub exemptions: Vec<Exemption>,
    /// The warnings that are not a violation's line: exemptions used or ignored, checks
    /// relaxed for this pod, lines left out.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One violation and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// The check.
    pub check: CheckId,
    /// The check's mode.
    pub mode: Mode,
    /// The container, for container checks.
    pub container: Option<String>,
    /// The field to change, e.g. `spec.containers[0].securityContext.runAsNonRoot`.
    pub field: String,
    /// The same field as an RFC 6901 JSON Pointer into the object, e.g.
    /// `/spec/containers/0/securityContext/runAsNonRoot`: with the check, what identifies
    /// the violation.
    pub pointer: String,
    /// The full line, as it appears in messages and warnings.
    pub message: String,
    /// Whether mutate mode can fix it.
    pub fixable: bool,
    /// What the request's answer did with it.
    pub disposition: Disposition,
}

/// The audit annotation naming the checks that found violations; see
/// [`Outcome`]'s responses.
pub const VIOLATIONS_ANNOTATION: &str = "violations";

/// What the answer did with a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Disposition {
    /// It is part of the rejection.
    Rejected,
    /// It is an admission warning.
    Warned,
    /// Mutate mode fixed it.
    Fixed,
    /// Allowed with a warning because the request does not change the pod (an UPDATE
    /// that leaves the pod spec alone, or an object being deleted).
    Tolerated,
}

impl Disposition {
    /// As the `violations` audit annotation and metrics write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Rejected => "rejected",
            Disposition::Warned => "warned",
            Disposition::Fixed => "fixed",
            Disposition::Tolerated => "tolerated",
        }
    }

    /// Reads what [`Disposition::as_str`] writes.
    pub fn parse(text: &str) -> Option<Disposition> {
        [
            Disposition::Rejected,
            Disposition::Warned,
            Disposition::Fixed,
            Disposition::Tolerated,
        ]
        .into_iter()
        .find(|d| d.as_str() == text)
    }
}

/// An exemption that was used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exemption {
    /// The exempted check; `None` when the whole request was skipped.
    pub check: Option<CheckId>,
    /// The exempted container, for image exemptions.
    pub container: Option<String>,
    /// What granted it.
    pub by: ExemptedBy,
}

/// What granted an exemption.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ExemptedBy {
    /// The namespace is listed in `exemptions.namespaces`.
    Namespace {
        /// The namespace.
        namespace: String,
    },
    /// The image matches a glob in `exemptions.images`.
    Image {
        /// The matching glob.
        glob: String,
    },
    /// The workload's `podguard.io/exempt` annotation.
    Annotation {
        /// Its `podguard.io/exempt-reason`.
        reason: String,
    },
}

impl Outcome {
    fn allow() -> Outcome {
        Outcome {
            accepted: true,
            message: None,
            warnings: Vec::new(),
            mutated_object: None,
            audit_annotations: BTreeMap::new(),
            violations: Vec::new(),
            exemptions: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn reject(message: String) -> Outcome {
        Outcome {
            accepted: false,
            message: Some(message),
            ..Outcome::allow()
        }
    }

    /// Records which checks found violations, and what became of them, in the
    /// `violations` audit annotation: `drop-capabilities=rejected,resource-limits=fixed`,
    /// each check once with its most severe disposition (rejected, warned, tolerated,
    /// fixed). Cluster audit logs and `podguard serve`'s per-check metrics read it, so
    /// neither parses messages.
    fn annotate_violated_checks(&mut self) {
        let severity = |disposition: Disposition| match disposition {
            Disposition::Rejected => 3,
            Disposition::Warned => 2,
            Disposition::Tolerated => 1,
            Disposition::Fixed => 0,
        };
        let mut by_check: BTreeMap<&'static str, Disposition> = BTreeMap::new();
        for violation in &self.violations {
            let entry = by_check
                .entry(violation.check.as_str())
                .or_insert(violation.disposition);
            if severity(violation.disposition) > severity(*entry) {
                *entry = violation.disposition;
            }
        }
        if by_check.is_empty() {
            return;
        }
        let value = by_check
            .iter()
            .map(|(check, disposition)| format!("{check}={}", disposition.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        self.audit_annotations
            .insert(VIOLATIONS_ANNOTATION.to_owned(), value);
    }

    /// The Kubewarden response for this outcome.
    pub fn to_response(&self) -> ValidationResponse {
        ValidationResponse {
            accepted: self.accepted,
            message: self.message.clone(),
            code: None,
            mutated_object: self.mutated_object.clone(),
            audit_annotations: (!self.audit_annotations.is_empty())
                .then(|| self.audit_annotations.clone()),
            warnings: (!self.warnings.is_empty()).then(|| self.warnings.clone()),
        }
    }
}

/// Judges one admission request. Kinds podguard does not cover, DELETE and CONNECT, and
/// subresources other than `pods/ephemeralcontainers` are allowed untouched.
pub fn evaluate(policy: &Policy, request: &AdmissionRequest) -> Outcome {
    let review = Review {
        kind: &request.kind,
        operation: request.operation,
        sub_resource: request.sub_resource.as_deref(),
        namespace: request.namespace.as_deref(),
        object: request.object.as_ref().map(view_of),
        old_object: request.old_object.as_ref().map(view_of),
    };
    review.judge(
        policy,
        &Originals::Values {
            object: request.object.as_ref(),
            old_object: request.old_object.as_ref(),
        },
    )
}

/// Judges a request read from JSON `text` (the waPC payload, or a request alone), which
/// `originals` reads again for what the views leave out.
pub(crate) fn evaluate_wire(
    policy: &Policy,
    request: WireRequest,
    originals: &Originals,
) -> Outcome {
    let review = Review {
        kind: &request.kind,
        operation: request.operation,
        sub_resource: request.sub_resource.as_deref(),
        namespace: request.namespace.as_deref(),
        object: request.object,
        old_object: request.old_object,
    };
    review.judge(policy, originals)
}

/// Judges an `AdmissionRequest` given as its JSON text, as a host would send it.
#[cfg_attr(
    not(feature = "browser"),
    allow(dead_code, reason = "the playground's entry")
)]
pub(crate) fn evaluate_request_text(
    policy: &Policy,
    text: &[u8],
) -> Result<Outcome, serde_json::Error> {
    let request: WireRequest = serde_json::from_slice(text)?;
    Ok(evaluate_wire(
        policy,
        request,
        &Originals::Text { text, request: &[] },
    ))
}

/// Judges a workload object as a CREATE would: what audit asks of every existing object.
pub fn evaluate_object(policy: &Policy, kind: WorkloadKind, object: &Value) -> Outcome {
    let workload = Workload::new(kind, view_of(object));
    let namespace = workload
        .metadata
        .namespace
        .as_ref()
        .and_then(Scalar::as_str);
    judge(
        policy,
        &workload,
        namespace,
        Scope::Whole { pod_edits: true },
        true,
        None,
        &Originals::Values {
            object: Some(object),
            old_object: None,
        },
    )
}

/// Reads a view of a `Value`; views take any JSON, so there is nothing to fail.
fn view_of<'a, T: Deserialize<'a> + Default>(value: &'a Value) -> T {
    T::deserialize(value).unwrap_or_default()
}

/// Where a request's objects can be read whole, for what the views leave out: the object
/// mutate mode edits, and the pods an UPDATE compares.
pub(crate) enum Originals<'a> {
    /// JSON text; `request` is the path of keys to the request in it.
    Text {
        /// The document.
        text: &'a [u8],
        /// The keys to the request: `request` in a waPC payload, none for a request alone.
        request: &'a [&'a [&'a str]],
    },
    /// Objects a caller built.
    Values {
        object: Option<&'a Value>,
        old_object: Option<&'a Value>,
    },
}

const OBJECT: &[&str] = &["object"];
const OLD_OBJECT: &[&str] = &["oldObject", "old_object"];

impl Originals<'_> {
    /// The object as sent, to apply mutations to; `None` when it cannot be built (nested
    /// past the parser's depth limit in a field the checks never read), and then nothing
    /// is mutated and the violations stand.
    fn object(&self) -> Option<Value> {
        match self {
            Originals::Text { text, request } => {
                let path: Vec<&[&str]> = request.iter().copied().chain([OBJECT]).collect();
                ValueAt { path: &path }.read(text).ok().flatten()
            }
            Originals::Values { object, .. } => object.cloned(),
        }
    }

    /// Whether the object and the stored object define the same pods. Pods that cannot be
    /// read whole count as changed, so they are judged rather than tolerated.
    fn pod_unchanged(&self, kind: WorkloadKind) -> bool {
        let keys = kind.pod_defining_keys();
        match self {
            Originals::Text { text, request } => {
                let read = |object: &'static [&'static str]| {
                    let path: Vec<&[&str]> = request
                        .iter()
                        .copied()
                        .chain([object])
                        .chain(keys.iter().map(std::slice::from_ref))
                        .collect();
                    ValueAt { path: &path }.read(text)
                };
                match (read(OBJECT), read(OLD_OBJECT)) {
                    (Ok(object), Ok(old)) => object == old,
                    _ => false,
                }
            }
            Originals::Values { object, old_object } => {
                let lookup = |value: &Value| {
                    keys.iter()
                        .try_fold(value, |value, key| value.get(*key))
                        .cloned()
                };
                match (object, old_object) {
                    (Some(object), Some(old)) => lookup(object) == lookup(old),
                    _ => false,
                }
            }
        }
    }
}

/// The fields of a request the evaluation reads, however it was read.
struct Review<'r, 'a> {
    kind: &'r GroupVersionKind,
    operation: Operation,
    sub_resource: Option<&'r str>,
    namespace: Option<&'r str>,
    object: Option<ObjectView<'a>>,
    old_object: Option<OldObjectView<'a>>,
}

impl Review<'_, '_> {
    fn judge(self, policy: &Policy, originals: &Originals) -> Outcome {
        let Some(kind) = WorkloadKind::from_group_kind(&self.kind.group, &self.kind.kind) else {
            return Outcome::allow();
        };
        if !matches!(self.operation, Operation::Create | Operation::Update) {
            return Outcome::allow();
        }
        let ephemeral = match self.sub_resource {
            None | Some("") => false,
            Some("ephemeralcontainers") if kind == WorkloadKind::Pod => true,
            Some(_) => return Outcome::allow(),
        };
        if let Some(namespace) = self
            .namespace
            .filter(|ns| policy.exempt_namespaces.iter().any(|exempt| exempt == ns))
        {
            let mut outcome = Outcome::allow();
            outcome.audit_annotations.insert(
                "exemptions".to_owned(),
                format!("namespace {namespace:?} is exempt (exemptions.namespaces)"),
            );
            outcome.exemptions.push(Exemption {
                check: None,
                container: None,
                by: ExemptedBy::Namespace {
                    namespace: namespace.to_owned(),
                },
            });
            return outcome;
        }
        let Some(object) = self.object.filter(|o| o.is_map) else {
            return Outcome::reject(format!(
                "podguard cannot judge this {kind} request: request.object is missing or not an object"
            ));
        };
        let workload = Workload::new(kind, object);
        let old = self.old_object.as_ref();

        let added_ephemeral = if ephemeral {
            added_ephemeral_containers(&workload, old)
        } else {
            HashSet::new()
        };
        let scope = if ephemeral {
            Scope::AddedEphemeral(&added_ephemeral)
        } else {
            // A Pod's spec is immutable once created, so only its CREATE can be mutated;
            // pod templates may be mutated on CREATE and UPDATE.
            Scope::Whole {
                pod_edits: kind != WorkloadKind::Pod || self.operation == Operation::Create,
            }
        };
        let mutation_allowed = match scope {
            Scope::Whole { pod_edits } => pod_edits,
            Scope::AddedEphemeral(_) => true,
        };

        // Only the stored object's deletion timestamp counts: on CREATE, and in `object`,
        // the field is whatever the sender wrote, and kube-apiserver clears it only after
        // mutating admission, so trusting it there would let any Pod skip every check.
        let tolerated = if self.operation != Operation::Update {
            None
        } else if old.is_some_and(|old| set(&old.metadata.deletion_timestamp).is_some()) {
            Some("the object is being deleted")
        } else if !ephemeral && old.is_some() && originals.pod_unchanged(kind) {
            Some("this UPDATE leaves the pod spec unchanged")
        } else {
            None
        };

        judge(
            policy,
            &workload,
            self.namespace,
            scope,
            mutation_allowed,
            tolerated,
            originals,
        )
    }
}

fn judge(
    policy: &Policy,
    pod: &Workload,
    namespace: Option<&str>,
    scope: Scope,
    mutation_allowed: bool,
    tolerated: Option<&str>,
    originals: &Originals,
) -> Outcome {
    // `rollout.namespaces`: this namespace's modes, where an entry names it.
    let policy = policy.for_namespace(namespace).unwrap_or(policy);
    let kind = pod.kind;
    let subject = if kind == WorkloadKind::Pod {
        "pod"
    } else {
        "pod template"
    };
    let (annotation_exemptions, mut warnings) = annotation_exemptions(policy, namespace, pod);
    let mut exemptions = Vec::new();

    let (first_pass, notes) = checks::run(policy, pod, scope);
    let first_pass = apply_exemptions(policy, first_pass, &annotation_exemptions, &mut exemptions);
    warnings.extend(notes.iter().cloned());
    warnings.extend(exemption_warnings(&exemptions));

    let mut outcome = Outcome::allow();
    outcome.exemptions = exemptions;
    outcome.notes = warnings.clone();
    if !outcome.exemptions.is_empty() {
        outcome.audit_annotations.insert(
            "exemptions".to_owned(),
            describe_exemptions(&outcome.exemptions),
        );
    }
    if !notes.is_empty() {
        outcome
            .audit_annotations
            .insert("notes".to_owned(), notes.join("\n"));
    }

    let violations: Vec<&Finding> = first_pass.iter().filter(|f| !f.advisory).collect();
    if let Some(reason) = tolerated {
        if !violations.is_empty() {
            let header = format!(
                "podguard: {} existing violation(s) allowed because {reason}:",
                violations.len()
            );
            outcome.notes.push(header.clone());
            warnings.push(header);
        }
        let lines = violations.iter().map(|finding| finding.render(subject));
        extend_capped(&mut warnings, lines, "existing violations");
        for finding in &violations {
            outcome
                .violations
                .push(violation(policy, finding, subject, Disposition::Tolerated));
        }
        outcome.warnings = warnings;
        outcome.annotate_violated_checks();
        return outcome;
    }

    // Mutate: apply every fix of a check in mutate mode, then judge the result again, so
    // the verdict is about the object that would be stored.
    // Copies of the object and of the findings are made only when a mutate-mode check has
    // something to fix: most requests need neither, and the copy is most of their cost.
    let mut mutated = None;
    let mut second_pass = None;
    let edits: Vec<_> = first_pass
        .iter()
        .filter(|f| mutation_allowed && policy.mode(f.check) == Mode::Mutate)
        .flat_map(|f| &f.fix)
        .collect();
    if let Some(mut copy) = (!edits.is_empty()).then(|| originals.object()).flatten() {
        let mut changed = false;
        for edit in edits {
            changed |= edit.apply(&mut copy);
        }
        if changed {
            let mutated_pod = Workload::new(kind, view_of(&copy));
            let (pass, _) = checks::run(policy, &mutated_pod, scope);
            let pass = apply_exemptions(policy, pass, &annotation_exemptions, &mut Vec::new());
            let still_found = places(&pass);
            let mut fixed_ids: Vec<&str> = first_pass
                .iter()
                .filter(|f| !still_found.contains(&place(f)))
                .map(|f| f.check.as_str())
                .collect();
            fixed_ids.sort_unstable();
            fixed_ids.dedup();
            outcome
                .audit_annotations
                .insert("mutated".to_owned(), fixed_ids.join(","));
            mutated = Some(copy);
            second_pass = Some(pass);
        }
    }
    let final_pass = second_pass.as_ref().unwrap_or(&first_pass);
    let remaining: Vec<&Finding> = final_pass.iter().filter(|f| !f.advisory).collect();
    // Findings are matched by place through a set: a pod with thousands of containers
    // yields tens of thousands of findings, and matching them pairwise made the cost of a
    // request grow with their square.
    let remaining_places = places(remaining.iter().copied());

    for finding in &violations {
        let still_there = remaining_places.contains(&place(finding));
        let disposition = match (still_there, policy.mode(finding.check)) {
            (false, _) => Disposition::Fixed,
            (true, Mode::Warn) => Disposition::Warned,
            (true, _) => Disposition::Rejected,
        };
        outcome
            .violations
            .push(violation(policy, finding, subject, disposition));
    }

    let rejected: Vec<&&Finding> = remaining
        .iter()
        .filter(|f| policy.mode(f.check).rejects())
        .collect();
    extend_capped(
        &mut warnings,
        remaining
            .iter()
            .filter(|f| policy.mode(f.check) == Mode::Warn)
            .map(|f| f.render(subject)),
        "warnings",
    );
    outcome.warnings = warnings;

    if rejected.is_empty() {
        outcome.mutated_object = mutated;
    } else {
        outcome.accepted = false;
        outcome.audit_annotations.remove("mutated");
        let mut lines = Vec::new();
        extend_capped(
            &mut lines,
            rejected.iter().map(|f| f.render(subject)),
            "violations",
        );
        let mut message = format!(
            "{} {:?} violates podguard's requirements ({} violation{}):",
            kind,
            pod.display_name(),
            rejected.len(),
            if rejected.len() == 1 { "" } else { "s" }
        );
        for line in &lines {
            message.push('\n');
            message.push_str(line);
        }
        // Tools that show only the rejection (CI logs, GitOps sync errors) should still
        // learn why an exemption the workload asked for did not apply.
        for warning in outcome
            .warnings
            .iter()
            .filter(|w| w.contains(EXEMPT_ANNOTATION) && w.contains("ignored"))
        {
            message.push('\n');
            message.push_str(warning);
        }
        let unfixable_here = !mutation_allowed
            && rejected
                .iter()
                .any(|f| policy.mode(f.check) == Mode::Mutate && f.is_fixable());
        if unfixable_here {
            message.push_str(
                "\n(mutate mode cannot fix these: a Pod's spec cannot change after it is created)",
            );
        }
        outcome.message = Some(message);
    }
    outcome.annotate_violated_checks();
    outcome
}

/// How many lines of one kind (violations in a rejection, warnings) an answer lists for
/// one object. Past this, one line says how many more there are: the API server and the
/// people reading the answer gain nothing from thousands of lines, and an object with
/// thousands of containers must not buy a megabyte-sized answer.
pub const MAX_LINES_PER_OBJECT: usize = 100;

/// Appends `lines` to `out`, at most [`MAX_LINES_PER_OBJECT`] of them, then one line
/// counting the rest.
fn extend_capped(out: &mut Vec<String>, lines: impl Iterator<Item = String>, what: &str) {
    let mut cut = 0usize;
    for (i, line) in lines.enumerate() {
        if i < MAX_LINES_PER_OBJECT {
            out.push(line);
        } else {
            cut += 1;
        }
    }
    if cut > 0 {
        out.push(format!(
            "podguard: {cut} more {what} not listed (the first {MAX_LINES_PER_OBJECT} are); `podguard audit -o json` lists every one"
        ));
    }
}

/// Where a finding is: the same check at the same field of the same container.
type Place<'f> = (CheckId, &'f FieldPath, Option<&'f str>);

fn place(finding: &Finding) -> Place<'_> {
    (finding.check, &finding.path, finding.container.as_deref())
}

/// A set of places. Most requests have a handful of findings, matched fastest by a scan;
/// past a few dozen, a hash set keeps the matching linear.
enum Places<'f> {
    Few(Vec<Place<'f>>),
    Many(HashSet<Place<'f>>),
}

impl<'f> Places<'f> {
    fn contains(&self, place: &Place<'f>) -> bool {
        match self {
            Places::Few(places) => places.contains(place),
            Places::Many(places) => places.contains(place),
        }
    }
}

fn places<'f>(findings: impl IntoIterator<Item = &'f Finding>) -> Places<'f> {
    const FEW: usize = 32;
    let few: Vec<Place> = findings.into_iter().map(place).collect();
    match few.len() <= FEW {
        true => Places::Few(few),
        false => Places::Many(few.into_iter().collect()),
    }
}

fn violation(
    policy: &Policy,
    finding: &Finding,
    subject: &str,
    disposition: Disposition,
) -> Violation {
    Violation {
        check: finding.check,
        mode: policy.mode(finding.check),
        container: finding.container.clone(),
        field: finding.path.to_string(),
        pointer: finding.path.pointer(),
        message: finding.render(subject),
        fixable: finding.is_fixable(),
        disposition,
    }
}

/// Drops exempted findings, recording each exemption once per check and container.
fn apply_exemptions(
    policy: &Policy,
    findings: Vec<Finding>,
    by_annotation: &[(CheckId, String)],
    used: &mut Vec<Exemption>,
) -> Vec<Finding> {
    let mut kept = Vec::with_capacity(findings.len());
    let mut seen: HashSet<Exemption> = used.iter().cloned().collect();
    for finding in findings {
        let by =
            if let Some((_, reason)) = by_annotation.iter().find(|(id, _)| *id == finding.check) {
                Some((
                    None,
                    ExemptedBy::Annotation {
                        reason: reason.clone(),
                    },
                ))
            } else {
                finding.image.as_deref().and_then(|image| {
                    policy
                        .exempt_images
                        .iter()
                        .find(|glob| glob.matches(image))
                        .map(|glob| {
                            (
                                finding.container.clone(),
                                ExemptedBy::Image {
                                    glob: glob.to_string(),
                                },
                            )
                        })
                })
            };
        match by {
            None => kept.push(finding),
            Some(_) if finding.advisory => {}
            Some((container, by)) => {
                let exemption = Exemption {
                    check: Some(finding.check),
                    container,
                    by,
                };
                if seen.insert(exemption.clone()) {
                    used.push(exemption);
                }
            }
        }
    }
    kept
}

fn exemption_warnings(exemptions: &[Exemption]) -> Vec<String> {
    let mut lines = Vec::new();
    let by_annotation: Vec<&str> = exemptions
        .iter()
        .filter(|e| matches!(e.by, ExemptedBy::Annotation { .. }))
        .filter_map(|e| e.check.map(CheckId::as_str))
        .collect();
    if let Some(ExemptedBy::Annotation { reason }) = exemptions
        .iter()
        .map(|e| &e.by)
        .find(|by| matches!(by, ExemptedBy::Annotation { .. }))
    {
        lines.push(format!(
            "podguard: {} not enforced by {EXEMPT_ANNOTATION} (reason: {reason})",
            by_annotation.join(", ")
        ));
    }
    // One line per exempted container, however many checks it skipped.
    let mut seen = HashSet::new();
    let mut containers = Vec::new();
    for exemption in exemptions {
        if let (ExemptedBy::Image { glob }, Some(container)) = (&exemption.by, &exemption.container)
            && seen.insert((container, glob))
        {
            containers.push(format!(
                "podguard: container {container:?} is not checked: its image matches exemption {glob:?}"
            ));
        }
    }
    extend_capped(&mut lines, containers.into_iter(), "exempted containers");
    lines
}

fn describe_exemptions(exemptions: &[Exemption]) -> String {
    exemptions
        .iter()
        .map(|e| {
            let check = e.check.map_or("all checks", CheckId::as_str);
            match (&e.by, &e.container) {
                (ExemptedBy::Annotation { reason }, _) => {
                    format!("{check}: {EXEMPT_ANNOTATION} ({reason})")
                }
                (ExemptedBy::Image { glob }, Some(container)) => {
                    format!("{check}: container {container:?} image matches {glob:?}")
                }
                (ExemptedBy::Image { glob }, None) => format!("{check}: image matches {glob:?}"),
                (ExemptedBy::Namespace { namespace }, _) => {
                    format!("{check}: namespace {namespace:?}")
                }
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads `podguard.io/exempt` from the object's metadata and its pod template's metadata
/// (Pods created from a template inherit only the latter, so both count). The annotation
/// counts only where the settings allow it (`exemptions.annotation`: these checks, in
/// these namespaces) and beside a reason with visible text; whatever it asks beyond that
/// is reported and ignored.
fn annotation_exemptions(
    policy: &Policy,
    namespace: Option<&str>,
    pod: &Workload,
) -> (Vec<(CheckId, String)>, Vec<String>) {
    let mut sources = vec![(
        FieldPath::root().key("metadata").key("annotations"),
        &pod.metadata.annotations,
    )];
    if pod.kind != WorkloadKind::Pod {
        sources.push((pod.metadata_path().key("annotations"), pod.annotations()));
    }
    let rules = &policy.annotation_exemptions;
    let mut exempt = Vec::new();
    let mut warnings = Vec::new();
    for (path, annotations) in sources {
        let Some(list) = annotations.get(EXEMPT_ANNOTATION) else {
            continue;
        };
        let field = format!("{path}[{EXEMPT_ANNOTATION:?}]");
        if !rules.enabled_in(namespace) {
            let place = match namespace {
                Some(ns) => format!("in namespace {:?}", echoed(ns)),
                None => "for cluster-scoped objects".to_owned(),
            };
            warnings.push(format!(
                "podguard: {field} is ignored: annotation exemptions are off {place} (settings: exemptions.annotation)"
            ));
            continue;
        }
        let reason = annotations
            .get(EXEMPT_REASON_ANNOTATION)
            .and_then(Scalar::as_str)
            .map(str::trim)
            .filter(|reason| has_visible_text(reason));
        let Some(reason) = reason else {
            warnings.push(format!(
                "podguard: {field} is ignored: add a {EXEMPT_REASON_ANNOTATION} beside it that says why, in words"
            ));
            continue;
        };
        for id in list
            .as_str()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
        {
            match CheckId::parse(id) {
                Some(check) if !rules.checks.contains(&check) => warnings.push(format!(
                    "podguard: {field} cannot exempt {check} (settings: exemptions.annotation.checks); it is ignored"
                )),
                Some(check) if !exempt.iter().any(|(c, _)| *c == check) => {
                    exempt.push((check, echoed(reason)))
                }
                Some(_) => {}
                None => warnings.push(format!(
                    "podguard: {field} names unknown check {:?}; it is ignored",
                    echoed(id)
                )),
            }
        }
    }
    (exempt, warnings)
}

/// Whether a reason says something a person can read: a zero-width space, a soft hyphen
/// or punctuation alone is not a reason.
fn has_visible_text(reason: &str) -> bool {
    reason.chars().any(char::is_alphanumeric)
}

/// At most the first 120 characters of a value the sender chose, for messages: the API
/// server truncates long warnings anyway, and a megabyte-long annotation must not become a
/// megabyte-long answer.
fn echoed(value: &str) -> String {
    const MAX: usize = 120;
    match value.char_indices().nth(MAX) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}… ({} characters)", &value[..end], value.chars().count()),
    }
}

/// Names of ephemeral containers in the pod that the stored pod does not have; ephemeral
/// containers can only be added, never changed or removed.
fn added_ephemeral_containers(pod: &Workload, old: Option<&OldObjectView>) -> HashSet<String> {
    let before: HashSet<&str> = old
        .map(|old| &old.spec.ephemeral_containers.0)
        .into_iter()
        .flatten()
        .filter_map(|c| c.name.as_ref().and_then(Scalar::as_str))
        .collect();
    pod.spec
        .ephemeral_containers
        .0
        .iter()
        .filter_map(|c| c.name.as_ref().and_then(Scalar::as_str))
        .filter(|name| !before.contains(name))
        .map(str::to_owned)
        .collect()
}
