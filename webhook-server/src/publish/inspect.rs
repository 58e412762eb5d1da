//! `podguard inspect`: what a module is, as a publisher checks it before pushing.

use anyhow::Context as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::annotate::{Metadata, read_metadata};

/// What `podguard inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Size in bytes.
    pub size: usize,
    /// sha256 of the module bytes.
    pub digest: String,
    /// Exported functions and memories.
    pub exports: Vec<String>,
    /// The embedded metadata.
    pub metadata: Option<Metadata>,
}

/// Reads size, digest, exports and metadata of a module.
pub fn inspect(module: &[u8]) -> anyhow::Result<Inspection> {
    let mut exports = Vec::new();
    for section in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ExportSection(reader) =
            section.context("the module is not valid WebAssembly")?
        {
            for export in reader {
                exports.push(export?.name.to_owned());
            }
        }
    }
    Ok(Inspection {
        size: module.len(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(module))),
        exports,
        metadata: read_metadata(module)?,
    })
}
