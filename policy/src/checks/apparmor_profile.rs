//! `apparmor-profile`: AppArmor profiles only `RuntimeDefault` or `Localhost`, in the
//! `appArmorProfile` fields and the older annotations (Pod Security Standards, baseline).

use super::{CheckId, Definition, Severity, baseline, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::settings::Mode;
use crate::view::{AppArmorView, MAX_SHOWN, Scalar, set};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "AppArmor profile",
    description: "AppArmor must not be turned off: profiles only RuntimeDefault or Localhost, in the appArmorProfile fields and the container.apparmor.security.beta.kubernetes.io annotations (Pod Security Standards, baseline).",
    requires: "`appArmorProfile.type` `RuntimeDefault` or `Localhost`; annotations `container.apparmor.security.beta.kubernetes.io/*` only `runtime/default` or `localhost/*`",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::High,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("appArmorProfile")],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::PodAndContainers {
    pod: check_pod,
    container: check_container,
};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn check_pod(run: &mut Run, _: &[Container]) {
    if let Some(message) = profile_problem(&run.pod.spec.security_context.app_armor_profile) {
        let path = run.pod.security_path("appArmorProfile").key("type");
        run.pod_finding(CheckId::ApparmorProfile, path, message, Vec::new());
    }
    let bad: Vec<(String, String)> = run
        .pod
        .annotations()
        .0
        .iter()
        .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX))
        .filter_map(|(key, value)| {
            let text = value.as_str();
            let allowed = text.is_some_and(|v| {
                v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
            });
            let shown = match text {
                Some(text) if text.len() <= MAX_SHOWN => format!("{text:?}"),
                _ => "not a profile".to_owned(),
            };
            (!allowed).then(|| (key.as_ref().to_owned(), shown))
        })
        .collect();
    for (key, shown) in bad {
        let path = run.pod.metadata_path().key("annotations").key(key);
        run.pod_finding(
            CheckId::ApparmorProfile,
            path,
            format!(
                "is {shown}: use runtime/default or localhost/<profile>, or the container's appArmorProfile field (unconfined turns AppArmor off)"
            ),
            Vec::new(),
        );
    }
}

fn check_container(run: &mut Run, c: &Container) {
    if let Some(message) = profile_problem(&c.security().app_armor_profile) {
        let path = c.security_path("appArmorProfile").key("type");
        run.container_finding(CheckId::ApparmorProfile, c, path, message, Vec::new());
    }
}

fn profile_problem(profile: &Option<AppArmorView>) -> Option<String> {
    let profile = profile.as_ref()?;
    let value = set(&profile.profile_type);
    if value.and_then(Scalar::as_str).is_some_and(|t| t == "RuntimeDefault" || t == "Localhost")
    {
        return None;
    }
    let shown = match value {
        None => "unset".to_owned(),
        Some(other) => other.shown_or("not a profile type"),
    };
    Some(format!(
        "is {shown}: use RuntimeDefault or Localhost (Unconfined turns AppArmor off)"
    ))
}
