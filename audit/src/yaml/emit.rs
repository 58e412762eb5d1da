//! A block-style emitter for rewritten documents and fix diffs, in the document's own
//! indentation style.

use serde_json::Value;

use super::split::{LineKind, classify};

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

/// The longest key YAML lets stand before its `:` without a `?` (YAML 1.2, 7.4.2).
const MAX_IMPLICIT_KEY: usize = 1024;

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

pub(super) fn emit_map(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    indent: usize,
    style: Style,
) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a mapping inside a sequence item follows the `- ` directly.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        let start = out.len();
        emit_string(out, key);
        // YAML limits an implicit key to 1024 characters; a longer one is written as an
        // explicit `? key` with its `:` on the next line.
        if out[start..].chars().count() > MAX_IMPLICIT_KEY {
            out.insert_str(start, "? ");
            out.push('\n');
            pad(out, indent);
        }
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

pub(super) fn emit_seq(out: &mut String, items: &[Value], indent: usize, style: Style) {
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

pub(super) fn emit_string(out: &mut String, text: &str) {
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
