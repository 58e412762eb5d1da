//! The publishing commands: `annotate`, `inspect`, `artifacthub`, `push` and `pull`.

use anyhow::Context as _;
use podguard_server::policy_ref::Fetch;
use podguard_server::publish::annotate::{self, Metadata};
use podguard_server::publish::{artifacthub, inspect, oci};

use crate::cli::{AnnotateCommand, ArtifacthubCommand, InspectCommand, PullCommand, PushCommand};
use crate::config::registry_options;

pub(super) fn annotate(cmd: &AnnotateCommand) -> anyhow::Result<()> {
    let bytes = annotate::annotate(&cmd.module, cmd.metadata.as_deref(), cmd.usage.as_deref())?;
    std::fs::write(&cmd.output, &bytes)
        .with_context(|| format!("while writing {}", cmd.output.display()))?;
    println!("{}: {} bytes", cmd.output.display(), bytes.len());
    Ok(())
}

pub(super) fn push(cmd: &PushCommand) -> anyhow::Result<()> {
    registry(|| async {
        let digest = oci::push(
            &cmd.module,
            &cmd.reference,
            &registry_options(&cmd.registry),
        )
        .await?;
        println!(
            "{}@{digest}",
            cmd.reference.trim_start_matches("registry://")
        );
        Ok(())
    })
}

pub(super) fn pull(cmd: &PullCommand) -> anyhow::Result<()> {
    registry(|| async {
        let pulled = oci::pull(&cmd.reference, &registry_options(&cmd.registry)).await?;
        std::fs::write(&cmd.output, &pulled.module)
            .with_context(|| format!("while writing {}", cmd.output.display()))?;
        println!(
            "{} {} ({} bytes)",
            cmd.output.display(),
            pulled.digest,
            pulled.module.len()
        );
        Ok(())
    })
}

pub(super) fn artifacthub(cmd: &ArtifacthubCommand) -> anyhow::Result<()> {
    let metadata = Metadata::from_file_or_built_in(cmd.metadata.as_deref())?;
    let questions_ui = match &cmd.questions {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("while reading {}", path.display()))?,
        None => artifacthub::BUILT_IN_QUESTIONS.to_owned(),
    };
    // `-` is stdout, as for every other command that writes a document.
    let to_stdout = cmd.output.as_os_str() == "-";
    let created_at = (!to_stdout)
        .then(|| std::fs::read_to_string(&cmd.output).ok())
        .flatten()
        .and_then(|existing| artifacthub::existing_created_at(&existing))
        .unwrap_or_else(artifacthub::now_rfc3339);
    let listing = artifacthub::render(&artifacthub::ListingSources {
        metadata: &metadata,
        questions_ui: &questions_ui,
        created_at: &created_at,
    })?;
    if to_stdout {
        print!("{listing}");
        return Ok(());
    }
    std::fs::write(&cmd.output, listing)
        .with_context(|| format!("while writing {}", cmd.output.display()))?;
    println!("{}", cmd.output.display());
    Ok(())
}

/// Runs one registry operation on a small runtime of its own.
fn registry<F, Fut>(operation: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(operation())
}

pub(super) fn inspect(cmd: &InspectCommand) -> anyhow::Result<()> {
    let fetch = Fetch {
        registry: registry_options(&cmd.registry),
        cache_dir: None,
    };
    let module = cmd.module.resolve_blocking(&fetch)?;
    let report = inspect::inspect(&module.read()?)?;
    if cmd.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("module:  {}", module.origin());
    println!("size:    {} bytes", report.size);
    println!("digest:  {}", report.digest);
    println!("exports: {}", report.exports.join(", "));
    match &report.metadata {
        None => println!("metadata: none (annotate it with `podguard annotate`)"),
        Some(metadata) => {
            let mut shown = metadata.clone();
            // The usage annotation is the whole README; show its size instead.
            if let Some(usage) = shown
                .annotations
                .as_mut()
                .and_then(|a| a.get_mut(annotate::USAGE_ANNOTATION))
            {
                *usage = format!("({} bytes of markdown)", usage.len());
            }
            println!("metadata:\n{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}
