//! Wall-clock time as a plain number.
//!
//! Retry times are persisted and must mean the same thing after a restart, so the core
//! counts milliseconds since the Unix epoch instead of using `Instant`. The core never
//! reads a clock: every `now` comes from the caller.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch (UTC).
///
/// Serialized as an RFC 3339 string in human-readable formats (JSON) and as a bare
/// integer in binary ones (the store), so JSON stays readable and records stay small.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The largest representable instant; used as "never".
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// A timestamp `s` seconds after the epoch (saturating).
    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (truncated).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Formats as RFC 3339 with millisecond precision, e.g. `2024-01-02T03:04:05.678Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0 / 1000;
        let ms = self.0 % 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }

    /// Parses an RFC 3339 timestamp (`Z` or a numeric offset, optional fraction).
    /// Sub-millisecond digits are truncated; instants before 1970 or after
    /// 9999-12-31T23:59:59.999Z are rejected, so whatever parses formats back the same.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampError> {
        let err = |why: &'static str| TimestampError {
            input: s.chars().take(64).collect(),
            why,
        };
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(err("too short for RFC 3339 (YYYY-MM-DDTHH:MM:SSZ)"));
        }
        let num = |r: std::ops::Range<usize>| -> Result<u64, TimestampError> {
            // Bytes, not `&s[r]`: a multi-byte character may straddle the range.
            let part = &b[r];
            if part.iter().all(u8::is_ascii_digit) {
                Ok(part.iter().fold(0, |n, c| n * 10 + u64::from(c - b'0')))
            } else {
                Err(err("expected digits"))
            }
        };
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return Err(err("expected YYYY-MM-DDTHH:MM:SS"));
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(err("expected HH:MM:SS"));
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year as i64, month as u32) {
            return Err(err("date out of range"));
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(err("time out of range"));
        }
        let mut i = 19;
        let mut millis = 0u64;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    millis = millis * 10 + u64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return Err(err("empty fraction"));
            }
            for _ in (i - start)..3 {
                millis *= 10;
            }
        }
        let offset_secs: i64 = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let h = num(i + 1..i + 3)? as i64;
                let m = num(i + 4..i + 6)? as i64;
                if h > 23 || m > 59 {
                    return Err(err("offset out of range"));
                }
                let v = h * 3600 + m * 60;
                if *sign == b'+' { v } else { -v }
            }
            _ => return Err(err("expected Z or a +HH:MM offset at the end")),
        };
        let days = days_from_civil(year as i64, month as u32, day as u32);
        let secs = days * 86_400 + (hour * 3600 + minute * 60 + second.min(59)) as i64 - offset_secs;
        if secs < 0 {
            return Err(err("before 1970-01-01"));
        }
        let ms = (secs as u64).saturating_mul(1000).saturating_add(millis);
        if ms > LAST_RFC3339.0 {
            // A negative offset can carry 9999-12-31 into year 10000, which
            // `to_rfc3339` cannot write back as RFC 3339.
            return Err(err("after 9999-12-31T23:59:59.999Z"));
        }
        Ok(Timestamp(ms))
    }
}

/// The last instant RFC 3339 (four-digit years) can write: 9999-12-31T23:59:59.999Z.
/// Later timestamps format with a longer year, which is not RFC 3339.
pub(crate) const LAST_RFC3339: Timestamp = Timestamp(253_402_300_799_999);

/// A timestamp string that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {input:?}: {why}")]
pub struct TimestampError {
    /// The offending input (at most 64 characters of it).
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({} = {})", self.0, self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(d).map(Timestamp)
        }
    }
}

/// A duration in whole milliseconds, saturating instead of overflowing.
pub(crate) fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339_round_trip() {
        let t = Timestamp::from_millis(1_649_367_553_123);
        assert_eq!(t.to_rfc3339(), "2022-04-07T21:39:13.123Z");
        assert_eq!(Timestamp::parse_rfc3339("2022-04-07T21:39:13.123Z"), Ok(t));
    }

    #[test]
    fn parses_offsets_and_truncates_sub_millisecond_digits() {
        let t = Timestamp::parse_rfc3339("2022-04-07T23:39:13.123456+02:00").unwrap();
        assert_eq!(t, Timestamp::from_millis(1_649_367_553_123));
        assert_eq!(Timestamp::parse_rfc3339("1970-01-01T00:00:00Z"), Ok(Timestamp::EPOCH));
    }

    #[test]
    fn rejects_malformed_rfc3339_with_a_reason() {
        for bad in [
            "",
            "2022-13-01T00:00:00Z",
            "2022-02-30T00:00:00Z",
            "2022-01-01T24:00:00Z",
            "2022-01-01T00:00:00",
            "1969-12-31T23:59:59Z",
            "2022-01-01T00:00:00.Z",
            "yyyy-01-01T00:00:00Z",
        ] {
            let e = Timestamp::parse_rfc3339(bad).unwrap_err();
            assert!(!e.why.is_empty(), "{bad}");
        }
    }

    /// Found by the `config_parse` fuzz target (on a seed input): a negative offset carried
    /// the last day of year 9999 into year 10000, which parsed but did not format back.
    #[test]
    fn fuzz_an_offset_past_year_9999_is_rejected() {
        let e = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999-23:59").unwrap_err();
        assert_eq!(e.why, "after 9999-12-31T23:59:59.999Z");
        let last = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(last, LAST_RFC3339);
        assert_eq!(Timestamp::parse_rfc3339(&last.to_rfc3339()), Ok(last));
        let east = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999+01:00").unwrap();
        assert_eq!(Timestamp::parse_rfc3339(&east.to_rfc3339()), Ok(east));
    }

    /// Found by the `config_parse` fuzz target: a multi-byte character ending inside a
    /// numeric field (here the seconds) made the parser slice inside it and panic.
    #[test]
    fn fuzz_a_multibyte_character_in_a_number_is_an_error_not_a_panic() {
        for s in [
            "2024-02-29T23:59:5\u{fffd}9+01:00",
            "2024-02-29T23:59:\u{e9}0Z",
            "\u{e9}024-02-29T23:59:59Z",
            "2024-02-29T23:59:59+0\u{e9}:00",
        ] {
            let e = Timestamp::parse_rfc3339(s).unwrap_err();
            assert!(!e.why.is_empty(), "{s}");
        }
    }

    #[test]
    fn civil_conversion_round_trips_across_leap_years() {
        for days in [-1_000_000i64, -1, 0, 59, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn saturating_arithmetic_never_overflows() {
        assert_eq!(Timestamp::MAX.saturating_add(Duration::from_secs(1)), Timestamp::MAX);
        assert_eq!(Timestamp::EPOCH.saturating_since(Timestamp::MAX), Duration::ZERO);
    }
}
