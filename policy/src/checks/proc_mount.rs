//! `proc-mount`: containers keep the default `/proc` mask (Pod Security Standards, baseline).

use super::{CheckId, Definition, Severity, baseline, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::settings::Mode;
use crate::view::set;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Default /proc mount",
    description: "Containers must keep the default masked /proc (procMount Default), unless the pod runs in a user namespace (Pod Security Standards, baseline).",
    requires: "`procMount` unset or `Default`, any value with `hostUsers: false` (as PSA since 1.35)",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::High,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("procMount")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    // As PSA since 1.35: in a user namespace an unmasked /proc exposes only the pod's own.
    if run.pod.in_user_namespace() {
        return;
    }
    let Some(value) = set(&c.security().proc_mount) else {
        return;
    };
    if value.as_str() == Some("Default") {
        return;
    }
    let shown = value.shown_or("not Default");
    let message = format!(
        "is {shown}: remove it or set Default (an unmasked /proc exposes the node's kernel settings), or run the pod with hostUsers: false"
    );
    run.container_finding(
        CheckId::ProcMount,
        c,
        c.security_path("procMount"),
        message,
        Vec::new(),
    );
}
