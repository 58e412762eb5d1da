//! `image-tag-pinned`: no image without a tag or tagged `latest`.

use super::{CheckId, Definition, Severity, Rule, Run};
use crate::object::{Container, WorkloadKind};
use crate::settings::Mode;

/// What people read about the check.
pub const DEFINITION: Definition = Definition {
    title: "Image tag pinned",
    description: "Images should be pinned by a tag other than latest, or by digest.",
    requires: "images carry a tag other than `latest`, or a digest",
    mutation: None,
    default_mode: Mode::Warn,
    severity: Severity::Low,
    linux_only: false,
    kinds: &WorkloadKind::ALL,
    pss: &[],
    options: &[],
};

mode_only!();

pub(crate) const RULE: Rule = Rule::Container(check);

fn check(run: &mut Run, c: &Container) {
    let message = match c.image() {
        None | Some("") => "is not set: name an image with a version tag or digest".to_owned(),
        Some(image) => match image_tag(image) {
            ImageTag::Digest | ImageTag::Tag => return,
            ImageTag::Latest => {
                format!("{image:?} uses the latest tag: pin a version tag or a digest")
            }
            ImageTag::Missing => format!(
                "{image:?} has no tag, which means latest: pin a version tag or a digest"
            ),
        },
    };
    run.container_finding(
        CheckId::ImageTagPinned,
        c,
        c.path().key("image"),
        message,
        Vec::new(),
    );
}

enum ImageTag {
    Digest,
    Tag,
    Latest,
    Missing,
}

/// Splits an image reference the way container runtimes do: a digest pins it; otherwise
/// the tag is what follows the last `:` after the last `/` (a `:` before it is a
/// registry port).
fn image_tag(image: &str) -> ImageTag {
    if image.contains('@') {
        return ImageTag::Digest;
    }
    let last_part = image.rsplit('/').next().unwrap_or(image);
    match last_part.rsplit_once(':') {
        Some((_, "latest")) => ImageTag::Latest,
        Some((_, tag)) if !tag.is_empty() => ImageTag::Tag,
        _ => ImageTag::Missing,
    }
}
