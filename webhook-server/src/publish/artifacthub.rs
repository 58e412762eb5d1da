//! `artifacthub-pkg.yml` from `metadata.yml` and `questions-ui.yml`, in the shape
//! `kwctl scaffold artifacthub` writes, so the hub listing can only say what the metadata
//! says.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::annotate::Metadata;

/// What the listing is built from.
pub struct ListingSources<'a> {
    /// The policy metadata.
    pub metadata: &'a Metadata,
    /// The settings form, verbatim.
    pub questions_ui: &'a str,
    /// RFC 3339 creation time.
    pub created_at: &'a str,
}

/// `policy/questions-ui.yml` as this binary was built.
pub const BUILT_IN_QUESTIONS: &str = include_str!("../../../policy/questions-ui.yml");

/// Writes the listing. The annotations kwctl requires must be present.
pub fn render(sources: &ListingSources) -> anyhow::Result<String> {
    let metadata = sources.metadata;
    let annotations = metadata.annotations.clone().unwrap_or_default();
    let get = |key: &str| -> anyhow::Result<&str> {
        annotations.get(key).map(String::as_str).with_context(|| {
            format!("metadata.yml lacks the annotation {key}, which the ArtifactHub listing needs")
        })
    };
    let version = get("io.kubewarden.policy.version")?;
    let name = get("io.kubewarden.policy.title")?;
    let display_name = get("io.artifacthub.displayName")?;
    let description = get("io.kubewarden.policy.description")?;
    let oci_url = get("io.kubewarden.policy.ociUrl")?;
    let license = get("io.kubewarden.policy.license")?;
    let home = get("io.kubewarden.policy.url")?;
    let source = get("io.kubewarden.policy.source")?;
    let author = get("io.kubewarden.policy.author")?;
    let resources = get("io.artifacthub.resources")?;
    let keywords: Vec<&str> = get("io.artifacthub.keywords")?
        .split(',')
        .map(str::trim)
        .collect();
    if keywords.iter().any(|k| k.is_empty()) {
        anyhow::bail!("io.artifacthub.keywords has an empty entry");
    }
    if sources.questions_ui.trim().is_empty() {
        anyhow::bail!("questions-ui.yml is empty; ArtifactHub shows the settings form from it");
    }
    let (maintainer, email) = author
        .split_once('<')
        .and_then(|(name, rest)| Some((name.trim(), rest.strip_suffix('>')?.trim())))
        .with_context(|| format!("io.kubewarden.policy.author {author:?} is not `Name <email>`"))?;
    let image = format!("{oci_url}:v{version}");

    let q = |text: &str| serde_json::to_string(text).expect("strings serialise");
    let mut out = String::new();
    out.push_str("# Kubewarden Artifacthub Package config\n#\n");
    out.push_str("# Generated from policy/metadata.yml and policy/questions-ui.yml by\n");
    out.push_str("#   podguard artifacthub -m policy/metadata.yml -q policy/questions-ui.yml -o artifacthub-pkg.yml\n");
    out.push_str("# Do not edit by hand: a test fails when it disagrees with the metadata.\n");
    writeln!(out, "version: {}", q(version))?;
    writeln!(out, "name: {}", q(name))?;
    writeln!(out, "displayName: {}", q(display_name))?;
    writeln!(out, "createdAt: {}", q(sources.created_at))?;
    writeln!(out, "description: {}", q(description))?;
    writeln!(out, "license: {}", q(license))?;
    writeln!(out, "homeURL: {}", q(home))?;
    out.push_str("containersImages:\n");
    writeln!(out, "  - name: policy\n    image: {}", q(&image))?;
    out.push_str("keywords:\n");
    for keyword in &keywords {
        writeln!(out, "  - {}", q(keyword))?;
    }
    out.push_str("links:\n");
    writeln!(
        out,
        "  - name: policy\n    url: {}",
        q(&format!(
            "{source}/releases/download/v{version}/policy.wasm"
        ))
    )?;
    writeln!(out, "  - name: source\n    url: {}", q(source))?;
    out.push_str("install: |\n");
    let install = format!(
        "The policy can be obtained using [`kwctl`](https://github.com/kubewarden/kwctl):\n```console\nkwctl pull {image}\n```\nThen, generate the policy manifest and tune it to your liking. For example:\n```console\nkwctl scaffold manifest -t ClusterAdmissionPolicy registry://{image}\n```\n"
    );
    block(&mut out, &install, "  ");
    out.push_str("maintainers:\n");
    writeln!(out, "  - name: {}\n    email: {}", q(maintainer), q(email))?;
    out.push_str("provider:\n  name: kubewarden\n");
    out.push_str("recommendations:\n  - url: \"https://artifacthub.io/packages/helm/kubewarden/kubewarden-controller\"\n");
    out.push_str("annotations:\n");
    writeln!(
        out,
        "  kubewarden/mutation: {}",
        q(&metadata.mutating.to_string())
    )?;
    out.push_str("  kubewarden/questions-ui: |\n");
    block(&mut out, sources.questions_ui, "    ");
    writeln!(out, "  kubewarden/resources: {}", q(resources))?;
    out.push_str("  kubewarden/rules: |\n");
    block(&mut out, &rules_yaml(metadata), "    ");
    if !metadata.context_aware_resources.is_empty() {
        out.push_str("  kubewarden/contextAwareResources: |\n");
        let mut text = String::new();
        for resource in &metadata.context_aware_resources {
            writeln!(
                text,
                "- apiVersion: {}\n  kind: {}",
                q(&resource.api_version),
                q(&resource.kind)
            )?;
        }
        block(&mut out, &text, "    ");
    }
    if let Some(hidden) = annotations.get("io.kubewarden.hidden-ui") {
        writeln!(out, "  kubewarden/hidden-ui: {}", q(hidden))?;
    }
    Ok(out)
}

/// Appends `text` as the body of a YAML literal block scalar.
fn block(out: &mut String, text: &str, indent: &str) {
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(indent);
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// The rules as YAML, one flow list per field.
pub fn rules_yaml(metadata: &Metadata) -> String {
    let list = |items: &[String]| serde_json::to_string(items).expect("strings serialise");
    let mut out = String::new();
    for rule in &metadata.rules {
        let _ = writeln!(out, "- apiGroups: {}", list(&rule.api_groups));
        let _ = writeln!(out, "  apiVersions: {}", list(&rule.api_versions));
        let _ = writeln!(out, "  resources: {}", list(&rule.resources));
        let _ = writeln!(out, "  operations: {}", list(&rule.operations));
    }
    out
}

/// Now, as RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The `createdAt` of an existing listing, so regenerating it changes nothing else.
pub fn existing_created_at(listing: &str) -> Option<String> {
    listing
        .lines()
        .find_map(|line| line.strip_prefix("createdAt:"))
        .map(|value| value.trim().trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_rfc3339() {
        let now = super::now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(
            now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T',
            "{now}"
        );
    }
}
