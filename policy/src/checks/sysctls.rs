//! `sysctls`: the pod sets only the sysctls Pod Security Admission counts as safe, for the
//! Kubernetes version the settings name (Pod Security Standards, baseline).

use serde::{Deserialize, Serialize};

use super::{CheckId, Definition, Severity, baseline, Input, OptionDoc, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::settings::{Mode, Problems};
use crate::view::{MAX_SHOWN, Scalar};

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Safe sysctls",
    description: "Pods may set only the namespaced sysctls Pod Security Admission counts as safe for the cluster's Kubernetes version (Pod Security Standards, baseline).",
    requires: "`securityContext.sysctls` only from PSA's safe set for `version`",
    mutation: None,
    default_mode: Mode::Enforce,
    severity: Severity::Medium,
    linux_only: true,
    kinds: &WorkloadKind::ALL,
    pss: &[baseline("sysctls")],
    options: &[OptionDoc {
        key: "version",
        label: "Kubernetes version",
        description: "The Pod Security Standards version whose safe set applies, as PSA's enforce-version label: latest, or v1.N. The set grew in 1.27, 1.29, 1.32 and 1.37; an older cluster's kubelet refuses sysctls it does not know as safe.",
        input: Input::String,
        mutate_only: false,
    }],
};

/// Options of `sysctls`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Options {
    /// What the check does with a violation.
    pub mode: Mode,
    /// The workload kinds it judges; unset, those of its definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<WorkloadKind>>,
    /// `latest` or `v1.N`.
    pub version: String,
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
        version: "latest".to_owned(),
    }
}

/// The compiled options: the minor version whose set applies.
pub type Compiled = u32;

/// PSA's safe sysctls, each with the minor version it joined the set in.
const SAFE: &[(&str, u32)] = &[
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

pub(crate) fn compile(settings: &Options, problems: &mut Problems) -> Compiled {
    let version = settings.version.trim();
    if version == "latest" {
        return u32::MAX;
    }
    match version
        .strip_prefix('v')
        .unwrap_or(version)
        .strip_prefix("1.")
        .and_then(|minor| minor.parse::<u32>().ok())
    {
        Some(minor) => minor,
        None => {
            problems.add(
                "checks.sysctls.version",
                format!("{version:?} is not a version: write latest or v1.N, e.g. v1.33"),
            );
            u32::MAX
        }
    }
}

pub(crate) const RULE: Rule = Rule::Pod(check);

fn check(run: &mut Run, _: &[Container]) {
    let minor = run.policy.checks.sysctls;
    let forbidden: Vec<(usize, String)> = run
        .pod
        .spec
        .security_context
        .sysctls
        .iter()
        .filter_map(|(index, sysctl)| {
            let name = sysctl.name.as_ref().and_then(Scalar::as_str);
            let safe = name.is_some_and(|name| {
                SAFE.iter()
                    .any(|(safe, since)| *safe == name && *since <= minor)
            });
            (!safe).then(|| {
                let shown = match name {
                    Some(name) if name.len() <= MAX_SHOWN => format!("{name:?}"),
                    _ => "not a safe sysctl".to_owned(),
                };
                (index, shown)
            })
        })
        .collect();
    for (index, shown) in forbidden {
        let path = run
            .pod
            .security_path("sysctls")
            .index(index)
            .key("name");
        run.pod_finding(
            CheckId::Sysctls,
            path,
            format!(
                "is {shown}: only the sysctls Pod Security Admission counts as safe may be set (others can reach beyond the pod); an unsafe one needs the kubelet's --allowed-unsafe-sysctls and an exemption"
            ),
            Vec::new(),
        );
    }
}
