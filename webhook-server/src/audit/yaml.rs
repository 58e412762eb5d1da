//! YAML streams the way audit needs them: split into documents by hand, so every
//! document's first line is known and a broken document does not take the rest of the
//! stream with it; a block-style emitter for rewritten documents and fix diffs; and an
//! index from field paths to the lines they are written on.

use std::collections::HashMap;
use std::io::BufRead;
use std::ops::Range;

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle};

/// One document of a stream: the lines from its `---` marker (or the start of the
/// stream) up to the next marker. Concatenating every segment gives back the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Byte range in the stream.
    pub range: Range<usize>,
    /// 1-based line of the segment's first line.
    pub first_line: usize,
    /// 1-based line where the document's content starts (after leading comments and a
    /// bare `---`); `None` when the segment holds no content at all.
    pub content_line: Option<usize>,
    /// The last `# Source: PATH` comment before the content, as Helm writes it.
    pub helm_source: Option<String>,
}

/// The kind of a line, for splitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// `---` (alone, with a comment, or followed by inline content).
    Start { inline_content: bool },
    /// `...`: the document ends after this line.
    End,
    /// Blank or a comment.
    Trivia,
    /// Anything else.
    Content,
}

fn classify(line: &str) -> LineKind {
    let line = line.trim_end_matches(['\n', '\r']);
    // Markers are only markers at column 0 followed by white space or the end of the
    // line (YAML 1.2, 9.1.4); `---foo` is a plain scalar.
    let marker_rest = |marker: &str| {
        line.strip_prefix(marker)
            .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    if let Some(rest) = marker_rest("---") {
        let rest = rest.trim();
        return LineKind::Start {
            inline_content: !rest.is_empty() && !rest.starts_with('#'),
        };
    }
    if marker_rest("...").is_some() {
        return LineKind::End;
    }
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        LineKind::Trivia
    } else {
        LineKind::Content
    }
}

fn helm_source(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix('#')?
        .trim_start()
        .strip_prefix("Source:")
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Accumulates lines into segments; shared by the in-memory and the streaming splitter so
/// both cut a stream at the same places.
#[derive(Debug, Default)]
struct Builder {
    start: usize,
    first_line: usize,
    content_line: Option<usize>,
    helm_source: Option<String>,
    lines: usize,
    /// Whether the current segment already holds at least one line.
    open: bool,
    /// Set after `...`: the next line starts a new segment.
    ended: bool,
}

impl Builder {
    /// Feeds one line (with its newline) at byte `offset`; returns the segment this line
    /// closed, if any.
    fn push(&mut self, line: &str, offset: usize) -> Option<Segment> {
        self.lines += 1;
        let kind = classify(line);
        let mut closed = None;
        if self.open && (self.ended || matches!(kind, LineKind::Start { .. })) {
            closed = Some(self.take(offset));
        }
        if !self.open {
            self.open = true;
            self.start = offset;
            self.first_line = self.lines;
        }
        match kind {
            LineKind::Start { inline_content } => {
                if inline_content {
                    self.content_line = Some(self.lines);
                }
            }
            LineKind::End => self.ended = true,
            LineKind::Trivia => {
                if self.content_line.is_none()
                    && let Some(source) = helm_source(line)
                {
                    self.helm_source = Some(source.to_owned());
                }
            }
            LineKind::Content => {
                if self.content_line.is_none() {
                    self.content_line = Some(self.lines);
                }
            }
        }
        closed
    }

    fn take(&mut self, end: usize) -> Segment {
        let segment = Segment {
            range: self.start..end,
            first_line: self.first_line,
            content_line: self.content_line.take(),
            helm_source: self.helm_source.take(),
        };
        self.open = false;
        self.ended = false;
        segment
    }

    fn finish(&mut self, end: usize) -> Option<Segment> {
        self.open.then(|| self.take(end))
    }
}

/// Splits a whole stream into segments (with empty ones, so indices are stable).
pub fn split(text: &str) -> Vec<Segment> {
    let mut builder = Builder::default();
    let mut segments = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        segments.extend(builder.push(line, offset));
        offset += line.len();
    }
    segments.extend(builder.finish(offset));
    segments
}

/// A segment read from a stream, with its text.
#[derive(Debug)]
pub struct OwnedSegment {
    /// Where it is.
    pub segment: Segment,
    /// Its text (the lines of `segment.range`).
    pub text: String,
}

/// Splits a stream as it is read, holding one document at a time: memory stays flat
/// however long the stream is. Yields the same segments, in the same order, as [`split`].
pub struct StreamSplitter<R> {
    reader: R,
    builder: Builder,
    offset: usize,
    current: String,
    line: Vec<u8>,
    done: bool,
}

impl<R: BufRead> StreamSplitter<R> {
    /// Reads `reader` lazily.
    pub fn new(reader: R) -> Self {
        StreamSplitter {
            reader,
            builder: Builder::default(),
            offset: 0,
            current: String::new(),
            line: Vec::new(),
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for StreamSplitter<R> {
    type Item = std::io::Result<OwnedSegment>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
                Ok(0) => {
                    self.done = true;
                    let segment = self.builder.finish(self.offset)?;
                    let text = std::mem::take(&mut self.current);
                    return Some(Ok(OwnedSegment { segment, text }));
                }
                Ok(_) => {
                    // A line that is not UTF-8 is kept lossily: the document it is in then
                    // fails to parse with a message naming its line, and the rest goes on.
                    let mut line = String::from_utf8_lossy(&self.line).into_owned();
                    if self.offset == 0 && line.starts_with('\u{feff}') {
                        line.drain(..'\u{feff}'.len_utf8());
                    }
                    let closed = self.builder.push(&line, self.offset);
                    self.offset += self.line.len();
                    let result = closed.map(|segment| OwnedSegment {
                        segment,
                        text: std::mem::replace(&mut self.current, line.clone()),
                    });
                    if result.is_none() {
                        self.current.push_str(&line);
                    }
                    if result.is_some() {
                        return result.map(Ok);
                    }
                }
            }
        }
    }
}

/// One item of a list document, to be cut out as a document of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// The bytes of its lines in the list document.
    pub range: std::ops::Range<usize>,
    /// The columns its lines are indented by (the sequence's indentation and `- `).
    pub dedent: usize,
    /// The file line of its first line.
    pub first_line: usize,
    /// The file line of its first content.
    pub content_line: usize,
}

impl ListItem {
    /// The item's YAML, dedented to stand alone, one line per line of the original so
    /// field lines map back to the file.
    pub fn text(&self, document: &str) -> String {
        let mut text = String::with_capacity(self.range.len());
        for (index, line) in document[self.range.clone()]
            .split_inclusive('\n')
            .enumerate()
        {
            let kept = line.get(self.dedent..).unwrap_or("");
            let indented = line.len() - line.trim_start_matches(' ').len() >= self.dedent;
            let blank_or_comment = kept.trim().is_empty() || kept.trim_start().starts_with('#');
            // The `- ` line holds the item's first key unless the item starts below it; a
            // line not indented into the item (a comment at column 0) stays a line, empty.
            let keep = if index == 0 {
                !blank_or_comment
            } else {
                indented
            };
            if keep {
                text.push_str(kept);
            } else {
                text.push('\n');
            }
        }
        text
    }
}

/// A list document split into its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitList {
    /// The list's `apiVersion`.
    pub api_version: Option<String>,
    /// The list's `kind` (`List`, `PodList`, ...).
    pub kind: String,
    /// The items, in order.
    pub items: Vec<ListItem>,
}

/// Splits a list document written in block style, as kubectl prints `kind: List`, into
/// its items, so each is parsed on its own: parsing a large list whole would hold the tree
/// of every item at once. `None` when the document is not such a list (another kind, a
/// flow-style or empty `items`, an indentation this reader does not follow); it is then
/// judged whole. The list's `kind` is often printed after its items, so the whole
/// document is looked at before anything is split.
pub fn split_block_list(text: &str, first_line: usize) -> Option<SplitList> {
    let items_key = |line: &str| {
        line.strip_prefix("items:").is_some_and(|rest| {
            let rest = rest.trim();
            rest.is_empty() || rest.starts_with('#')
        })
    };
    if !text.starts_with("items:") && !text.contains("\nitems:") {
        return None;
    }
    let mut offsets = Vec::new();
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offsets.push(offset);
        lines.push(line);
        offset += line.len();
    }
    let start = lines.iter().position(|line| items_key(line))?;
    let is_trivia = |line: &str| {
        let trimmed = line.trim();
        trimmed.is_empty() || trimmed.starts_with('#')
    };
    let indent_of = |line: &str| line.len() - line.trim_start_matches(' ').len();
    let entry = |line: &str, indent: usize| {
        let rest = line[indent..].trim_end_matches(['\n', '\r']);
        rest == "-" || rest.starts_with("- ")
    };
    let first_entry = lines[start + 1..].iter().position(|l| !is_trivia(l))? + start + 1;
    let indent = indent_of(lines[first_entry]);
    if !entry(lines[first_entry], indent) {
        return None;
    }

    let mut items: Vec<ListItem> = Vec::new();
    let mut end = lines.len();
    for (index, line) in lines.iter().enumerate().skip(first_entry) {
        let file_line = first_line + index;
        let line_end = offsets[index] + line.len();
        if is_trivia(line) {
            if let Some(item) = items.last_mut() {
                item.range.end = line_end;
            }
            continue;
        }
        let own = indent_of(line);
        if own == indent && entry(line, indent) {
            // `- key: value` starts the item on this line; a bare `-` on the next.
            let rest = line.get(indent + 2..).unwrap_or("\n");
            let inline = !rest.trim().is_empty() && !rest.trim_start().starts_with('#');
            if rest
                .trim_start()
                .starts_with(['-', '[', '{', '&', '*', '!', '|', '>'])
            {
                return None;
            }
            items.push(ListItem {
                range: offsets[index]..line_end,
                dedent: indent + 2,
                first_line: file_line,
                content_line: if inline { file_line } else { file_line + 1 },
            });
        } else if own >= indent + 2 {
            items.last_mut()?.range.end = line_end;
        } else if own <= indent {
            end = index;
            break;
        } else {
            return None;
        }
    }
    let mut head = String::new();
    for line in lines[..start].iter().chain(&lines[end..]) {
        head.push_str(line);
    }

    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default, rename = "apiVersion")]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
    }
    let head: Head = serde_saphyr::from_str(&head).ok()?;
    let kind = head.kind.filter(|kind| kind.ends_with("List"))?;
    Some(SplitList {
        api_version: head.api_version,
        kind,
        items,
    })
}

/// How a document writes nested sequences, so a rewritten document keeps its look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Spaces per level.
    pub indent: usize,
    /// `key:\n  - item` (true) or `key:\n- item` (false, as kubectl and kustomize print).
    pub indent_sequences: bool,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            indent: 2,
            indent_sequences: false,
        }
    }
}

impl Style {
    /// Guesses the style from a document's text: the first nested mapping gives the
    /// indentation, the first sequence under a key whether sequences are indented.
    pub fn detect(text: &str) -> Style {
        let mut style = Style::default();
        let mut found_indent = false;
        let mut found_sequence = false;
        let lines: Vec<(usize, &str)> = text
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with('#') && classify(l) == LineKind::Content
            })
            .map(|l| {
                (
                    l.len() - l.trim_start_matches(' ').len(),
                    l.trim_start_matches(' '),
                )
            })
            .collect();
        for pair in lines.windows(2) {
            let ((indent, line), (next_indent, next)) = (pair[0], pair[1]);
            if !line.trim_end().ends_with(':') {
                continue;
            }
            if next.starts_with("- ") || next == "-" {
                if !found_sequence {
                    found_sequence = true;
                    style.indent_sequences = next_indent > indent;
                }
            } else if !found_indent && next_indent > indent {
                found_indent = true;
                style.indent = (next_indent - indent).clamp(1, 8);
            }
            if found_indent && found_sequence {
                break;
            }
        }
        style
    }
}

/// Writes `value` as a block-style YAML document (no `---`), ending with a newline.
pub fn emit(value: &Value, style: Style) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => emit_map(&mut out, map, 0, style),
        Value::Array(items) if !items.is_empty() => emit_seq(&mut out, items, 0, style),
        scalar => {
            emit_flow(&mut out, scalar);
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn emit_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize, style: Style) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a mapping inside a sequence item follows the `- ` directly.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        emit_string(out, key);
        out.push(':');
        emit_value_after_key(out, value, indent, style);
    }
}

fn emit_value_after_key(out: &mut String, value: &Value, indent: usize, style: Style) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            emit_map(out, map, indent + style.indent, style);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            let inner = if style.indent_sequences {
                indent + style.indent
            } else {
                indent
            };
            emit_seq(out, items, inner, style);
        }
        Value::String(text) if is_block_candidate(text) => {
            out.push(' ');
            emit_block_string(out, text, indent + style.indent);
        }
        scalar => {
            out.push(' ');
            emit_flow(out, scalar);
            out.push('\n');
        }
    }
}

fn emit_seq(out: &mut String, items: &[Value], indent: usize, style: Style) {
    for item in items {
        pad(out, indent);
        out.push_str("- ");
        match item {
            // Entries of a mapping in a sequence sit two columns in, under the first key.
            Value::Object(map) if !map.is_empty() => emit_map(out, map, indent + 2, style),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                emit_seq(out, inner, indent + 2, style);
            }
            Value::String(text) if is_block_candidate(text) => {
                emit_block_string(out, text, indent + 2);
            }
            scalar => {
                emit_flow(out, scalar);
                out.push('\n');
            }
        }
    }
}

fn emit_flow(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => emit_string(out, s),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Multi-line text reads best as a literal block, when a literal block can carry it
/// exactly (no tabs or trailing spaces the block rules would blur, no leading spaces on
/// the first line, which would be taken for indentation).
fn is_block_candidate(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\n'])
        && text
            .chars()
            .all(|c| c == '\n' || (!c.is_control() && c != '\u{feff}'))
        && text.split('\n').all(|line| !line.ends_with(' '))
}

fn emit_block_string(out: &mut String, text: &str, indent: usize) {
    let trailing = text.len() - text.trim_end_matches('\n').len();
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    out.push('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn emit_string(out: &mut String, text: &str) {
    if is_plain_safe(text) {
        out.push_str(text);
    } else if text.chars().all(|c| !c.is_control() && c != '\u{feff}') {
        out.push('\'');
        out.push_str(&text.replace('\'', "''"));
        out.push('\'');
    } else {
        // JSON string escapes are valid YAML double-quoted escapes.
        out.push_str(&serde_json::to_string(text).expect("a string serialises"));
    }
}

/// Whether a string can be written unquoted and read back as the same string, by a YAML
/// 1.2 reader and by the YAML 1.1 readers Kubernetes tooling still uses (where `yes`,
/// `on` and `0755` are not strings).
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if text != text.trim() {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if text.contains(": ")
        || text.contains(" #")
        || text.ends_with(':')
        || text.chars().any(|c| c.is_control() || c == '\u{feff}')
    {
        return false;
    }
    if matches!(
        text.to_ascii_lowercase().as_str(),
        "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) {
        return false;
    }
    // Anything that might read as a number, a sexagesimal or a timestamp is quoted:
    // `1e3`, `0x1F`, `0755`, `1_000`, `12:30`, `2024-01-01`, `.5`, `.inf`.
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let numeric_start = unsigned.starts_with(|c: char| c.is_ascii_digit())
        || (unsigned.starts_with('.')
            && unsigned[1..].starts_with(|c: char| c.is_ascii_digit() || "iInN".contains(c)));
    if numeric_start
        && unsigned
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "_:.+-xXoOT ".contains(c) || "nNaIfF".contains(c))
    {
        return false;
    }
    true
}

/// Why a document is left to the full YAML deserializer (serde-saphyr): anchors,
/// aliases, tags, merge keys, complex keys, duplicate keys, scalars whose type YAML
/// resolves in surprising ways (`0755`, `1e3`, `yes`), or a syntax error (whose message
/// serde-saphyr words best).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// What [`transcode`] found besides the JSON text.
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
/// is an empty document.
pub fn transcode(
    text: &str,
    first_line: usize,
    out: &mut Vec<u8>,
) -> Result<Option<Transcoded>, Unsupported> {
    transcode_with_lines(text, first_line, out, None)
}

/// [`transcode`], also recording the line of every field (as [`LineIndex::build`] would
/// find them) from the same pass over the text.
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
fn parser(text: &str) -> Parser<'_, serde_saphyr::granit_parser::StrInput<'_>> {
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

/// Lines on which the fields of a document are written, keyed by JSON pointer
/// (`/spec/template/spec/containers/0/securityContext`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// Indexes `text` (YAML or JSON), whose first line is line `first_line` of its file.
    /// A document the parser refuses yields an empty index.
    pub fn build(text: &str, first_line: usize) -> LineIndex {
        enum Frame {
            Map {
                key: Option<String>,
                expect_key: bool,
            },
            Seq {
                next: usize,
            },
        }
        let mut lines = HashMap::new();
        let mut stack: Vec<(String, Frame)> = Vec::new();
        let mut root_seen = false;
        let to_file_line = |line: usize| line + first_line - 1;
        for event in parser(text) {
            let Ok((event, span)) = event else {
                break;
            };
            let line = to_file_line(span.start.line());
            // The pointer of the node this event starts, and whether it is a map key.
            let node_path = |stack: &mut Vec<(String, Frame)>| -> Option<(String, bool)> {
                match stack.last_mut() {
                    None => Some((String::new(), false)),
                    Some((path, Frame::Map { key, expect_key })) => {
                        if *expect_key {
                            *expect_key = false;
                            Some((path.clone(), true))
                        } else {
                            *expect_key = true;
                            let key = key.take().unwrap_or_default();
                            Some((format!("{path}/{}", escape(&key)), false))
                        }
                    }
                    Some((path, Frame::Seq { next })) => {
                        let pointer = format!("{path}/{next}");
                        *next += 1;
                        Some((pointer, false))
                    }
                }
            };
            match event {
                Event::Scalar(value, ..) => {
                    let Some((path, is_key)) = node_path(&mut stack) else {
                        continue;
                    };
                    if is_key {
                        let pointer = format!("{path}/{}", escape(&value));
                        lines.entry(pointer).or_insert(line);
                        if let Some((_, Frame::Map { key, .. })) = stack.last_mut() {
                            *key = Some(value.into_owned());
                        }
                    } else {
                        lines.entry(path).or_insert(line);
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    if stack.is_empty() && root_seen {
                        break;
                    }
                    root_seen = true;
                    let is_map = matches!(event, Event::MappingStart(..));
                    let Some((path, is_key)) = node_path(&mut stack) else {
                        continue;
                    };
                    if is_key {
                        // A complex key: nothing podguard reports on; index nothing below.
                        break;
                    }
                    lines.entry(path.clone()).or_insert(line);
                    let frame = if is_map {
                        Frame::Map {
                            key: None,
                            expect_key: true,
                        }
                    } else {
                        Frame::Seq { next: 0 }
                    };
                    stack.push((path, frame));
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::Alias(..) => {
                    let _ = node_path(&mut stack);
                }
                _ => {}
            }
        }
        LineIndex { lines }
    }

    /// The line of the deepest field of `pointer` that is written in the document: a
    /// missing `securityContext.runAsNonRoot` points at `securityContext`, or at the
    /// container when that is missing too.
    pub fn line_of(&self, pointer: &str) -> Option<usize> {
        let mut pointer = pointer;
        loop {
            if let Some(line) = self.lines.get(pointer) {
                return Some(*line);
            }
            let cut = pointer.rfind('/')?;
            pointer = &pointer[..cut];
        }
    }
}

/// RFC 6901 escaping of one pointer step.
pub fn escape(step: &str) -> String {
    step.replace('~', "~0").replace('/', "~1")
}

/// Turns a field path as messages print it (`spec.containers[0].securityContext`,
/// `metadata.annotations["prometheus.io/port"]`) into a JSON pointer.
pub fn pointer_of_field(field: &str) -> String {
    let mut pointer = String::new();
    let bytes = field.as_bytes();
    let mut i = 0;
    let mut key = String::new();
    let flush = |key: &mut String, pointer: &mut String| {
        if !key.is_empty() {
            pointer.push('/');
            pointer.push_str(&escape(key));
            key.clear();
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                flush(&mut key, &mut pointer);
                i += 1;
            }
            b'[' => {
                flush(&mut key, &mut pointer);
                if bytes.get(i + 1) == Some(&b'"') {
                    // A quoted key, written with Rust's debug escapes (which JSON reads).
                    let mut j = i + 2;
                    while j < bytes.len() && bytes[j] != b'"' {
                        j += if bytes[j] == b'\\' { 2 } else { 1 };
                    }
                    let quoted = &field[i + 1..(j + 1).min(field.len())];
                    let text: String = serde_json::from_str(quoted)
                        .unwrap_or_else(|_| quoted.trim_matches('"').to_owned());
                    pointer.push('/');
                    pointer.push_str(&escape(&text));
                    i = j + 2;
                } else {
                    let end = field[i..].find(']').map_or(field.len(), |e| i + e);
                    pointer.push('/');
                    pointer.push_str(&field[i + 1..end]);
                    i = end + 1;
                }
            }
            _ => {
                let end = field[i..].find(['.', '[']).map_or(field.len(), |e| i + e);
                key.push_str(&field[i..end]);
                i = end;
            }
        }
    }
    flush(&mut key, &mut pointer);
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn split_keeps_every_byte_and_finds_content_lines() {
        let text = "# leading\n---\n# Source: chart/templates/a.yaml\napiVersion: v1\nkind: A\n---\n---\nkind: B\n...\n# after end\nkind: C\n";
        let segments = split(text);
        let joined: String = segments.iter().map(|s| &text[s.range.clone()]).collect();
        assert_eq!(joined, text);
        let content: Vec<Option<usize>> = segments.iter().map(|s| s.content_line).collect();
        assert_eq!(content, vec![None, Some(4), None, Some(8), Some(11)]);
        assert_eq!(
            segments[1].helm_source.as_deref(),
            Some("chart/templates/a.yaml")
        );
    }

    #[test]
    fn transcoding_indexes_the_lines_the_slow_index_finds() {
        // Found by fuzzing (audit_yaml): a document that is a bare scalar, as an empty Helm
        // template can leave, was indexed by LineIndex::build but not by transcode.
        for (text, first_line) in [
            (
                "# Source: shop/templates/empty.yaml\n+ (rendered nothing)\n",
                17,
            ),
            ("args:\n  - wget\n  - shop:80\nkind: Pod\n", 1),
        ] {
            let mut json = Vec::new();
            let mut lines = LineIndex::default();
            transcode_with_lines(text, first_line, &mut json, Some(&mut lines))
                .expect("plain YAML")
                .expect("a document");
            assert_eq!(lines, LineIndex::build(text, first_line), "{text}");
        }
    }

    #[test]
    fn streaming_split_matches_in_memory_split() {
        let text = "a: 1\n---\nb: 2\n--- {c: 3}\n---foo: 4\n...\nd: 5";
        let streamed: Vec<OwnedSegment> = StreamSplitter::new(text.as_bytes())
            .map(Result::unwrap)
            .collect();
        let split = split(text);
        assert_eq!(
            streamed
                .iter()
                .map(|s| s.segment.clone())
                .collect::<Vec<_>>(),
            split
        );
        for owned in &streamed {
            assert_eq!(owned.text, &text[owned.segment.range.clone()]);
        }
        assert_eq!(split[2].content_line, Some(4), "inline content on ---");
    }

    #[test]
    fn emitted_yaml_reads_back_identically() {
        let value = json!({
            "apiVersion": "apps/v1",
            "metadata": {"name": "x", "annotations": {"prometheus.io/scrape": "true", "a": "yes", "b": "0755", "c": "1e3", "d": "", "e": "- x", "f": "a: b", "g": "it's", "h": "tab\there", "i": "12:30", "j": "2024-01-01", "k": "500m", "l": "1Gi", "m": ".5", "n": "~", "o": "null", "p": " lead"}},
            "spec": {"replicas": 3, "ratio": 1.5, "paused": false, "nothing": null, "empty": {}, "none": [],
                "containers": [{"name": "app", "args": ["--a", "multi\nline\n", "x\ny"], "env": [{"name": "A", "value": "1"}]}],
                "matrix": [[1, 2], []]}
        });
        for style in [
            Style::default(),
            Style {
                indent: 4,
                indent_sequences: true,
            },
        ] {
            let text = emit(&value, style);
            let back: Value = serde_saphyr::from_str(&text).unwrap();
            assert_eq!(back, value, "emitted:\n{text}");
        }
    }

    #[test]
    fn style_detection() {
        let kubectl = "spec:\n  containers:\n  - name: a\n";
        assert_eq!(
            Style::detect(kubectl),
            Style {
                indent: 2,
                indent_sequences: false
            }
        );
        let indented = "spec:\n    containers:\n        - name: a\n";
        assert_eq!(
            Style::detect(indented),
            Style {
                indent: 4,
                indent_sequences: true
            }
        );
    }

    #[test]
    fn line_index_finds_the_deepest_written_field() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  annotations:\n    prometheus.io/port: \"80\"\nspec:\n  containers:\n  - name: app\n    securityContext:\n      privileged: true\n";
        let index = LineIndex::build(text, 10);
        assert_eq!(
            index.line_of(&pointer_of_field(
                "spec.containers[0].securityContext.runAsNonRoot"
            )),
            Some(19)
        );
        assert_eq!(
            index.line_of(&pointer_of_field(
                "spec.containers[0].securityContext.privileged"
            )),
            Some(20)
        );
        assert_eq!(
            index.line_of(&pointer_of_field(
                "metadata.annotations[\"prometheus.io/port\"]"
            )),
            Some(15)
        );
        assert_eq!(index.line_of("/spec/initContainers/0"), Some(16));
    }

    /// What serde-saphyr reads, for comparison.
    fn saphyr(text: &str) -> Option<Value> {
        serde_saphyr::from_str(text).ok()
    }

    fn transcoded(text: &str) -> Result<Option<Value>, Unsupported> {
        let mut out = Vec::new();
        transcode(text, 1, &mut out)
            .map(|found| found.map(|_| serde_json::from_slice(&out).expect("valid JSON")))
    }

    #[test]
    fn transcoding_reads_as_serde_saphyr_does() {
        let documents = [
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web, tier: \"1\"}\nspec:\n  replicas: 3\n  paused: false\n  ratio: 0.25\n  neg: -4\n  zero: 0\n  nothing:\n  tilde: ~\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        args: [\"--port\", \"80\", -v]\n        resources:\n          limits: {cpu: 500m, memory: 128Mi}\n        command:\n        - sh\n        - -c\n        - |\n          echo hi\n          exit 0\n        env:\n        - {name: A, value: 'it''s'}\n        - name: B\n          value: >-\n            folded\n            text\n",
            "# comment only before\n---\nkind: List\nitems:\n- a: 1\n- b: [x, {c: d}]\n",
            "--- {a: 1, b: [true, null, \"x\"]}\n",
            "key: \"esc\\u00e9\\n\\ttab\"\nunicode: héllo\nurl: http://x/y#z\npath: ./run.sh\n",
        ];
        for text in documents {
            assert_eq!(transcoded(text).unwrap(), saphyr(text), "{text}");
        }
        assert_eq!(transcoded("# only a comment\n").unwrap(), None);
        assert_eq!(transcoded("---\n~\n").unwrap(), None);
    }

    #[test]
    fn transcoding_leaves_the_unusual_to_serde_saphyr() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: {b: 1}\nc:\n  <<: {d: 2}\n",
            "a: 1\na: 2\n",
            "? [complex]\n: key\n",
            "a: 0755\n",
            "a: 1e3\n",
            "a: yes\n",
            "a: On\n",
            "a: .inf\n",
            "a: 1_000\n",
            "a: 12:30\n",
            "a: 2024-01-01\n",
            "a: +1\n",
            "a: 007\n",
            "a: [1, 2\n",
        ] {
            assert_eq!(transcoded(text), Err(Unsupported), "{text}");
        }
    }

    #[test]
    fn transcoding_records_the_lines_line_index_finds() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata:\n    name: a\n    annotations: {\"prometheus.io/port\": \"80\"}\n  spec:\n    containers:\n    - name: app\n      securityContext:\n        privileged: true\n      args:\n      - x\n";
        let mut index = LineIndex::default();
        transcode_with_lines(text, 7, &mut Vec::new(), Some(&mut index)).unwrap();
        let built = LineIndex::build(text, 7);
        assert_eq!(index.lines, built.lines);
        assert_eq!(
            index.line_of("/items/0/spec/containers/0/securityContext/runAsNonRoot"),
            Some(17)
        );
    }

    #[test]
    fn block_lists_split_into_items_that_stand_alone() {
        let text = "---\napiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: a\n  spec:\n    containers:\n    - name: app\n      args: |\n        line one\n\n        line two\n# a comment between items\n-\n  kind: Service\n  metadata: {name: b}\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";
        let split = split_block_list(text, 10).expect("a block list");
        assert_eq!(split.kind, "List");
        assert_eq!(split.api_version.as_deref(), Some("v1"));
        assert_eq!(split.items.len(), 2);
        let (a, b) = (&split.items[0], &split.items[1]);
        assert_eq!((a.first_line, a.content_line), (13, 13));
        assert_eq!((b.first_line, b.content_line), (25, 26));
        let pod: serde_json::Value = serde_saphyr::from_str(&a.text(text)).unwrap();
        assert_eq!(pod["metadata"]["name"], "a");
        assert_eq!(
            pod["spec"]["containers"][0]["args"],
            "line one\n\nline two\n"
        );
        let service: serde_json::Value = serde_saphyr::from_str(&b.text(text)).unwrap();
        assert_eq!(service["metadata"]["name"], "b");
        // Each item keeps one text line per file line, so field lines map back.
        assert_eq!(a.text(text).lines().count(), 12);

        // Indented sequences (`items:\n  - a: 1`), typed lists.
        let indented =
            "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n  - metadata:\n      name: d\n";
        let split = split_block_list(indented, 1).unwrap();
        assert_eq!(split.kind, "DeploymentList");
        let deployment: serde_json::Value =
            serde_saphyr::from_str(&split.items[0].text(indented)).unwrap();
        assert_eq!(deployment["metadata"]["name"], "d");

        // Not lists, or not in a shape this reader follows: judged whole.
        for text in [
            "kind: ConfigMap\nitems:\n- a\n",
            "kind: List\nitems: []\n",
            "kind: List\nitems: [{kind: Pod}]\n",
            "kind: List\nitems:\n- - nested\n",
            "kind: Pod\nspec: {}\n",
        ] {
            assert_eq!(split_block_list(text, 1), None, "{text:?}");
        }
    }

    #[test]
    fn transcoding_finds_the_lines_of_list_items() {
        let mut out = Vec::new();
        let found = transcode(
            "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  x: {items: [1]}\n-\n  kind: Service\n",
            10,
            &mut out,
        )
        .unwrap()
        .unwrap();
        assert!(found.mapping && found.list_kind);
        // An item's line is where its content starts.
        assert_eq!(found.item_lines, vec![13, 16]);
    }

    #[test]
    fn field_paths_become_pointers() {
        assert_eq!(
            pointer_of_field("spec.template.spec.containers[1].resources.limits.cpu"),
            "/spec/template/spec/containers/1/resources/limits/cpu"
        );
        assert_eq!(
            pointer_of_field("spec.template.metadata.annotations[\"prometheus.io/path\"]"),
            "/spec/template/metadata/annotations/prometheus.io~1path"
        );
    }
}
