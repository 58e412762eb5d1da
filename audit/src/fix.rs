//! `--fix`: writes mutate mode's changes back into the files the objects came from.
//!
//! A YAML document is changed by minimal text edits ([`yaml::minimal_edit`]): only the
//! lines mutate mode's changes need are inserted or changed, in the document's own
//! indentation and quoting, and every other byte (comments included) stays, so a GitOps
//! diff shows the fix and nothing else. A document whose change cannot be written that
//! way (anchors, a key removed) is emitted whole from its data in its own indentation
//! style; comments inside it are then not kept, and the report says so. Documents that
//! do not change, and everything between documents, are never touched.

use std::io::Write as _;
use std::path::Path;

use serde_json::Value;
use serde_json::value::RawValue;

use super::model::{InputError, InputName, Verdict};
use super::yaml::{self, Segment, Style};

/// The mutated objects of the file being read, until the file is done.
#[derive(Default)]
pub struct Fixer {
    pending: Vec<Change>,
}

struct Change {
    document: usize,
    item: Option<usize>,
    mutated: Value,
}

/// What rewriting one file did.
#[derive(Debug)]
pub struct FileFix {
    /// Documents rewritten.
    pub documents: usize,
    /// Set when a rewritten document held comments inside it, which were not kept.
    pub lost_comments: bool,
}

impl Fixer {
    /// Remembers the fix of one workload, if it has one.
    pub fn record(&mut self, verdict: &Verdict) {
        if let Ok(judgement) = &verdict.result
            && let Some(fix) = &judgement.fix
            && verdict.workload.origin.input.path().is_some()
        {
            self.pending.push(Change {
                document: verdict.workload.origin.document,
                item: verdict.workload.origin.item,
                mutated: fix.mutated.clone(),
            });
        }
    }

    /// Rewrites `input` with the fixes recorded since the last file.
    pub fn finish_file(&mut self, input: &InputName) -> Result<Option<FileFix>, InputError> {
        let changes = std::mem::take(&mut self.pending);
        let Some(path) = input.path() else {
            return Ok(None);
        };
        if changes.is_empty() {
            return Ok(None);
        }
        let error = |message: String| InputError {
            input: path.display().to_string(),
            line: None,
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|err| {
            error(format!(
                "cannot read it again to write the fixes: {err}; nothing was written"
            ))
        })?;
        let json_by_name = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let starts_like_json = text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with(['{', '[']);
        let rewritten = if json_by_name || starts_like_json {
            match rewrite_json(&text, &changes) {
                Ok(result) => Ok(result),
                Err(_) if !json_by_name => rewrite_yaml(&text, &changes),
                Err(err) => Err(err),
            }
        } else {
            rewrite_yaml(&text, &changes)
        }
        .map_err(|message| error(format!("{message}; nothing was written")))?;
        let (new_text, fix) = rewritten;
        write_in_place(path, &new_text).map_err(|err| {
            let hint = match err.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    "; check the permissions of the file and its directory"
                }
                _ => "",
            };
            error(format!(
                "cannot write the fixes: {err}{hint}; nothing was written"
            ))
        })?;
        Ok(Some(fix))
    }
}

/// Applies the changes to one parsed document: the object itself, or items of its list.
fn apply(document: &mut Value, changes: &[&Change]) -> Result<(), String> {
    for change in changes {
        match change.item {
            None => *document = change.mutated.clone(),
            Some(index) => {
                let slot = document
                    .get_mut("items")
                    .and_then(|items| items.get_mut(index))
                    .ok_or_else(|| {
                        format!("item {index} of document {} is gone", change.document + 1)
                    })?;
                *slot = change.mutated.clone();
            }
        }
    }
    Ok(())
}

fn changes_for(changes: &[Change], document: usize) -> Vec<&Change> {
    changes.iter().filter(|c| c.document == document).collect()
}

fn rewrite_yaml(text: &str, changes: &[Change]) -> Result<(String, FileFix), String> {
    let segments = yaml::split(text);
    let mut out = String::with_capacity(text.len() + 256);
    let mut fix = FileFix {
        documents: 0,
        lost_comments: false,
    };
    for (index, segment) in segments.iter().enumerate() {
        let original = &text[segment.range.clone()];
        let document_changes = changes_for(changes, index);
        if document_changes.is_empty() {
            out.push_str(original);
            continue;
        }
        let read: Value = serde_saphyr::from_str(original)
            .map_err(|err| format!("document {} changed since it was read ({err})", index + 1))?;
        let mut value = read.clone();
        apply(&mut value, &document_changes)?;
        let (head, body, tail) = cut_segment(original, segment);
        let style = Style::detect(body);
        out.push_str(head);
        match yaml::minimal_edit(body, &read, &value, style) {
            Some(edited) => out.push_str(&edited),
            None => {
                fix.lost_comments |= body.lines().any(|line| line.trim_start().starts_with('#'));
                out.push_str(&yaml::emit(&value, style));
            }
        }
        out.push_str(tail);
        fix.documents += 1;
    }
    Ok((out, fix))
}

/// Splits a segment into what stays before the content (the `---` line, leading
/// comments), the content, and what stays after it (trailing comments, `...`).
fn cut_segment<'t>(text: &'t str, segment: &Segment) -> (&'t str, &'t str, &'t str) {
    let content_line = segment.content_line.unwrap_or(segment.first_line);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut offsets = Vec::with_capacity(lines.len() + 1);
    let mut offset = 0;
    for line in &lines {
        offsets.push(offset);
        offset += line.len();
    }
    offsets.push(offset);
    let first = content_line - segment.first_line;
    // Content on the `---` line itself (`--- {a: 1}`): keep a bare marker instead.
    let (head, body_start) = if lines.get(first).is_some_and(|l| l.starts_with("---")) {
        ("---\n", offsets[first])
    } else {
        (&text[..offsets[first]], offsets[first])
    };
    let mut last = lines.len();
    while last > first + 1 {
        let line = lines[last - 1].trim();
        if line.is_empty() || line.starts_with('#') || line == "..." || line.starts_with("... ") {
            last -= 1;
        } else {
            break;
        }
    }
    let body_end = offsets[last];
    (head, &text[body_start..body_end], &text[body_end..])
}

fn rewrite_json(text: &str, changes: &[Change]) -> Result<(String, FileFix), String> {
    let base = text.as_ptr() as usize;
    let mut out = String::with_capacity(text.len() + 256);
    let mut copied = 0;
    let mut fix = FileFix {
        documents: 0,
        lost_comments: false,
    };
    let stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    for (index, raw) in stream.enumerate() {
        let raw = raw.map_err(|err| format!("it is no longer valid JSON ({err})"))?;
        let document_changes = changes_for(changes, index);
        if document_changes.is_empty() {
            continue;
        }
        let start = raw.get().as_ptr() as usize - base;
        let end = start + raw.get().len();
        let mut value: Value =
            serde_json::from_str(raw.get()).map_err(|err| format!("cannot read it ({err})"))?;
        if value.is_array() {
            // A bare array of objects is audited like a list.
            let wrapped = Value::Object([("items".to_owned(), value)].into_iter().collect());
            let mut wrapped = wrapped;
            apply(&mut wrapped, &document_changes)?;
            value = wrapped["items"].take();
        } else {
            apply(&mut value, &document_changes)?;
        }
        let indent = json_indent(raw.get());
        let mut encoded = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut encoded, formatter);
        serde::Serialize::serialize(&value, &mut serializer)
            .map_err(|err| format!("cannot write JSON ({err})"))?;
        out.push_str(&text[copied..start]);
        out.push_str(&String::from_utf8(encoded).expect("serde_json writes UTF-8"));
        copied = end;
        fix.documents += 1;
    }
    out.push_str(&text[copied..]);
    Ok((out, fix))
}

/// The indentation of a JSON value's second line (what `kubectl -o json` uses is 4
/// spaces; others use 2).
fn json_indent(text: &str) -> String {
    text.lines()
        .nth(1)
        .map(|line| {
            line.chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect::<String>()
        })
        .filter(|indent| !indent.is_empty())
        .unwrap_or_else(|| "  ".to_owned())
}

/// Replaces the file through a temporary file in the same directory, keeping its
/// permissions, so a crash never leaves half a manifest.
/// Replaces `path` with `text` atomically: a temporary file created exclusively, under a
/// random name, in the same directory (never through a name someone else could plant a
/// link at), then renamed over the original. A symbolic link is never written through:
/// the link would be replaced by a file, or the fix would land outside the audited tree.
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let own = std::fs::symlink_metadata(path)?;
    if own.file_type().is_symlink() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is a symbolic link, and --fix does not write through links; run --fix on the file it points to",
        ));
    }
    if !own.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or_else(|| Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(".podguard-fix-")
        .tempfile_in(dir)?;
    temporary.write_all(text.as_bytes())?;
    temporary.as_file().sync_all()?;
    std::fs::set_permissions(temporary.path(), own.permissions())?;
    temporary.persist(path).map_err(|err| err.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(document: usize, item: Option<usize>, mutated: Value) -> Change {
        Change {
            document,
            item,
            mutated,
        }
    }

    #[test]
    fn only_changed_documents_are_edited_and_comments_stay() {
        let text = "# top comment\napiVersion: v1\nkind: ConfigMap # keep me\n---\n# Source: chart/templates/pod.yaml\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p  # kept too\n# trailing comment\n---\nkind: Service\n";
        let (out, fix) = rewrite_yaml(
            text,
            &[change(
                1,
                None,
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}}}),
            )],
        )
        .unwrap();
        assert_eq!(fix.documents, 1);
        assert_eq!(
            out,
            "# top comment\napiVersion: v1\nkind: ConfigMap # keep me\n---\n# Source: chart/templates/pod.yaml\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p  # kept too\n  labels:\n    a: b\n# trailing comment\n---\nkind: Service\n"
        );
    }

    #[test]
    fn list_items_are_replaced_in_place() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: a}\n- kind: Pod\n  metadata: {name: b}\n";
        let (out, _) = rewrite_yaml(
            text,
            &[change(
                0,
                Some(1),
                json!({"kind": "Pod", "metadata": {"name": "b2"}}),
            )],
        )
        .unwrap();
        let back: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(back["items"][0]["metadata"]["name"], "a");
        assert_eq!(back["items"][1]["metadata"]["name"], "b2");
    }

    #[test]
    fn json_documents_keep_their_indentation() {
        let text = "{\n    \"kind\": \"Pod\",\n    \"metadata\": {\"name\": \"a\"}\n}\n";
        let (out, _) = rewrite_json(
            text,
            &[change(
                0,
                None,
                json!({"kind": "Pod", "metadata": {"name": "a", "labels": {}}}),
            )],
        )
        .unwrap();
        assert_eq!(
            out,
            "{\n    \"kind\": \"Pod\",\n    \"metadata\": {\n        \"name\": \"a\",\n        \"labels\": {}\n    }\n}\n"
        );
    }
}
