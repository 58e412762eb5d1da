//! Kubewarden policy metadata inside the module, the way `kwctl annotate` writes it.
//!
//! kwctl reads `metadata.yml`, asks the module for its waPC `protocol_version`, puts the
//! README into the `io.kubewarden.policy.usage` annotation and writes the whole document as
//! JSON into the custom section `io.kubewarden.metadata`. Kubewarden's policy-server
//! refuses a waPC module whose section lacks `protocolVersion: v1`. podguard writes the
//! same section with the same field names, so either tool reads the other's output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use podguard_host::Runtime;

/// `policy/metadata.yml` as this binary was built.
pub const BUILT_IN_METADATA: &str = include_str!("../../../policy/metadata.yml");

/// The custom section Kubewarden reads policy metadata from.
pub const METADATA_SECTION: &str = "io.kubewarden.metadata";
/// The annotation that carries the policy's README.
pub const USAGE_ANNOTATION: &str = "io.kubewarden.policy.usage";

/// Kubewarden's policy metadata, field for field as policy-evaluator (de)serialises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Set from the module's own `protocol_version` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// What the policy is registered for.
    pub rules: Vec<Rule>,
    /// Free-form annotations (`io.kubewarden.policy.*`, `io.artifacthub.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Whether the policy may return mutated objects.
    pub mutating: bool,
    /// Whether Kubewarden's audit scanner runs it.
    #[serde(default = "default_true")]
    pub background_audit: bool,
    /// `kubewarden-wapc` for waPC policies.
    #[serde(default = "default_execution_mode")]
    pub execution_mode: String,
    /// `kubernetes` for admission policies.
    #[serde(default = "default_policy_type")]
    pub policy_type: String,
    /// Cluster resources the policy reads (none for podguard).
    #[serde(default)]
    pub context_aware_resources: BTreeSet<ContextAwareResource>,
    /// Oldest Kubewarden that can run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_kubewarden_version: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_execution_mode() -> String {
    "kubewarden-wapc".to_owned()
}

fn default_policy_type() -> String {
    "kubernetes".to_owned()
}

/// One admission rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// API groups, `""` for core.
    pub api_groups: Vec<String>,
    /// API versions.
    pub api_versions: Vec<String>,
    /// Resources, optionally `resource/subresource`.
    pub resources: Vec<String>,
    /// CREATE, UPDATE, DELETE, CONNECT or `*`.
    pub operations: Vec<String>,
}

/// A resource a context-aware policy reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextAwareResource {
    /// e.g. `v1`.
    pub api_version: String,
    /// e.g. `Namespace`.
    pub kind: String,
}

impl Metadata {
    /// Reads `metadata.yml`. `contextAware`, the legacy flag, is read and dropped as
    /// Kubewarden does.
    pub fn from_yaml_file(path: &Path) -> anyhow::Result<Metadata> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("while reading {}", path.display()))?;
        Metadata::from_yaml(&text, &path.display().to_string())
    }

    /// Reads metadata YAML; `source` names it in errors.
    pub fn from_yaml(text: &str, source: &str) -> anyhow::Result<Metadata> {
        let mut document: serde_json::Value = serde_saphyr::from_str(text)
            .with_context(|| format!("while parsing {source} as YAML"))?;
        if let Some(map) = document.as_object_mut() {
            map.remove("contextAware");
        }
        let metadata: Metadata = serde_path_to_error::deserialize(document)
            .map_err(|e| anyhow::anyhow!("{source}: field `{}`: {}", e.path(), e.inner()))?;
        metadata
            .validate()
            .with_context(|| format!("{source} is not valid policy metadata"))?;
        Ok(metadata)
    }

    /// The metadata this binary was built with (`policy/metadata.yml`), so `annotate`
    /// and `artifacthub` work outside a checkout.
    pub fn built_in() -> Metadata {
        Metadata::from_yaml(BUILT_IN_METADATA, "the built-in policy/metadata.yml")
            .expect("policy/metadata.yml is valid (tests/publishing.rs checks it)")
    }

    /// `path`'s metadata, or the built-in one.
    pub fn from_file_or_built_in(path: Option<&Path>) -> anyhow::Result<Metadata> {
        match path {
            Some(path) => Metadata::from_yaml_file(path),
            None => Ok(Metadata::built_in()),
        }
    }

    /// The checks kwctl makes before it annotates.
    pub fn validate(&self) -> anyhow::Result<()> {
        const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"];
        if self.rules.is_empty() && self.policy_type == "kubernetes" {
            anyhow::bail!("`rules` is empty: list the resources and operations the policy handles");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            for (field, values) in [
                ("apiGroups", &rule.api_groups),
                ("apiVersions", &rule.api_versions),
                ("resources", &rule.resources),
                ("operations", &rule.operations),
            ] {
                if values.is_empty() {
                    anyhow::bail!("rules[{i}].{field} is empty");
                }
                if values.len() > 1 && values.iter().any(|v| v == "*") {
                    anyhow::bail!("rules[{i}].{field}: `*` must stand alone");
                }
            }
            if let Some(op) = rule
                .operations
                .iter()
                .find(|op| !OPERATIONS.contains(&op.as_str()))
            {
                anyhow::bail!(
                    "rules[{i}].operations: {op:?} is not one of {}",
                    OPERATIONS.join(", ")
                );
            }
            if let Some(resource) = rule
                .resources
                .iter()
                .find(|r| r.is_empty() || r.split('/').count() > 2)
            {
                anyhow::bail!(
                    "rules[{i}].resources: {resource:?} is not `resource` or `resource/subresource`"
                );
            }
        }
        if self.execution_mode != "kubewarden-wapc" {
            anyhow::bail!(
                "executionMode is {:?}; podguard annotates kubewarden-wapc policies",
                self.execution_mode
            );
        }
        Ok(())
    }
}

/// Section id of custom sections in the Wasm binary format.
const CUSTOM_SECTION_ID: u8 = 0;

fn leb128(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Returns `module` with the metadata section replaced (or added): every other section
/// is copied byte for byte, so annotating twice gives the same module as annotating once.
pub fn embed(module: &[u8], metadata: &Metadata) -> anyhow::Result<Vec<u8>> {
    let payload = serde_json::to_vec(metadata)?;
    let mut out = Vec::with_capacity(module.len() + payload.len() + 64);
    let mut kept_to = 0;
    for section in wasmparser::Parser::new(0).parse_all(module) {
        let section = section.context("the module is not valid WebAssembly")?;
        match section {
            wasmparser::Payload::Version { range, .. } => {
                out.extend_from_slice(&module[..range.end]);
                kept_to = range.end;
            }
            wasmparser::Payload::CustomSection(reader) if reader.name() == METADATA_SECTION => {
                // The section header (id and size) sits just before the reader's range.
                let start = section_start(module, kept_to, reader.range().start);
                out.extend_from_slice(&module[kept_to..start]);
                kept_to = reader.range().end;
            }
            wasmparser::Payload::End(end) => {
                out.extend_from_slice(&module[kept_to..end]);
                kept_to = end;
            }
            _ => {}
        }
    }
    if kept_to != module.len() {
        anyhow::bail!("the module has trailing bytes after its last section");
    }
    let mut body = Vec::new();
    leb128(METADATA_SECTION.len(), &mut body);
    body.extend_from_slice(METADATA_SECTION.as_bytes());
    body.extend_from_slice(&payload);
    out.push(CUSTOM_SECTION_ID);
    leb128(body.len(), &mut out);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Finds where the section whose contents start at `contents_start` begins (its id byte),
/// walking the section headers forward from `from`, a section boundary.
fn section_start(module: &[u8], from: usize, contents_start: usize) -> usize {
    let mut at = from;
    while at < contents_start {
        let mut size = 0usize;
        let mut shift = 0;
        let mut cursor = at + 1;
        loop {
            let byte = module[cursor];
            size |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            cursor += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if cursor == contents_start {
            return at;
        }
        at = cursor + size;
    }
    contents_start
}

/// The metadata embedded in `module`, if any.
pub fn read_metadata(module: &[u8]) -> anyhow::Result<Option<Metadata>> {
    for section in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::CustomSection(reader) =
            section.context("the module is not valid WebAssembly")?
            && reader.name() == METADATA_SECTION
        {
            let metadata = serde_json::from_slice(reader.data()).with_context(|| {
                format!("the {METADATA_SECTION} section is not Kubewarden metadata JSON")
            })?;
            return Ok(Some(metadata));
        }
    }
    Ok(None)
}

/// `podguard annotate`: metadata from `metadata_path`, the protocol version from the
/// module itself, the README as usage.
pub fn annotate(
    module_path: &Path,
    metadata_path: Option<&Path>,
    usage: Option<&Path>,
) -> anyhow::Result<Vec<u8>> {
    let module = std::fs::read(module_path)
        .with_context(|| format!("while reading {}", module_path.display()))?;
    let mut metadata = Metadata::from_file_or_built_in(metadata_path)?;
    let runtime = Runtime::new(Default::default())?;
    let loaded = runtime.load("annotate", &module)?;
    let answer = loaded
        .call("protocol_version", b"")
        .context("while asking the module for its protocol_version")?;
    let version: String = serde_json::from_slice(&answer).with_context(|| {
        format!(
            "protocol_version answered {:?}, not a JSON string",
            String::from_utf8_lossy(&answer)
        )
    })?;
    if version != "v1" {
        anyhow::bail!("the module speaks waPC protocol {version:?}; Kubewarden runs v1");
    }
    metadata.protocol_version = Some(version);
    if let Some(path) = usage {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("while reading {}", path.display()))?;
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(USAGE_ANNOTATION.to_owned(), text);
    }
    embed(&module, &metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        Metadata {
            protocol_version: Some("v1".to_owned()),
            rules: vec![Rule {
                api_groups: vec![String::new()],
                api_versions: vec!["v1".to_owned()],
                resources: vec!["pods".to_owned()],
                operations: vec!["CREATE".to_owned()],
            }],
            annotations: Some(BTreeMap::from([(
                "io.kubewarden.policy.title".to_owned(),
                "t".to_owned(),
            )])),
            mutating: true,
            background_audit: true,
            execution_mode: default_execution_mode(),
            policy_type: default_policy_type(),
            context_aware_resources: BTreeSet::new(),
            minimum_kubewarden_version: None,
        }
    }

    #[test]
    fn embedding_replaces_the_section_and_keeps_everything_else() {
        let module = wat_module();
        let once = embed(&module, &metadata()).unwrap();
        assert_eq!(read_metadata(&once).unwrap(), Some(metadata()));
        let mut changed = metadata();
        changed.mutating = false;
        let twice = embed(&once, &changed).unwrap();
        assert_eq!(read_metadata(&twice).unwrap(), Some(changed.clone()));
        assert_eq!(
            twice,
            embed(&module, &changed).unwrap(),
            "re-annotating equals annotating once"
        );
        assert!(
            twice.starts_with(&module),
            "the original sections are kept byte for byte"
        );
        wasmparser::validate(&twice).unwrap();
    }

    #[test]
    fn the_json_uses_kubewardens_field_names() {
        let json = serde_json::to_value(metadata()).unwrap();
        for key in [
            "protocolVersion",
            "rules",
            "annotations",
            "mutating",
            "backgroundAudit",
            "executionMode",
            "policyType",
            "contextAwareResources",
        ] {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        assert_eq!(json["rules"][0]["apiGroups"], serde_json::json!([""]));
    }

    #[test]
    fn invalid_rules_are_refused_with_the_field() {
        let mut bad = metadata();
        bad.rules[0].operations = vec!["PATCH".to_owned()];
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("rules[0].operations")
        );
        bad.rules[0].operations = vec!["*".to_owned(), "CREATE".to_owned()];
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("stand alone")
        );
    }

    fn wat_module() -> Vec<u8> {
        // A module with a custom section before and after the code, to check order is kept.
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(&[0, 4, 3, b'a', b'b', b'c']);
        module.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type section: one () -> ()
        module
    }
}
