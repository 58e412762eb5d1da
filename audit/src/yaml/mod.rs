//! YAML streams the way audit needs them: split into documents by hand, so every
//! document's first line is known and a broken document does not take the rest of the
//! stream with it ([`split()`], [`StreamSplitter`]); list documents cut into items
//! ([`split_block_list`]); documents written straight to JSON with the lines of their
//! fields ([`transcode_with_lines`], [`LineIndex`]); and a block-style emitter for
//! rewritten documents and fix diffs ([`emit()`]); and minimal text edits for `--fix`
//! ([`minimal_edit`]).

mod edit;
mod emit;
mod lines;
mod list;
mod split;
mod transcode;

pub use edit::minimal_edit;
pub use emit::{Style, emit};
pub use lines::{LineIndex, escape};
pub use list::{ListItem, SplitList, split_block_list};
pub use split::{OwnedSegment, Segment, StreamSplitter, split};
pub use transcode::{Transcoded, Unsupported, transcode_with_lines};

#[cfg(test)]
mod tests;
