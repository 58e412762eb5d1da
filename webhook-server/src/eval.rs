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

/// The largest AdmissionReview `eval` reads: the server's default body limit, with room.
/// An input with no end (`/dev/zero`) would otherwise be read into memory until it ran out.
pub const MAX_REVIEW_BYTES: u64 = 64 * 1024 * 1024;

/// Evaluates one review and writes the AdmissionReview response to `out`.
pub fn run(args: &EvalArgs, out: &mut dyn std::io::Write) -> anyhow::Result<Verdict> {
    let body = match args.review.as_deref() {
        None => read_capped(std::io::stdin().lock(), "stdin")?,
        Some(path) if path.as_os_str() == "-" => read_capped(std::io::stdin().lock(), "stdin")?,
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("while reading the AdmissionReview {}", path.display()))?;
            read_capped(file, &path.display().to_string())?
        }
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

fn read_capped(reader: impl std::io::Read, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    reader
        .take(MAX_REVIEW_BYTES + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("while reading the AdmissionReview from {name}"))?;
    if body.len() as u64 > MAX_REVIEW_BYTES {
        anyhow::bail!(
            "{name} holds more than {MAX_REVIEW_BYTES} bytes; an AdmissionReview is a few kilobytes (kube-apiserver sends at most a few megabytes): pass the review file"
        );
    }
    Ok(body)
}
