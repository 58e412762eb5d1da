//! `podguard eval`: one AdmissionReview in, the response out, like `kwctl run`.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::admission::{self, Endpoint, FailureMode};
use crate::host::{HostConfig, Runtime};
use crate::policy_file::load_policy;

/// What `eval` needs.
#[derive(Debug, Clone)]
pub struct EvalArgs {
    /// The policy module.
    pub policy: PathBuf,
    /// Runtime settings (YAML or JSON).
    pub settings: Option<PathBuf>,
    /// The AdmissionReview file; `-` or `None` reads stdin.
    pub review: Option<PathBuf>,
    /// Limits and cache for the host.
    pub host: HostConfig,
}

/// Exit status of `eval`: the verdict, so scripts can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The request would be allowed.
    Allowed,
    /// The request would be denied.
    Denied,
}

/// Evaluates one review and writes the AdmissionReview response to `out`.
pub fn run(args: &EvalArgs, out: &mut dyn std::io::Write) -> anyhow::Result<Verdict> {
    let body = match args.review.as_deref() {
        None => read_stdin()?,
        Some(path) if path.as_os_str() == "-" => read_stdin()?,
        Some(path) => std::fs::read(path)
            .with_context(|| format!("while reading the AdmissionReview {}", path.display()))?,
    };
    let runtime = Runtime::new(args.host.clone())?;
    let policy = load_policy(&runtime, "policy", &args.policy, args.settings.as_deref())?;
    let answer = admission::review(
        &policy.module,
        &policy.settings,
        &body,
        Endpoint::Mutate,
        FailureMode::Deny,
    )
    .context("while reading the AdmissionReview")?;
    serde_json::to_writer_pretty(&mut *out, &answer.review)?;
    writeln!(out)?;
    Ok(if answer.allowed {
        Verdict::Allowed
    } else {
        Verdict::Denied
    })
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("while reading the AdmissionReview from stdin")?;
    Ok(body)
}
