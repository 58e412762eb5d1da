//! Reading files, directories and stdin into units of work: YAML streams split into
//! documents as they are read, JSON values and the items of lists located by byte offset.
//! Parsing the documents themselves happens in the workers, in parallel.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::model::{InputError, InputName, Origin, UnitBody};
use super::yaml::{self, StreamSplitter};

/// Extensions read when walking a directory.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// The most one input (a file, or stdin) may hold unless `--max-input-bytes` says more.
/// A manifest stream is rarely above a few megabytes; a `kubectl get -A -o yaml` dump of a
/// large cluster can reach a hundred.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Sends every unit of `inputs`, in order, to `send`. `-` is stdin. Errors become
/// [`UnitBody::Error`] units and reading goes on with the next input.
///
/// A directory is walked for regular `.yaml`, `.yml` and `.json` files; symbolic links to
/// files are read, links to directories are not followed (as `kubectl apply -R`), and a
/// link that leads nowhere, or to something that is not a regular file (a FIFO, a device),
/// is an error. Each input is read up to `max_bytes`. An input that holds no document at
/// all is an error too: an empty stdin is what a failed `helm template | podguard audit -`
/// sends.
pub fn read_inputs(
    inputs: &[PathBuf],
    file_done_markers: bool,
    max_bytes: u64,
    send: &mut dyn FnMut(UnitBody) -> bool,
) {
    for input in inputs {
        let mut sent_any = false;
        let mut counting = |unit: UnitBody| {
            sent_any |= matches!(
                unit,
                UnitBody::Yaml { .. }
                    | UnitBody::YamlItem { .. }
                    | UnitBody::Json { .. }
                    | UnitBody::Error(_)
            );
            send(unit)
        };
        let keep_going = if input.as_os_str() == "-" {
            let stdin = std::io::stdin();
            let reader = BufReader::with_capacity(64 * 1024, Capped::new(stdin.lock(), max_bytes));
            read_stream(Arc::new(InputName::Stdin), reader, false, &mut counting)
        } else {
            read_argument(input, file_done_markers, max_bytes, &mut counting)
        };
        if !keep_going {
            return;
        }
        if !sent_any {
            let message = if input.as_os_str() == "-" {
                "stdin was empty: nothing was audited; if a command feeds the pipe (helm template, kubectl kustomize), check that it succeeded".to_owned()
            } else {
                "it holds no YAML or JSON document: nothing was audited; check that it is the file you meant".to_owned()
            };
            let input = if input.as_os_str() == "-" {
                InputName::Stdin.to_string()
            } else {
                input.display().to_string()
            };
            if !send(UnitBody::Error(InputError {
                input,
                line: None,
                message,
            })) {
                return;
            }
        }
    }
}

/// Reads one file or directory argument.
fn read_argument(
    input: &Path,
    file_done_markers: bool,
    max_bytes: u64,
    send: &mut dyn FnMut(UnitBody) -> bool,
) -> bool {
    let error = |input: &Path, message: String| {
        UnitBody::Error(InputError {
            input: input.display().to_string(),
            line: None,
            message,
        })
    };
    let files = match collect_files(input) {
        Ok(files) => files,
        Err(message) => return send(error(input, message)),
    };
    for file in files {
        let path = match file {
            Found::File(path) => path,
            Found::Problem(path, message) => {
                if !send(error(&path, message)) {
                    return false;
                }
                continue;
            }
        };
        let name = Arc::new(InputName::File(path.clone()));
        // Named on the command line, a pipe or a device is read as a stream (`<(helm
        // template ...)` is a pipe); found in a directory, only regular files are.
        let keep_going = match open_for_reading(&path, path == input) {
            Ok(handle) => {
                let json_by_name = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"));
                read_stream(
                    Arc::clone(&name),
                    BufReader::with_capacity(64 * 1024, Capped::new(handle, max_bytes)),
                    json_by_name,
                    send,
                )
            }
            Err(message) => send(error(&path, message)),
        };
        if !keep_going {
            return false;
        }
        if file_done_markers && !send(UnitBody::FileDone(name)) {
            return false;
        }
    }
    true
}

/// Opens a file to read it. Without `streams_allowed`, only a regular file is read: it is
/// opened without blocking (a FIFO would otherwise wait for a writer forever) and checked
/// once open, so a file swapped for something else in between is still refused.
fn open_for_reading(path: &Path, streams_allowed: bool) -> Result<std::fs::File, String> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if !streams_allowed {
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|err| format!("cannot open it: {err}; check the path and its permissions"))?;
    let kind = file
        .metadata()
        .map_err(|err| format!("cannot read it: {err}"))?
        .file_type();
    if kind.is_file() || streams_allowed {
        return Ok(file);
    }
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(format!(
        "it is {what}, not a manifest file; only regular files are read from directories (name it on the command line to read it as a stream)"
    ))
}

/// What walking a directory found.
enum Found {
    /// A file to read.
    File(PathBuf),
    /// An entry that looks like a manifest but cannot be read as one.
    Problem(PathBuf, String),
}

/// The files an argument names: itself, or every `.yaml`/`.yml`/`.json` below a
/// directory, depth first in name order, so runs are reproducible.
fn collect_files(input: &Path) -> Result<Vec<Found>, String> {
    let metadata = std::fs::metadata(input).map_err(|err| {
        format!("cannot read it: {err}; pass an existing file or directory, or - for stdin")
    })?;
    if !metadata.is_dir() {
        return Ok(vec![Found::File(input.to_owned())]);
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

/// Why a directory is not a folder of manifests, when it is the source of some: a Helm
/// chart's templates and a Kustomize directory's patches only become manifests once
/// rendered, and read as they are they are a wall of parse errors or partial objects.
fn rendered_source(dir: &Path) -> Option<String> {
    let has = |name: &str| dir.join(name).is_file();
    let shown = dir.display();
    if has("Chart.yaml") {
        return Some(format!(
            "it is a Helm chart (it holds Chart.yaml), whose templates are not manifests until Helm renders them: run `helm template {shown} | podguard audit -` (add your values with -f)"
        ));
    }
    if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|name| has(name))
    {
        return Some(format!(
            "it is a Kustomize directory (it holds a kustomization file), whose resources and patches only become manifests once built: run `kubectl kustomize {shown} | podguard audit -`"
        ));
    }
    None
}

fn walk(dir: &Path, files: &mut Vec<Found>) -> Result<(), String> {
    if let Some(message) = rendered_source(dir) {
        files.push(Found::Problem(dir.to_owned(), message));
        return Ok(());
    }
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
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
        // The entry itself: a link is judged by what it is, never walked through.
        let Ok(own) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if own.is_dir() {
            // Hidden directories (.git, .terraform) hold no manifests to audit.
            if !name.starts_with('.') {
                walk(&path, files)?;
            }
            continue;
        }
        if !wanted {
            continue;
        }
        if own.file_type().is_symlink() {
            match std::fs::metadata(&path) {
                Err(err) => files.push(Found::Problem(
                    path,
                    format!(
                        "it is a symbolic link that leads nowhere ({err}); fix or remove the link"
                    ),
                )),
                // Directories behind links are not followed (as `kubectl apply -R`): a
                // link can lead out of the tree, or back into it forever.
                Ok(target) if target.is_dir() => {}
                Ok(_) => files.push(Found::File(path)),
            }
            continue;
        }
        files.push(Found::File(path));
    }
    Ok(())
}

/// A reader that fails once more than `limit` bytes have been read from it: an input
/// with no end (`/dev/zero`, a generator) would otherwise be held in memory whole.
struct Capped<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R> Capped<R> {
    fn new(inner: R, limit: u64) -> Capped<R> {
        Capped {
            inner,
            remaining: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            // One more byte tells a stream that ends exactly at the limit from a longer one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    format!(
                        "it is larger than {} bytes (--max-input-bytes); split it into smaller files, or raise the limit",
                        self.limit
                    ),
                )),
            };
        }
        let room = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..room])?;
        self.remaining -= read as u64;
        Ok(read)
    }
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
    if err.kind() == std::io::ErrorKind::FileTooLarge {
        return UnitBody::Error(InputError {
            input: name.to_string(),
            line: None,
            message: err.to_string(),
        });
    }
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
        let helm_source: Option<Arc<str>> = owned.segment.helm_source.map(Arc::from);
        // A list's items go out one by one, each parsed on its own by a worker, as
        // documents are: parsing a large list whole would hold every item's tree at once.
        if let Some(list) = yaml::split_block_list(&owned.text, owned.segment.first_line) {
            let implied = implied_item_type(list.api_version.as_deref(), &list.kind).map(Arc::new);
            let mut text = owned.text;
            text.shrink_to_fit();
            let shared = Arc::new(text);
            for (index, item) in list.items.into_iter().enumerate() {
                let unit = UnitBody::YamlItem {
                    origin: Origin {
                        input: Arc::clone(&name),
                        document,
                        item: Some(index),
                        line: item.content_line,
                        helm_source: helm_source.clone(),
                    },
                    document: Arc::clone(&shared),
                    item,
                    implied_type: implied.clone(),
                };
                if !send(unit) {
                    return false;
                }
            }
            continue;
        }
        let origin = Origin {
            input: Arc::clone(&name),
            document,
            item: None,
            line: content_line,
            helm_source,
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
