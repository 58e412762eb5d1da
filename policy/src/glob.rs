//! Shell-style globs for image exemptions.
//!
//! Image references contain `/` and `:`, and people write `registry.k8s.io/*` meaning
//! "everything from that registry", so `*` deliberately matches across `/` (unlike path
//! globs). Globs are compiled once, when settings are loaded.

use std::fmt;

/// A compiled glob: `*` any run of characters, `?` one character, `[abc]`, `[a-z]` and
/// `[!a-z]` a class, `\` escapes the next character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Why a glob was refused; the message says how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// An empty pattern would match nothing but the empty image, which is never valid.
    #[error("the glob is empty; write a pattern such as `registry.example.com/*`")]
    Empty,
    /// A `[` without its `]`.
    #[error(
        "`[` at character {position} is never closed; close the class with `]` or escape it as `\\[`"
    )]
    UnclosedClass {
        /// 1-based character position of the `[`.
        position: usize,
    },
    /// `[]` or `[!]` can match nothing.
    #[error("the class at character {position} is empty; list at least one character")]
    EmptyClass {
        /// 1-based character position of the `[`.
        position: usize,
    },
    /// A range such as `[z-a]`.
    #[error("the range `{from}-{to}` is reversed; write `{to}-{from}`")]
    ReversedRange {
        /// Start of the range as written.
        from: char,
        /// End of the range as written.
        to: char,
    },
    /// A trailing `\` escapes nothing.
    #[error("the glob ends with `\\`, which escapes nothing; remove it or write `\\\\`")]
    DanglingEscape,
}

impl Glob {
    /// Compiles `pattern`, refusing anything that would silently match differently than
    /// its author meant.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if tokens.last() != Some(&Token::AnyRun) {
                        tokens.push(Token::AnyRun);
                    }
                }
                '?' => tokens.push(Token::AnyOne),
                '\\' => {
                    i += 1;
                    let escaped = *chars.get(i).ok_or(GlobError::DanglingEscape)?;
                    tokens.push(Token::Literal(escaped));
                }
                '[' => {
                    let (token, end) = parse_class(&chars, i)?;
                    tokens.push(token);
                    i = end;
                }
                other => tokens.push(Token::Literal(other)),
            }
            i += 1;
        }
        Ok(Glob {
            source: pattern.to_owned(),
            tokens,
        })
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // Iterative matching with single-star backtracking: linear in practice and, unlike
        // naive recursion, never exponential on patterns like `*a*a*a*b`.
        let (mut t, mut p) = (0, 0);
        let mut backtrack: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::AnyRun) => {
                    backtrack = Some((p, t));
                    p += 1;
                }
                Some(token) if token.matches_one(text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match backtrack {
                    Some((star, from)) => {
                        p = star + 1;
                        t = from + 1;
                        backtrack = Some((star, from + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|token| *token == Token::AnyRun)
    }
}

impl Token {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyOne => true,
            Token::AnyRun => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

fn parse_class(chars: &[char], open: usize) -> Result<(Token, usize), GlobError> {
    let position = open + 1;
    let mut i = open + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let c = *chars.get(i).ok_or(GlobError::UnclosedClass { position })?;
        if c == ']' {
            break;
        }
        let from = if c == '\\' {
            i += 1;
            *chars.get(i).ok_or(GlobError::UnclosedClass { position })?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
            let to = chars[i + 2];
            if to < from {
                return Err(GlobError::ReversedRange { from, to });
            }
            ranges.push((from, to));
            i += 3;
        } else {
            ranges.push((from, from));
            i += 1;
        }
    }
    if ranges.is_empty() {
        return Err(GlobError::EmptyClass { position });
    }
    Ok((Token::Class { negated, ranges }, i))
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).unwrap().matches(text)
    }

    #[test]
    fn star_crosses_slashes_because_image_references_contain_them() {
        assert!(matches("registry.k8s.io/*", "registry.k8s.io/pause:3.10"));
        assert!(matches(
            "registry.k8s.io/*",
            "registry.k8s.io/sig/x@sha256:ab"
        ));
        assert!(!matches(
            "registry.k8s.io/*",
            "docker.io/registry.k8s.io/pause"
        ));
        assert!(matches("*/pause:*", "registry.k8s.io/pause:3.10"));
    }

    #[test]
    fn question_mark_classes_and_escapes() {
        assert!(matches("app:v?", "app:v1"));
        assert!(!matches("app:v?", "app:v10"));
        assert!(matches("app:v[0-9]", "app:v7"));
        assert!(!matches("app:v[!0-9]", "app:v7"));
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "axb"));
    }

    #[test]
    fn whole_string_must_match() {
        assert!(!matches("nginx", "nginx:1.27"));
        assert!(matches("nginx*", "nginx:1.27"));
        assert!(matches("*", ""));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(10_000);
        assert!(!matches("*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn refuses_what_would_not_match_as_meant() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(
            Glob::new("ghcr.io/[acme"),
            Err(GlobError::UnclosedClass { position: 9 })
        );
        assert_eq!(
            Glob::new("a[z-a]"),
            Err(GlobError::ReversedRange { from: 'z', to: 'a' })
        );
        assert_eq!(Glob::new("abc\\"), Err(GlobError::DanglingEscape));
        assert_eq!(
            Glob::new("a[!]"),
            Err(GlobError::EmptyClass { position: 2 })
        );
        assert_eq!(Glob::new("[]"), Err(GlobError::EmptyClass { position: 1 }));
    }
}
