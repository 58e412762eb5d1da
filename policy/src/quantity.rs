//! Kubernetes resource quantities (`500m`, `1Gi`, `1e3`), parsed and compared exactly.
//!
//! Resource rules compare values the API server has already accepted, so parsing follows
//! `ParseQuantity` in k8s.io/apimachinery/pkg/api/resource: the same grammar, the same
//! nano precision and the same rounding. A quantity is held as a count of nano-units and
//! never passes through a float, so `0.1` is exactly a tenth and `129e6 > 123Mi` holds.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::IntErrorKind::{NegOverflow, PosOverflow};
use std::str::FromStr;

use serde_json::Value;

use crate::view::Scalar;

/// Kubernetes keeps quantities to nano precision (`resource.Nano`).
const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Largest magnitude kept, in nanos (about 1.7e20 units). Newer apimachinery keeps
/// decimal quantities of any size; we refuse beyond this bound instead so that
/// `ratio_exceeds` can scale a value by `NANOS_PER_UNIT` without overflowing.
const MAX_NANOS: u128 = (i128::MAX / NANOS_PER_UNIT) as u128;

/// apimachinery silently caps binarySI quantities at 2^63-1 ("8Ei" parses as 2^63-1).
const BINARY_CAP_NANOS: u128 = i64::MAX as u128 * NANOS_PER_UNIT as u128;

/// A resource quantity with its exact value, so that limits and requests written in
/// different notations (`1500m`, `1.5`, `1536Mi`, `1.5Gi`) compare as Kubernetes does.
///
/// Equality, ordering and hashing use the value only; the text as written is kept for
/// messages, because echoing the user's own notation is clearer than a canonical form.
#[derive(Clone, Debug)]
pub struct Quantity {
    nanos: i128,
    original: Box<str>,
}

/// Why a quantity was refused; the message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// An empty string has no value; Kubernetes refuses it too.
    #[error(r#"an empty string is not a valid quantity; write e.g. "500m", "2" or "1Gi""#)]
    Empty,
    /// The text does not follow the quantity grammar.
    #[error(r#""{text}" is not a valid quantity: {reason}"#)]
    Invalid {
        /// The text as given.
        text: String,
        /// What is wrong and how to write it instead.
        reason: String,
    },
    /// The value is too large to hold exactly.
    #[error(
        r#""{text}" is out of range: quantities are supported up to about 1.7e20 (170E), with exponents that fit in 32 bits"#
    )]
    OutOfRange {
        /// The text as given.
        text: String,
    },
    /// A JSON value that is neither a string nor a number cannot be a quantity.
    #[error(
        r#"expected a quantity as a JSON string or number (e.g. "500m", "1Gi" or 2), found {found}"#
    )]
    NotAQuantity {
        /// The JSON type found, e.g. "null" or "an object".
        found: &'static str,
    },
}

/// The multiplier a suffix stands for.
#[derive(Clone, Copy)]
enum Scale {
    /// `10^n`: decimalSI (`n`, `u`, `m`, `""`, `k` … `E`) or a decimal exponent (`e3`).
    Decimal(i32),
    /// `2^n`: binarySI (`Ki` … `Ei`).
    Binary(u32),
}

impl Quantity {
    /// Parses `text` exactly as `resource.ParseQuantity` would, so a rule never judges
    /// a value differently from the API server that stored it.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        Ok(Self {
            nanos: parse_nanos(text)?,
            original: text.into(),
        })
    }

    /// Reads a quantity from a settings value, which may be written as a string or a
    /// number like a manifest field.
    pub fn from_json(value: &Value) -> Result<Self, QuantityError> {
        match value {
            Value::String(text) => Self::from_scalar(&Scalar::Str(text.as_str().into())),
            Value::Number(number) => Self::from_scalar(&Scalar::Number(number.clone())),
            Value::Null => Self::from_scalar(&Scalar::Null),
            Value::Bool(flag) => Self::from_scalar(&Scalar::Bool(*flag)),
            Value::Array(_) => Err(QuantityError::NotAQuantity { found: "an array" }),
            Value::Object(_) => Err(QuantityError::NotAQuantity { found: "an object" }),
        }
    }

    /// Reads a quantity from a manifest field, which the API server accepts as a string
    /// (`"500m"`) or a bare number (`cpu: 1` in YAML).
    pub fn from_scalar(value: &Scalar) -> Result<Self, QuantityError> {
        match value {
            // `Quantity.UnmarshalJSON` trims whitespace inside the quotes ("TODO: Remove
            // support for leading/trailing whitespace"), so `" 1 "` is stored as 1.
            Scalar::Str(text) => Self::parse(text.trim()),
            // UnmarshalJSON parses the raw JSON text of a number like any other quantity.
            Scalar::Number(number) => Self::parse(&number.to_string()),
            // UnmarshalJSON reads `null` as zero, but an explicit null is almost always a
            // templating mistake, and a rule should not silently see it as "0".
            Scalar::Null => Err(QuantityError::NotAQuantity { found: "null" }),
            Scalar::Bool(_) => Err(QuantityError::NotAQuantity { found: "a boolean" }),
            Scalar::Other(value) if value.is_array() => {
                Err(QuantityError::NotAQuantity { found: "an array" })
            }
            Scalar::Other(_) => Err(QuantityError::NotAQuantity { found: "an object" }),
        }
    }

    /// The API server's validation refuses negative resources, but a rule may see one
    /// before validation runs and must not treat it as a small positive value.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The exact value in nano-units (10^-9), for arithmetic the comparisons here do not
    /// cover; this is the finest precision Kubernetes keeps.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }
}

/// Decides `limit / request > max_ratio` exactly, so a limit exactly at the allowed
/// ratio is never flagged because of rounding. A zero request with a positive limit
/// counts as exceeding any ratio.
pub fn ratio_exceeds(limit: &Quantity, request: &Quantity, max_ratio: &Quantity) -> bool {
    let (mut limit, mut request) = (limit.nanos, request.nanos);
    if request == 0 {
        return limit > 0;
    }
    if request < 0 {
        (limit, request) = (-limit, -request);
    }
    // limit/request > max_ratio.nanos/10^9  ⇔  limit·10^9 / request > max_ratio.nanos,
    // and MAX_NANOS guarantees limit·10^9 fits in an i128.
    let scaled = limit * NANOS_PER_UNIT;
    let (whole, rest) = (scaled.div_euclid(request), scaled.rem_euclid(request));
    whole > max_ratio.nanos || (whole == max_ratio.nanos && rest > 0)
}

impl FromStr for Quantity {
    type Err = QuantityError;

    /// Lets settings and tests write `"500m".parse()`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Quantity {
    /// Shows the quantity as its author wrote it, so messages quote their manifest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.original)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

/// The longest piece of a refused quantity that messages repeat.
const ECHOED_CHARS: usize = 40;

/// The refused text as messages show it: whole when it is short, else its start and its
/// length, so a hostile 100,000-digit value does not become a 100 kB rejection.
fn echoed(text: &str) -> String {
    match text.char_indices().nth(ECHOED_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}... ({} characters)", &text[..cut], text.chars().count()),
    }
}

fn parse_nanos(text: &str) -> Result<i128, QuantityError> {
    let invalid = |reason: &str| QuantityError::Invalid {
        text: echoed(text),
        reason: reason.to_owned(),
    };
    let out_of_range = || QuantityError::OutOfRange { text: echoed(text) };
    if text.is_empty() {
        return Err(QuantityError::Empty);
    }
    if text.trim() != text {
        return Err(invalid(
            r#"leading or trailing whitespace is not allowed (write e.g. "1Gi")"#,
        ));
    }
    let (negative, unsigned) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, rest) = unsigned.split_at(count_digits(unsigned));
    let (fraction, suffix) = match rest.strip_prefix('.') {
        Some(after_point) => after_point.split_at(count_digits(after_point)),
        None => ("", rest),
    };
    // The documented grammar needs a digit on one side of the point. apimachinery's
    // scanner is laxer (it reads "Mi", "." or "e3" as 0), but the API server never emits
    // those forms, and a rule should not read a typo as zero.
    if whole.is_empty() && fraction.is_empty() {
        return Err(invalid(
            r#"the number has no digits (write e.g. "1", "0.5" or ".5", then an optional suffix such as "Mi")"#,
        ));
    }
    let scale = match suffix {
        "n" => Scale::Decimal(-9),
        "u" => Scale::Decimal(-6),
        "m" => Scale::Decimal(-3),
        "" => Scale::Decimal(0),
        "k" => Scale::Decimal(3),
        "M" => Scale::Decimal(6),
        "G" => Scale::Decimal(9),
        "T" => Scale::Decimal(12),
        "P" => Scale::Decimal(15),
        "E" => Scale::Decimal(18),
        "Ki" => Scale::Binary(10),
        "Mi" => Scale::Binary(20),
        "Gi" => Scale::Binary(30),
        "Ti" => Scale::Binary(40),
        "Pi" => Scale::Binary(50),
        "Ei" => Scale::Binary(60),
        _ if suffix.starts_with('.') => {
            return Err(invalid("a quantity has at most one decimal point"));
        }
        _ => match suffix.strip_prefix(['e', 'E']) {
            // apimachinery parses the exponent as a 64-bit integer and then truncates it
            // to 32 bits; refusing what does not fit avoids that silent wrap-around.
            Some(exponent) => match exponent.parse::<i32>() {
                Ok(exponent) => Scale::Decimal(exponent),
                Err(error) if matches!(error.kind(), PosOverflow | NegOverflow) => {
                    return Err(out_of_range());
                }
                Err(_) => {
                    return Err(invalid(
                        r#"the exponent must be a whole number (write e.g. "1e3", "1E3" or "5e-1")"#,
                    ));
                }
            },
            None => {
                return Err(invalid(&format!(
                    "unknown suffix {suffix:?} (suffixes are case-sensitive: use Ki, Mi, Gi, ... or k, M, G, ...)"
                )));
            }
        },
    };

    let magnitude = match small_nanos(whole, fraction, &scale) {
        Some(nanos) => i128::from(nanos),
        None => exact_nanos(whole, fraction, scale).ok_or_else(out_of_range)?,
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// The magnitude in nanos when it is exact in 64 bits without rounding, which nearly every
/// quantity a manifest holds is ("500m", "128Mi", "2", "0.5"): this keeps the 128-bit
/// arithmetic of [`exact_nanos`], a library call in Wasm, off the common path.
fn small_nanos(whole: &str, fraction: &str, scale: &Scale) -> Option<u64> {
    if whole.len() + fraction.len() > 19 {
        return None;
    }
    let mantissa = whole
        .bytes()
        .chain(fraction.bytes())
        .try_fold(0u64, |n, b| {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })?;
    let (binary, decimal) = match *scale {
        Scale::Binary(exponent) => (exponent, 0),
        Scale::Decimal(exponent) => (0, exponent),
    };
    // value = mantissa × 2^binary × 10^(decimal − fraction digits) units of 10^9 nanos;
    // a negative power of ten would need rounding, which the exact path does.
    let shift = u32::try_from(decimal.checked_add(9)?.checked_sub(fraction.len() as i32)?).ok()?;
    if mantissa != 0 && mantissa.leading_zeros() < binary {
        return None;
    }
    (mantissa << binary).checked_mul(10u64.checked_pow(shift)?)
}

/// The magnitude in nanos of `whole.fraction × scale` with digits of any length, rounded
/// up to a nano; `None` past the largest quantity kept.
fn exact_nanos(whole: &str, fraction: &str, scale: Scale) -> Option<i128> {
    let mut digits: Vec<u8> = whole
        .bytes()
        .chain(fraction.bytes())
        .map(|b| b - b'0')
        .collect();
    let decimal_exponent = match scale {
        Scale::Decimal(exponent) => i128::from(exponent),
        Scale::Binary(exponent) => {
            multiply_by_power_of_two(&mut digits, exponent);
            0
        }
    };
    // The value is `digits × 10^(decimal_exponent − fraction.len())` units, and one unit
    // is 10^9 nanos.
    let shift = decimal_exponent + 9 - fraction.len() as i128;
    let magnitude = nanos_rounded_up(&digits, shift);
    let magnitude = match scale {
        Scale::Binary(_) => Some(magnitude.map_or(BINARY_CAP_NANOS, |m| m.min(BINARY_CAP_NANOS))),
        Scale::Decimal(_) => magnitude.filter(|&m| m <= MAX_NANOS),
    };
    magnitude.and_then(|m| i128::try_from(m).ok())
}

fn count_digits(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_digit).count()
}

/// Multiplies a big-endian string of decimal digits by `2^exponent` (at most 2^60),
/// so binary suffixes can share the exact decimal path below.
fn multiply_by_power_of_two(digits: &mut Vec<u8>, exponent: u32) {
    let factor = 1u128 << exponent;
    let mut carry = 0u128;
    for digit in digits.iter_mut().rev() {
        let product = u128::from(*digit) * factor + carry;
        *digit = (product % 10) as u8;
        carry = product / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// `digits × 10^shift` as a whole number of nanos, or `None` if it exceeds a u128.
///
/// A non-zero remainder rounds the magnitude up: ParseQuantity rounds to nano with
/// `inf.RoundUp` after taking the absolute value, "under the theory that if you want some
/// resources, you should get some resources", so both "0.9n" and "-0.9n" become ±1n.
fn nanos_rounded_up(digits: &[u8], shift: i128) -> Option<u128> {
    let start = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    let digits = &digits[start..];
    if digits.is_empty() {
        return Some(0);
    }
    let to_number = |digits: &[u8]| {
        digits
            .iter()
            .try_fold(0u128, |n, &d| n.checked_mul(10)?.checked_add(u128::from(d)))
    };
    if shift >= 0 {
        // u128 holds at most 39 digits; checking first keeps a huge shift from looping.
        if digits.len() as i128 + shift > 39 {
            return None;
        }
        return to_number(digits)?.checked_mul(10u128.pow(shift as u32));
    }
    let kept = (digits.len() as i128 + shift).max(0) as usize;
    let (whole, dropped) = digits.split_at(kept);
    let round_up = u128::from(dropped.iter().any(|&d| d != 0));
    to_number(whole)?.checked_add(round_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_64_bit_path_agrees_with_the_exact_one() {
        let scales = [
            ("n", Scale::Decimal(-9)),
            ("m", Scale::Decimal(-3)),
            ("", Scale::Decimal(0)),
            ("k", Scale::Decimal(3)),
            ("E", Scale::Decimal(18)),
            ("e-12", Scale::Decimal(-12)),
            ("e10", Scale::Decimal(10)),
            ("Ki", Scale::Binary(10)),
            ("Gi", Scale::Binary(30)),
            ("Ei", Scale::Binary(60)),
        ];
        let numbers = [
            ("0", ""),
            ("1", ""),
            ("500", ""),
            ("128", ""),
            ("0", "5"),
            ("1", "25"),
            ("", "000000001"),
            ("", "0000000001"),
            ("18446744073", "709551615"),
            ("9999999999999999999", ""),
            ("16", ""),
            ("17179869184", ""),
        ];
        let mut fast = 0;
        for (whole, fraction) in numbers {
            for (suffix, scale) in &scales {
                let exact = exact_nanos(whole, fraction, *scale);
                if let Some(small) = small_nanos(whole, fraction, scale) {
                    fast += 1;
                    assert_eq!(Some(i128::from(small)), exact, "{whole}.{fraction}{suffix}");
                }
            }
        }
        assert!(fast > 50, "the common cases take the 64-bit path ({fast})");
    }
    use serde_json::json;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn assert_same(texts: &[&str]) {
        for text in texts {
            assert_eq!(q(text), q(texts[0]), "{text} vs {}", texts[0]);
        }
    }

    fn assert_invalid(text: &str) -> String {
        match Quantity::parse(text) {
            Err(error @ QuantityError::Invalid { .. }) => error.to_string(),
            other => panic!("{text:?} should be invalid, got {other:?}"),
        }
    }

    #[test]
    fn milli_and_fractions_agree() {
        assert_same(&["500m", "0.5", ".5", "500000u", "500000000n", "5e-1"]);
        assert_same(&[
            "1",
            "1000m",
            "+1",
            "1.",
            "1.000000000000000000000000000000000000000000",
        ]);
        assert_same(&["5.", "5", "5000m"]);
    }

    #[test]
    fn exponents_and_decimal_suffixes_agree() {
        assert_same(&["1e3", "1E3", "1e+3", "1k", "1000", "0.001M"]);
        assert_same(&["1M", "1000000", "1e6"]);
        assert_same(&["1e-3", "1m"]);
        assert_eq!(
            q("1E").nanos(),
            10i128.pow(27),
            "a lone E is the exa suffix"
        );
    }

    #[test]
    fn binary_suffixes() {
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1Mi"), q("1048576"));
        assert_eq!(q("1.5Ki"), q("1536"));
        assert_eq!(q("0.1Ki").nanos(), 102_400_000_000);
        assert_eq!(q("1Ei").nanos(), (1i128 << 60) * NANOS_PER_UNIT);
        assert_eq!(q("123Mi"), q("128974848"));
    }

    #[test]
    fn binary_quantities_cap_at_int64_max_like_kubernetes() {
        let max = i128::from(i64::MAX) * NANOS_PER_UNIT;
        assert_eq!(q("9223372036854775807").nanos(), max);
        assert_eq!(q("8Ei").nanos(), max);
        assert_eq!(
            q("-1000000000000000000000000000000000000000000Ei").nanos(),
            -max
        );
    }

    #[test]
    fn values_are_exact() {
        assert_eq!(q("0.1").nanos(), 100_000_000);
        assert_eq!(q("1n").nanos(), 1);
        assert_eq!(q("1u").nanos(), 1_000);
        assert_eq!(q("12345.678901234").nanos(), 12_345_678_901_234);
        assert_eq!(q("0").nanos(), 0);
    }

    #[test]
    fn finer_than_nano_rounds_away_from_zero() {
        assert_eq!(q("0.0000000001"), q("1n"));
        assert_eq!(q("0.9n"), q("1n"));
        assert_eq!(q("1.1n").nanos(), 2);
        assert_eq!(q("-0.0000000001").nanos(), -1);
        assert_eq!(q("1e-100").nanos(), 1);
        assert_eq!(q("0.0000000001Ki").nanos(), 103, "102.4n rounds up");
        assert_eq!(
            q("0.000000000000000000000000000000000000000000000000001").nanos(),
            1
        );
        assert_eq!(q("0.0000000000").nanos(), 0);
    }

    #[test]
    fn signs() {
        assert!(q("-1").is_negative());
        assert_eq!(q("-1").nanos(), -NANOS_PER_UNIT);
        assert!(q("-500m") < q("0"));
        assert!(!q("-0").is_negative());
        assert_eq!(q("-0").nanos(), 0);
        assert_eq!(q("0Gi").nanos(), 0);
        assert_ne!(q("1n").nanos(), 0);
    }

    #[test]
    fn ordering_across_suffix_families() {
        assert!(q("129e6") > q("123Mi"));
        assert!(q("128974848") < q("129e6"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("1Ki") > q("1k"));
        let mut sorted = ["1Gi", "1G", "999999999", "1e9", "1.5", "1501m", "-2", "0"].map(q);
        sorted.sort();
        let texts: Vec<String> = sorted.iter().map(ToString::to_string).collect();
        assert_eq!(texts[..4], ["-2", "0", "1.5", "1501m"]);
        assert_eq!(texts[4], "999999999");
        assert_eq!(sorted[5], sorted[6], "1G == 1e9");
        assert_eq!(texts[7], "1Gi");
    }

    #[test]
    fn equal_values_hash_alike() {
        let set: std::collections::HashSet<Quantity> =
            ["1k", "1000", "1e3", "1000000m"].map(q).into();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn display_keeps_the_text_as_written() {
        assert_eq!(q("1.5Gi").to_string(), "1.5Gi");
        assert_eq!(
            format!("limit {} is below request {}", q("500m"), q("1")),
            "limit 500m is below request 1"
        );
        assert_eq!(format!("[{:>5}]", q("1k")), "[   1k]");
    }

    #[test]
    fn from_str_matches_parse() {
        assert_eq!("250m".parse::<Quantity>(), Ok(q("0.25")));
        assert_eq!("".parse::<Quantity>(), Err(QuantityError::Empty));
    }

    #[test]
    fn invalid_quantities() {
        for text in [
            "1gi", "1K", "1KI", " 1", "1 ", "1.2.3", "e3", "1e", "Mi", "1Mi5", "--1", "+-1", ".",
            "-", "1i", ".5i", "0.1mi", "1e3.5", "1e-", "1 Mi", "aoeu", "1Mi ", "1µ", "1e3Mi",
        ] {
            assert_invalid(text);
        }
        assert_eq!(Quantity::parse(""), Err(QuantityError::Empty));
    }

    #[test]
    fn invalid_messages_say_how_to_fix_it() {
        assert_eq!(
            assert_invalid("1gi"),
            r#""1gi" is not a valid quantity: unknown suffix "gi" (suffixes are case-sensitive: use Ki, Mi, Gi, ... or k, M, G, ...)"#
        );
        assert!(assert_invalid(" 1").contains("whitespace"));
        assert!(assert_invalid("1.2.3").contains("one decimal point"));
        assert!(assert_invalid("1e").contains(r#""1e3""#));
        assert!(assert_invalid("--1").contains("no digits"));
        assert!(QuantityError::Empty.to_string().contains(r#""500m""#));
    }

    #[test]
    fn out_of_range() {
        for text in [
            "1e40",
            "1e1000",
            "-1e1000",
            "1e99999999999",
            "1e-99999999999",
            "1000000000000000000000",
        ] {
            assert_eq!(
                Quantity::parse(text),
                Err(QuantityError::OutOfRange {
                    text: text.to_owned()
                }),
                "{text}"
            );
        }
        assert!(
            Quantity::parse("1e1000")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert_eq!(q("0e1000").nanos(), 0);
        assert_eq!(q("1e20").nanos(), 10i128.pow(29));
    }

    #[test]
    fn json_strings_and_numbers() {
        assert_eq!(Quantity::from_json(&json!(1)), Ok(q("1")));
        assert_eq!(Quantity::from_json(&json!(0.5)), Ok(q("500m")));
        assert_eq!(Quantity::from_json(&json!(-2)), Ok(q("-2")));
        assert_eq!(Quantity::from_json(&json!(1e3)), Ok(q("1k")));
        assert_eq!(Quantity::from_json(&json!("1Gi")), Ok(q("1073741824")));
        assert_eq!(Quantity::from_json(&json!(" 250m ")), Ok(q("0.25")));
        assert_eq!(
            Quantity::from_json(&json!(1)).map(|q| q.to_string()),
            Ok("1".to_owned())
        );
        assert_eq!(Quantity::from_json(&json!("")), Err(QuantityError::Empty));
        assert!(matches!(
            Quantity::from_json(&json!("1gi")),
            Err(QuantityError::Invalid { .. })
        ));
    }

    #[test]
    fn json_other_types_are_refused() {
        assert_eq!(
            Quantity::from_json(&json!(null)),
            Err(QuantityError::NotAQuantity { found: "null" })
        );
        assert_eq!(
            Quantity::from_json(&json!({"cpu": 1}))
                .unwrap_err()
                .to_string(),
            r#"expected a quantity as a JSON string or number (e.g. "500m", "1Gi" or 2), found an object"#
        );
        assert!(Quantity::from_json(&json!(true)).is_err());
        assert!(Quantity::from_json(&json!(["1"])).is_err());
    }

    #[test]
    fn ratio_is_decided_exactly() {
        assert!(!ratio_exceeds(&q("2"), &q("500m"), &q("4")), "exactly 4");
        assert!(ratio_exceeds(&q("3"), &q("500m"), &q("4")));
        assert!(!ratio_exceeds(&q("1.9"), &q("500m"), &q("4")));
        assert!(
            ratio_exceeds(&q("2000000001n"), &q("500m"), &q("4")),
            "4 + 2e-9"
        );
        assert!(!ratio_exceeds(&q("1Gi"), &q("1Gi"), &q("1")));
        assert!(ratio_exceeds(&q("1Gi"), &q("1G"), &q("1")));
        assert!(
            !ratio_exceeds(&q("1"), &q("3"), &q("333333334n")),
            "1/3 < 0.333333334"
        );
        assert!(
            ratio_exceeds(&q("1"), &q("3"), &q("333333333n")),
            "1/3 > 0.333333333"
        );
    }

    #[test]
    fn ratio_edge_cases() {
        assert!(ratio_exceeds(&q("1m"), &q("0"), &q("1000")), "zero request");
        assert!(!ratio_exceeds(&q("0"), &q("0"), &q("1")));
        assert!(!ratio_exceeds(&q("-1"), &q("-1"), &q("1")), "-1/-1 == 1");
        assert!(ratio_exceeds(&q("-3"), &q("-1"), &q("2")));
        let huge = q("1e20");
        assert!(!ratio_exceeds(&huge, &huge, &huge));
        assert!(ratio_exceeds(&huge, &q("1n"), &huge));
        assert!(!ratio_exceeds(&q("1n"), &huge, &q("1n")));
    }

    #[test]
    fn a_huge_refused_quantity_is_not_repeated_whole() {
        // Found by the hostile-request tests: a 100,000-digit memory limit came back as a
        // 100 kB rejection message.
        let huge = format!("1{}x", "0".repeat(100_000));
        let message = Quantity::parse(&huge).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("(100002 characters)"), "{message}");
        let message = Quantity::parse(&"9".repeat(100_000))
            .unwrap_err()
            .to_string();
        assert!(message.len() < 300, "{message}");
    }
}
