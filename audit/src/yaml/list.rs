//! A list document (`kind: List`) cut into its items, so each is parsed on its own.

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
