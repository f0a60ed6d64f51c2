//! [`ByteSize`]: a memory or disk size such as `256Mi`, `2G` or `1048576`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SpecError;

/// A size in bytes as written in a spec (`memory: 256Mi`).
///
/// Accepted forms: plain bytes (`1048576`, as a number or a string), or a
/// number followed by a unit: binary `Ki`, `Mi`, `Gi`, `Ti` (powers of 1024)
/// or decimal `K`/`k`, `M`, `G`, `T` (powers of 1000), optionally followed by
/// `B` (`512MiB`). A fraction is allowed with a unit (`1.5Gi`).
///
/// Deserialization is lenient: the raw text is kept and only
/// [`ByteSize::bytes`] (and spec validation) rejects text that is not a size,
/// so one bad size does not hide the other problems of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ByteSize {
    raw: String,
}

impl ByteSize {
    /// Parses `raw`, failing when it is not a size.
    pub fn parse(raw: &str) -> Result<Self, SpecError> {
        let size = ByteSize {
            raw: raw.trim().to_string(),
        };
        size.bytes()?;
        Ok(size)
    }

    /// A size of exactly `bytes`, written with the largest binary unit that
    /// divides it (`268435456` becomes `256Mi`).
    pub fn from_bytes(bytes: u64) -> Self {
        let units = [
            ("Ti", 1u64 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ];
        let raw = units
            .iter()
            .find(|(_, m)| bytes != 0 && bytes % m == 0)
            .map(|(u, m)| format!("{}{u}", bytes / m))
            .unwrap_or_else(|| bytes.to_string());
        ByteSize { raw }
    }

    /// The text as written in the spec.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The size in bytes, or [`SpecError::InvalidSize`] when the text is not a size.
    pub fn bytes(&self) -> Result<u64, SpecError> {
        parse_bytes(&self.raw).ok_or_else(|| SpecError::InvalidSize {
            raw: self.raw.clone(),
        })
    }
}

fn parse_bytes(raw: &str) -> Option<u64> {
    let s = raw.trim();
    let s = s.strip_suffix('B').unwrap_or(s);
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let multiplier: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    match number.split_once('.') {
        None => number.parse::<u64>().ok()?.checked_mul(multiplier),
        Some((whole, frac)) => {
            // A fraction only makes sense with a unit: `1.5` bytes is not a size.
            if unit.is_empty() || frac.contains('.') {
                return None;
            }
            let whole = whole.parse::<u64>().ok()?.checked_mul(multiplier)?;
            let frac_value: f64 = format!("0.{frac}").parse().ok()?;
            let extra = (frac_value * multiplier as f64).round() as u64;
            whole.checked_add(extra)
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for ByteSize {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ByteSize::parse(s)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.raw.parse::<u64>() {
            Ok(n) => serializer.serialize_u64(n),
            Err(_) => serializer.serialize_str(&self.raw),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = crate::scalar::deserialize_scalar(deserializer, "a size such as 512Mi")?;
        Ok(ByteSize {
            raw: raw.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Option<u64> {
        ByteSize { raw: s.into() }.bytes().ok()
    }

    #[test]
    fn units() {
        assert_eq!(b("1024"), Some(1024));
        assert_eq!(b("0"), Some(0));
        assert_eq!(b("1Ki"), Some(1024));
        assert_eq!(b("256Mi"), Some(256 << 20));
        assert_eq!(b("2Gi"), Some(2 << 30));
        assert_eq!(b("1Ti"), Some(1 << 40));
        assert_eq!(b("1K"), Some(1000));
        assert_eq!(b("1k"), Some(1000));
        assert_eq!(b("5M"), Some(5_000_000));
        assert_eq!(b("3G"), Some(3_000_000_000));
        assert_eq!(b("1T"), Some(1_000_000_000_000));
        assert_eq!(b("512MiB"), Some(512 << 20));
        assert_eq!(b("1.5Gi"), Some(3 << 29));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "12Qi",
            "Mi",
            "1.5",
            "-1",
            "1..5Mi",
            ".5Gi",
            "1 Gi x",
            "99999999999Ti",
        ] {
            assert_eq!(b(bad), None, "{bad:?} should be rejected");
        }
        let err = ByteSize { raw: "12Qi".into() }.bytes().unwrap_err();
        assert!(err
            .to_string()
            .contains("\"12Qi\" is not a size; use e.g. 512Mi or 2Gi"));
    }

    #[test]
    fn from_bytes_round_trips() {
        for n in [0, 1, 1000, 1024, 256 << 20, (1 << 30) + 1, 5 << 40] {
            assert_eq!(ByteSize::from_bytes(n).bytes().ok(), Some(n));
        }
        assert_eq!(ByteSize::from_bytes(256 << 20).as_str(), "256Mi");
    }
}
