//! [`DurationSpec`]: a time span such as `500ms`, `10s` or `1h30m`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SpecError;

/// A duration as written in a spec (`interval: 10s`).
///
/// Accepted forms: one or more `<number><unit>` parts with units `ns`, `us`,
/// `ms`, `s`, `m`, `h`, `d` (`500ms`, `10s`, `5m`, `1h30m`, `1.5s`), or `0`.
/// A bare number other than 0 is rejected because its unit would be a guess.
///
/// Deserialization is lenient: the raw text is kept (numbers allowed) and only
/// [`DurationSpec::duration`] (and spec validation) rejects bad text, so one
/// bad duration does not hide the other problems of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DurationSpec {
    raw: String,
}

impl DurationSpec {
    /// Parses `raw`, failing when it is not a duration.
    pub fn parse(raw: &str) -> Result<Self, SpecError> {
        let d = DurationSpec {
            raw: raw.trim().to_string(),
        };
        d.duration()?;
        Ok(d)
    }

    /// The duration `d`, written exactly with the largest units (`1h30m`, `500ms`).
    pub fn from_duration(d: Duration) -> Self {
        let mut nanos = d.as_nanos();
        if nanos == 0 {
            return DurationSpec { raw: "0s".into() };
        }
        let units: [(&str, u128); 7] = [
            ("d", 86_400_000_000_000),
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
            ("ns", 1),
        ];
        let mut raw = String::new();
        for (unit, size) in units {
            let count = nanos / size;
            if count > 0 {
                raw.push_str(&format!("{count}{unit}"));
                nanos -= count * size;
            }
        }
        DurationSpec { raw }
    }

    /// The text as written in the spec.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The duration, or [`SpecError::InvalidDuration`] when the text is not one.
    pub fn duration(&self) -> Result<Duration, SpecError> {
        parse_duration(&self.raw).ok_or_else(|| SpecError::InvalidDuration {
            raw: self.raw.clone(),
        })
    }
}

fn parse_duration(raw: &str) -> Option<Duration> {
    let s = raw.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        total = total.checked_add(part_nanos(number, unit_nanos)?)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `number` (digits with at most one `.`) times `unit_nanos`, exactly.
fn part_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let mut nanos = whole.parse::<u128>().ok()?.checked_mul(unit_nanos)?;
    let mut scale = unit_nanos;
    for digit in frac.chars() {
        scale /= 10;
        nanos += u128::from(digit.to_digit(10)?) * scale;
    }
    Some(nanos)
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for DurationSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DurationSpec::parse(s)
    }
}

impl From<Duration> for DurationSpec {
    fn from(d: Duration) -> Self {
        DurationSpec::from_duration(d)
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = crate::scalar::deserialize_scalar(deserializer, "a duration such as 10s")?;
        Ok(DurationSpec {
            raw: raw.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<Duration> {
        DurationSpec { raw: s.into() }.duration().ok()
    }

    #[test]
    fn accepted() {
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("10s"), Some(Duration::from_secs(10)));
        assert_eq!(d("5m"), Some(Duration::from_secs(300)));
        assert_eq!(d("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("1m30s250ms"), Some(Duration::from_millis(90_250)));
        assert_eq!(d("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(d("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("250us"), Some(Duration::from_micros(250)));
    }

    #[test]
    fn rejected() {
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "1h30",
            "-5s",
            "1..5s",
            "5.s",
            "ten seconds",
        ] {
            assert_eq!(d(bad), None, "{bad:?} should be rejected");
        }
    }

    #[test]
    fn from_duration_round_trips() {
        for ms in [0u64, 1, 500, 1000, 90_250, 5_400_000, 86_400_001] {
            let dur = Duration::from_millis(ms);
            assert_eq!(DurationSpec::from_duration(dur).duration().ok(), Some(dur));
        }
        assert_eq!(
            DurationSpec::from_duration(Duration::from_secs(5400)).as_str(),
            "1h30m"
        );
    }
}
