//! `drop-capabilities`: every container drops `ALL` and adds only allowed capabilities.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{CheckId, Definition, Severity, baseline, restricted, Input, OptionDoc, Rule, Run};
use crate::object::{Container, Edit, Flag, WorkloadKind};
use crate::settings::{Mode, Problems, canonical_capability};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Drop capabilities",
    description: "Containers must drop ALL Linux capabilities and add back only allowed ones.",
    requires: "every container drops `ALL`; adds only `allowedAdd` (default `NET_BIND_SERVICE`)",
    mutation: Some("adds `ALL` to `capabilities.drop`"),
    default_mode: Mode::Enforce,
    severity: Severity::High,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("capabilities_baseline"), restricted("capabilities_restricted")],
    options: &[OptionDoc {
        key: "allowedAdd",
        label: "Allowed added capabilities",
        description: "Capabilities a container may add once it drops ALL, e.g. NET_BIND_SERVICE. Names compare case-insensitively, with or without the CAP_ prefix.",
        input: Input::List,
        mutate_only: false,
    }],
};

/// Options of `drop-capabilities`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The workload kinds it judges; unset, those of its definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<WorkloadKind>>,
    /// Capabilities a container may add after dropping `ALL`.
    pub allowed_add: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        default_options()
    }
}

pub(crate) fn default_options() -> Options {
    Options {
        mode: DEFINITION.default_mode,
kinds: Some(DEFINITION.kinds.to_vec()),
        allowed_add: vec!["NET_BIND_SERVICE".to_owned()],
    }
}

/// The compiled options.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Canonical capability names a container may add.
    pub allowed_add: Vec<String>,
}

pub(crate) fn compile(options: &Options, problems: &mut Problems) -> Compiled {
    let mut allowed_add = Vec::new();
    for (i, name) in options.allowed_add.iter().enumerate() {
        let field = format!("checks.drop-capabilities.allowedAdd[{i}]");
        let canonical = canonical_capability(name);
        if canonical.is_empty()
            || !canonical
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_')
        {
            problems.add(
                &field,
                format!("{name:?} is not a capability name such as NET_BIND_SERVICE"),
            );
        } else if canonical == "ALL" {
            problems.add(
                &field,
                "ALL cannot be allowed: it would re-grant every capability the check drops",
            );
        } else {
            allowed_add.push(canonical);
        }
    }
    Compiled { allowed_add }
}

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    let sc = c.security();
    if Flag::of(&sc.privileged).is_true() {
        // privileged grants every capability whatever `drop` says: a passing verdict
        // here would be false.
        run.container_finding(
            CheckId::DropCapabilities,
            c,
            c.security_path("privileged"),
            "is true: it grants every capability whatever capabilities.drop says".to_owned(),
            Vec::new(),
        );
        return;
    }
    let capabilities = &sc.capabilities;
    let caps_path = || c.security_path("capabilities");
    let mut drops_all = false;
    let mut near_miss = None;
    for (i, entry) in capabilities.drop.iter() {
        let Some(name) = entry.as_str() else { continue };
        if runtime_reads_as_all(name) {
            drops_all = true;
            if name != "ALL" {
                // Runtimes treat `all` as ALL but Pod Security Admission compares
                // exactly, so mutate mode spells it the canonical way.
                let path = caps_path().key("drop").index(i);
                run.advisory(
                    CheckId::DropCapabilities,
                    c,
                    path.clone(),
                    format!(
                        "{name:?} is read as ALL by containerd and CRI-O, so podguard passes it, but Pod Security Admission's restricted level accepts only ALL in upper case: write ALL"
                    ),
                    Edit::Normalize {
                        path,
                        value: json!("ALL"),
                    },
                );
            }
        } else if near_miss.is_none() && canonical_capability(name) == "ALL" {
            near_miss = Some((i, name));
        }
    }
    if !drops_all {
        // An entry that only looks like ALL (`"ALL "`, `CAP_ALL`) drops nothing at all,
        // so the container keeps every default capability: say which entry misleads.
        let message = match near_miss {
            Some((i, name)) => format!(
                "must include ALL: drop[{i}] {name:?} is not ALL to container runtimes, which compare the whole entry with ALL, ignoring only case; write ALL"
            ),
            None => "must include ALL".to_owned(),
        };
        let path = caps_path().key("drop");
        run.container_finding(
            CheckId::DropCapabilities,
            c,
            path.clone(),
            message,
            vec![Edit::Append {
                path,
                value: json!("ALL"),
            }],
        );
    }
    let policy = run.policy;
    let allowed = &policy.checks.drop_capabilities.allowed_add;
    for (i, entry) in capabilities.add.iter() {
        let name = entry.as_str().unwrap_or_default();
        let canonical = canonical_capability(name);
        if !allowed.contains(&canonical) {
            let allowed = match allowed.as_slice() {
                [] => "none may be added".to_owned(),
                list => format!("only {} may be added", list.join(", ")),
            };
            let message = match name == canonical {
                true => format!("adds {name}, but {allowed}: remove it"),
                false => format!("adds {entry} ({canonical}), but {allowed}: remove it"),
            };
            run.container_finding(
                CheckId::DropCapabilities,
                c,
                caps_path().key("add").index(i),
                message,
                Vec::new(),
            );
        }
    }
}

/// Whether a `capabilities.drop` entry drops every capability once it reaches the
/// container runtime. containerd and CRI-O compare the entry with `ALL` after upper-casing
/// it and do nothing else: no trimming, no `CAP_` prefix, so `"ALL "` or `CAP_ALL` drops
/// nothing. Go's `strings.ToUpper` maps no character outside ASCII to `A` or `L`, so an
/// ASCII case-insensitive comparison is exactly theirs.
pub fn runtime_reads_as_all(entry: &str) -> bool {
    entry.eq_ignore_ascii_case("ALL")
}
