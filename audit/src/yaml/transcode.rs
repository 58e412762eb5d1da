//! YAML straight to JSON text from the parser's events, for the documents manifests are
//! made of.

use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle};

use super::{LineIndex, escape};

/// Why a document is left to the full YAML deserializer (serde-saphyr): anchors,
/// aliases, tags, merge keys, complex keys, duplicate keys, scalars whose type YAML
/// resolves in surprising ways (`0755`, `1e3`, `yes`), or a syntax error (whose message
/// serde-saphyr words best).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// What [`transcode_with_lines`] found besides the JSON text.
#[derive(Debug, Default)]
pub struct Transcoded {
    /// Whether the document is a mapping (a Kubernetes object or list).
    pub mapping: bool,
    /// Whether its `kind` names a list (`List`, `PodList`, ...).
    pub list_kind: bool,
    /// File lines of the elements of the root mapping's `items` sequence (a `kind: List`).
    pub item_lines: Vec<usize>,
}

/// Writes one YAML document as JSON text into `out`, straight from the parser's events:
/// no intermediate tree, no second encoding. The result is what serde-saphyr would read
/// into a `serde_json::Value`, for the documents Kubernetes manifests are made of; for
/// anything else it returns [`Unsupported`] and the caller uses serde-saphyr. `Ok(None)`
/// is an empty document. With `lines`, it also records the line of every field (as
/// [`LineIndex::build`] would find them) from the same pass over the text.
pub fn transcode_with_lines(
    text: &str,
    first_line: usize,
    out: &mut Vec<u8>,
    mut lines: Option<&mut LineIndex>,
) -> Result<Option<Transcoded>, Unsupported> {
    enum Frame<'t> {
        Map {
            first: bool,
            expect_key: bool,
            keys: Vec<std::borrow::Cow<'t, str>>,
            /// The key being read is the root mapping's `items`.
            items_next: bool,
            /// The key being read is the root mapping's `kind`.
            kind_next: bool,
        },
        Seq {
            first: bool,
            items: bool,
            next: usize,
        },
    }
    enum Position {
        Root,
        Key,
        Value,
    }
    let mut stack: Vec<Frame> = Vec::new();
    // The JSON pointer of the node being read, and where each open collection's ends.
    let mut path = String::new();
    let mut path_ends: Vec<usize> = Vec::new();
    let mut found = Transcoded::default();
    let mut root_seen = false;
    let mut root_done = false;
    let mut empty = true;
    for event in parser(text) {
        let (event, span) = event.map_err(|_| Unsupported)?;
        let is_node = matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        );
        let mut position = Position::Value;
        let mut value_of_items = false;
        let mut value_of_kind = false;
        let line = span.start.line() + first_line - 1;
        let base = path.len();
        if is_node {
            if root_done {
                return Err(Unsupported);
            }
            empty = false;
            position = match stack.last_mut() {
                None => {
                    root_seen = true;
                    Position::Root
                }
                Some(Frame::Map {
                    first, expect_key, ..
                }) if *expect_key => {
                    if !*first {
                        out.push(b',');
                    }
                    *first = false;
                    *expect_key = false;
                    Position::Key
                }
                Some(Frame::Map {
                    expect_key,
                    items_next,
                    kind_next,
                    keys,
                    ..
                }) => {
                    out.push(b':');
                    *expect_key = true;
                    value_of_items = std::mem::take(items_next);
                    value_of_kind = std::mem::take(kind_next);
                    if lines.is_some() {
                        path.push('/');
                        path.push_str(&escape(keys.last().expect("a key before its value")));
                    }
                    Position::Value
                }
                Some(Frame::Seq { first, items, next }) => {
                    if !*first {
                        out.push(b',');
                    }
                    *first = false;
                    if *items {
                        found.item_lines.push(line);
                    }
                    if let Some(index) = lines.as_deref_mut() {
                        path.push('/');
                        path.push_str(&next.to_string());
                        index.lines.entry(path.clone()).or_insert(line);
                    }
                    *next += 1;
                    Position::Value
                }
            };
        }
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(Unsupported);
                }
                let plain = matches!(style, ScalarStyle::Plain);
                match position {
                    Position::Key => {
                        if plain && (value == "<<" || value.is_empty() || is_special(&value)) {
                            return Err(Unsupported);
                        }
                        let depth = stack.len();
                        let Some(Frame::Map {
                            keys,
                            items_next,
                            kind_next,
                            ..
                        }) = stack.last_mut()
                        else {
                            unreachable!("a key is in a mapping");
                        };
                        if keys.contains(&value) {
                            return Err(Unsupported);
                        }
                        *items_next = depth == 1 && value == "items";
                        *kind_next = depth == 1 && value == "kind";
                        write_json_string(out, &value);
                        if let Some(index) = lines.as_deref_mut() {
                            index
                                .lines
                                .entry(format!("{path}/{}", escape(&value)))
                                .or_insert(line);
                        }
                        keys.push(value);
                    }
                    Position::Root | Position::Value => {
                        if matches!(position, Position::Root) {
                            root_done = true;
                            if plain && matches!(&*value, "" | "~" | "null" | "Null" | "NULL") {
                                return Ok(None);
                            }
                        }
                        if let Some(index) = lines.as_deref_mut() {
                            // A mapping value is already indexed at its key's line; a
                            // sequence item or a root scalar is indexed here.
                            index.lines.entry(path.clone()).or_insert(line);
                        }
                        if value_of_kind {
                            found.list_kind = value.ends_with("List");
                        }
                        if plain {
                            plain_scalar(out, &value)?;
                        } else {
                            write_json_string(out, &value);
                        }
                        path.truncate(base);
                    }
                }
            }
            Event::MappingStart(_, anchor, ref tag) | Event::SequenceStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || matches!(position, Position::Key) {
                    return Err(Unsupported);
                }
                if matches!(event, Event::MappingStart(..)) {
                    if matches!(position, Position::Root) {
                        found.mapping = true;
                    }
                    out.push(b'{');
                    stack.push(Frame::Map {
                        first: true,
                        expect_key: true,
                        keys: Vec::new(),
                        items_next: false,
                        kind_next: false,
                    });
                } else {
                    out.push(b'[');
                    stack.push(Frame::Seq {
                        first: true,
                        items: value_of_items,
                        next: 0,
                    });
                }
                if let Some(index) = lines.as_deref_mut() {
                    index.lines.entry(path.clone()).or_insert(line);
                }
                path_ends.push(base);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                out.push(if matches!(event, Event::MappingEnd) {
                    b'}'
                } else {
                    b']'
                });
                path.truncate(path_ends.pop().unwrap_or(0));
                root_done = stack.is_empty();
            }
            Event::Alias(..) | Event::Anchor(..) | Event::UnresolvedAlias(..) => {
                return Err(Unsupported);
            }
            Event::DocumentStart(..) if root_seen => return Err(Unsupported),
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(Unsupported);
    }
    Ok((!empty).then_some(found))
}

/// A parser for one document. Comments are not data: not emitting them saves the
/// parser capturing their text (serde-saphyr turns the emission on for everyone).
pub(super) fn parser(text: &str) -> Parser<'_, serde_saphyr::granit_parser::StrInput<'_>> {
    let mut options = Options::default();
    options.set_emit_comments(false);
    Parser::new_from_str_with_options(text, options)
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("a string serialises");
}

/// A plain scalar as JSON: the null, boolean and number spellings serde-saphyr reads the
/// same way every YAML reader does; strings; and [`Unsupported`] for the spellings whose
/// type differs between YAML versions and readers.
fn plain_scalar(out: &mut Vec<u8>, text: &str) -> Result<(), Unsupported> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => out.extend_from_slice(b"null"),
        "true" | "True" | "TRUE" => out.extend_from_slice(b"true"),
        "false" | "False" | "FALSE" => out.extend_from_slice(b"false"),
        _ if is_simple_number(text) => out.extend_from_slice(text.as_bytes()),
        _ if is_special(text) => return Err(Unsupported),
        _ => write_json_string(out, text),
    }
    Ok(())
}

/// `0`, `-12`, `3.25`: integers without a sign other than `-`, leading zeros or
/// separators, small enough for an `i64`, and decimals without an exponent.
fn is_simple_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, fraction) = match digits.split_once('.') {
        Some((int, fraction)) => (int, Some(fraction)),
        None => (digits, None),
    };
    let int_ok = !int.is_empty()
        && int.len() <= 17
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    let fraction_ok = fraction
        .is_none_or(|f| !f.is_empty() && f.len() <= 15 && f.bytes().all(|b| b.is_ascii_digit()));
    int_ok && fraction_ok && text != "-0"
}

/// Plain scalars some reader takes for something other than a string: YAML 1.1
/// booleans, other spellings of null and booleans, infinities, and anything made only of
/// characters a number, a timestamp or a sexagesimal can hold (`0755`, `1e3`, `0x1F`,
/// `1_000`, `12:30`, `2024-01-01`). `500m` and `1Gi` are strings to everyone.
fn is_special(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "yes" | "no" | "on" | "off" | "y" | "n" | "true" | "false" | "null" | "~"
    ) {
        return true;
    }
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    let mut chars = text.chars();
    let first = chars.next().unwrap_or(' ');
    let second = chars.next().unwrap_or(' ');
    let numeric_start = first.is_ascii_digit()
        || ("+-.".contains(first) && (second.is_ascii_digit() || second == '.'));
    numeric_start
        && text
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "+-._:xXoObBeEtTzZ ".contains(c))
}
