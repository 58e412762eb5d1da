//! Reading files, directories and stdin into units of work: YAML streams split into
//! documents as they are read, JSON values and the items of lists located by byte offset.
//! Parsing the documents themselves happens in the workers, in parallel.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::model::{InputError, InputName, Origin, UnitBody};
use super::yaml::StreamSplitter;

/// Extensions read when walking a directory.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Sends every unit of `inputs`, in order, to `send`. `-` is stdin. Errors become
/// [`UnitBody::Error`] units and reading goes on with the next input.
pub fn read_inputs(
    inputs: &[PathBuf],
    file_done_markers: bool,
    send: &mut dyn FnMut(UnitBody) -> bool,
) {
    for input in inputs {
        if input.as_os_str() == "-" {
            let stdin = std::io::stdin();
            if !read_stream(Arc::new(InputName::Stdin), stdin.lock(), false, send) {
                return;
            }
            continue;
        }
        let files = match collect_files(input) {
            Ok(files) => files,
            Err(message) => {
                if !send(UnitBody::Error(InputError {
                    input: input.display().to_string(),
                    line: None,
                    message,
                })) {
                    return;
                }
                continue;
            }
        };
        for file in files {
            let name = Arc::new(InputName::File(file.clone()));
            let keep_going = match std::fs::File::open(&file) {
                Ok(handle) => {
                    let json_by_name = file
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
                    read_stream(
                        Arc::clone(&name),
                        BufReader::with_capacity(64 * 1024, handle),
                        json_by_name,
                        send,
                    )
                }
                Err(err) => send(UnitBody::Error(InputError {
                    input: file.display().to_string(),
                    line: None,
                    message: format!("cannot open it: {err}; check the path and its permissions"),
                })),
            };
            if !keep_going {
                return;
            }
            if file_done_markers && !send(UnitBody::FileDone(name)) {
                return;
            }
        }
    }
}

/// The files an argument names: itself, or every `.yaml`/`.yml`/`.json` below a
/// directory, depth first in name order, so runs are reproducible.
fn collect_files(input: &Path) -> Result<Vec<PathBuf>, String> {
    let metadata = std::fs::metadata(input).map_err(|err| {
        format!("cannot read it: {err}; pass an existing file or directory, or - for stdin")
    })?;
    if !metadata.is_dir() {
        return Ok(vec![input.to_owned()]);
    }
    let mut files = Vec::new();
    walk(input, &mut files)?;
    if files.is_empty() {
        return Err(format!(
            "no .yaml, .yml or .json files under {}; pass the directory that holds the manifests",
            input.display()
        ));
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match std::fs::metadata(&path).map(|m| m.is_dir()) {
            // Hidden directories (.git, .terraform) hold no manifests to audit.
            Ok(true) if !name.starts_with('.') => walk(&path, files)?,
            Ok(false) => {
                let wanted = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
                if wanted {
                    files.push(path);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads one stream: JSON (by extension or because it starts with `{` or `[`) is read
/// whole; YAML is split into documents as it is read.
fn read_stream(
    name: Arc<InputName>,
    mut reader: impl BufRead,
    json_by_name: bool,
    send: &mut dyn FnMut(UnitBody) -> bool,
) -> bool {
    let looks_like_json = match sniff_json(&mut reader) {
        Ok(json) => json,
        Err(err) => {
            return send(read_error(&name, &err));
        }
    };
    if json_by_name || looks_like_json {
        let mut text = String::new();
        if let Err(err) = reader.read_to_string(&mut text) {
            return send(read_error(&name, &err));
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
        return send_json(name, text, json_by_name, send);
    }
    send_yaml(name, reader, send)
}

fn read_error(name: &InputName, err: &std::io::Error) -> UnitBody {
    let hint = if err.kind() == std::io::ErrorKind::InvalidData {
        "it is not UTF-8 text; save it as UTF-8"
    } else {
        "check that it is readable"
    };
    UnitBody::Error(InputError {
        input: name.to_string(),
        line: None,
        message: format!("cannot read it: {err}; {hint}"),
    })
}

/// Whether the first character that is not white space (or a byte-order mark) opens a
/// JSON object or array.
fn sniff_json(reader: &mut impl BufRead) -> std::io::Result<bool> {
    let buffer = reader.fill_buf()?;
    let text = buffer.strip_prefix("\u{feff}".as_bytes()).unwrap_or(buffer);
    Ok(text
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'['))
}

fn send_yaml(
    name: Arc<InputName>,
    reader: impl BufRead,
    send: &mut dyn FnMut(UnitBody) -> bool,
) -> bool {
    for (document, segment) in StreamSplitter::new(reader).enumerate() {
        let owned = match segment {
            Ok(owned) => owned,
            Err(err) => return send(read_error(&name, &err)),
        };
        let Some(content_line) = owned.segment.content_line else {
            continue;
        };
        let origin = Origin {
            input: Arc::clone(&name),
            document,
            item: None,
            line: content_line,
            helm_source: owned.segment.helm_source.map(Arc::from),
        };
        let unit = UnitBody::Yaml {
            origin,
            text: owned.text,
            first_line: owned.segment.first_line,
        };
        if !send(unit) {
            return false;
        }
    }
    true
}

/// The parts of a JSON value that tell whether it is a list, and its items' text.
#[derive(Deserialize)]
pub struct ListHead<'a> {
    /// `apiVersion`.
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    /// `kind`: `List`, or a typed list such as `PodList`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The items, unparsed.
    #[serde(default, borrow)]
    pub items: Option<Vec<&'a RawValue>>,
}

/// Counts lines up to byte offsets that only grow.
struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: usize) -> usize {
        self.line += self.text.as_bytes()[self.offset..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.offset = offset;
        self.line
    }
}

/// `apiVersion` and `kind` of the items of a typed list: `DeploymentList` in `apps/v1`
/// holds `apps/v1` `Deployment`s.
pub fn implied_item_type(api_version: Option<&str>, kind: &str) -> Option<(String, String)> {
    let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty())?;
    Some((api_version?.to_owned(), item_kind.to_owned()))
}

/// Whether a `kind` names a list (`List`, or a typed list such as `PodList`).
pub fn is_list_kind(kind: &str) -> bool {
    kind.ends_with("List")
}

fn send_json(
    name: Arc<InputName>,
    text: String,
    strict: bool,
    send: &mut dyn FnMut(UnitBody) -> bool,
) -> bool {
    struct Located {
        range: std::ops::Range<usize>,
        line: usize,
        document: usize,
        item: Option<usize>,
        implied: Option<Arc<(String, String)>>,
    }
    let mut located = Vec::new();
    let mut error = None;
    {
        let base = text.as_ptr() as usize;
        let offset_of = |raw: &RawValue| raw.get().as_ptr() as usize - base;
        let mut lines = LineCounter {
            text: &text,
            offset: 0,
            line: 1,
        };
        let stream = serde_json::Deserializer::from_str(&text).into_iter::<&RawValue>();
        for (document, value) in stream.enumerate() {
            let raw = match value {
                Ok(raw) => raw,
                Err(err) => {
                    error = Some(err);
                    break;
                }
            };
            let start = offset_of(raw);
            let whole = Located {
                range: start..start + raw.get().len(),
                line: lines.line_at(start),
                document,
                item: None,
                implied: None,
            };
            let (items, implied) = if raw.get().starts_with('[') {
                (serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok(), None)
            } else {
                match serde_json::from_str::<ListHead>(raw.get()) {
                    Ok(ListHead {
                        api_version,
                        kind: Some(kind),
                        items: Some(items),
                    }) if is_list_kind(&kind) => (
                        Some(items),
                        implied_item_type(api_version.as_deref(), &kind)
                            .filter(|(_, k)| !k.is_empty())
                            .map(Arc::new),
                    ),
                    _ => (None, None),
                }
            };
            match items {
                Some(items) => {
                    for (index, item) in items.into_iter().enumerate() {
                        let start = offset_of(item);
                        located.push(Located {
                            range: start..start + item.get().len(),
                            line: lines.line_at(start),
                            document,
                            item: Some(index),
                            implied: implied.clone(),
                        });
                    }
                }
                None => located.push(whole),
            }
        }
    }
    if error.is_some()
        && !strict
        && located.is_empty()
        && serde_saphyr::from_multiple::<serde::de::IgnoredAny>(&text).is_ok()
    {
        // Starts like JSON but is not: YAML flow style (`{a: 1}`) is YAML, not JSON.
        return send_yaml(name, std::io::Cursor::new(text.into_bytes()), send);
    }
    let shared: Arc<str> = Arc::from(text);
    for found in located {
        let unit = UnitBody::Json {
            origin: Origin {
                input: Arc::clone(&name),
                document: found.document,
                item: found.item,
                line: found.line,
                helm_source: None,
            },
            text: Arc::clone(&shared),
            range: found.range,
            implied_type: found.implied,
        };
        if !send(unit) {
            return false;
        }
    }
    if let Some(err) = error {
        return send(UnitBody::Error(InputError {
            input: name.to_string(),
            line: Some(err.line()),
            message: format!(
                "not valid JSON ({err}); the documents after this point were not read: fix the JSON"
            ),
        }));
    }
    true
}
