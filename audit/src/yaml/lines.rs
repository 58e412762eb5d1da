//! An index from field paths (JSON pointers) to the lines they are written on.

use std::collections::HashMap;

use serde_saphyr::granit_parser::Event;

use super::transcode::parser;

/// Lines on which the fields of a document are written, keyed by JSON pointer
/// (`/spec/template/spec/containers/0/securityContext`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LineIndex {
    pub(super) lines: HashMap<String, usize>,
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
