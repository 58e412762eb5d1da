//! Splitting a stream into documents by hand, so every document's first line is known and a
//! broken document does not take the rest of the stream with it.

use std::io::BufRead;
use std::ops::Range;

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
pub(super) enum LineKind {
    /// `---` (alone, with a comment, or followed by inline content).
    Start { inline_content: bool },
    /// `...`: the document ends after this line.
    End,
    /// Blank or a comment.
    Trivia,
    /// Anything else.
    Content,
}

pub(super) fn classify(line: &str) -> LineKind {
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
