//! `Retry-After` (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date.

use std::time::Duration;

use crate::time::{Timestamp, days_from_civil, days_in_month};

/// A parsed `Retry-After` value. It is resolved against `now` only when used, so parsing
/// stays free of any clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RetryAfter {
    /// `Retry-After: 120`.
    Delay(Duration),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`.
    At(Timestamp),
}

/// A `Retry-After` value that is neither delay-seconds nor an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Retry-After {value:?}: {why}")]
pub struct RetryAfterError {
    /// The value (at most 64 characters of it).
    pub value: String,
    /// What is wrong.
    pub why: &'static str,
}

impl RetryAfter {
    /// Parses a header value. Delay-seconds are digits only (no sign, no fraction; huge
    /// values saturate). Dates may be IMF-fixdate, RFC 850 (two-digit years 70–99 are
    /// 19xx, 00–69 are 20xx) or asctime, as RFC 9110 requires recipients to accept.
    pub fn parse(value: &str) -> Result<Self, RetryAfterError> {
        let v = value.trim_matches([' ', '\t']);
        let err = |why| RetryAfterError {
            value: value.chars().take(64).collect(),
            why,
        };
        if v.is_empty() {
            return Err(err("empty"));
        }
        if v.bytes().all(|b| b.is_ascii_digit()) {
            let secs = v.bytes().fold(0u64, |acc, b| {
                acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
            });
            return Ok(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        if v.starts_with(['-', '+']) || v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(err("delay-seconds must be a non-negative whole number"));
        }
        parse_http_date(v)
            .map(RetryAfter::At)
            .ok_or_else(|| err("not delay-seconds or an HTTP-date"))
    }

    /// How long to wait from `now`; a date in the past means no wait.
    pub fn delay_from(self, now: Timestamp) -> Duration {
        match self {
            RetryAfter::Delay(d) => d,
            RetryAfter::At(t) => t.saturating_since(now),
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn parse_http_date(v: &str) -> Option<Timestamp> {
    let parts: Vec<&str> = v.split(' ').filter(|p| !p.is_empty()).collect();
    let (year, month, day, time) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [wd, d, mon, y, t, "GMT"] if wd.strip_suffix(',').is_some_and(|w| DAYS.contains(&w)) => {
            (num(y, 4)?, month(mon)?, num(d, 2)?, *t)
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [wd, dmy, t, "GMT"] if wd.strip_suffix(',').is_some_and(|w| LONG_DAYS.contains(&w)) => {
            let mut it = dmy.split('-');
            let (d, mon, yy) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() {
                return None;
            }
            let yy = num(yy, 2)?;
            (if yy < 70 { 2000 + yy } else { 1900 + yy }, month(mon)?, num(d, 2)?, *t)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [wd, mon, d, t, y] if DAYS.contains(wd) && (1..=2).contains(&d.len()) => {
            (num(y, 4)?, month(mon)?, d.parse().ok()?, *t)
        }
        _ => return None,
    };
    let mut hms = time.split(':');
    let (h, m, s) = (num(hms.next()?, 2)?, num(hms.next()?, 2)?, num(hms.next()?, 2)?);
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 || year < 1970 {
        return None;
    }
    if day == 0 || day > days_in_month(year as i64, month) {
        return None;
    }
    let days = days_from_civil(year as i64, month, day as u32);
    let secs = days as u64 * 86_400 + h * 3600 + m * 60 + s.min(59);
    Some(Timestamp::from_secs(secs))
}

fn num(s: &str, digits: usize) -> Option<u64> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn month(s: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == s).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_6_1994: Timestamp = Timestamp::from_secs(784_111_777);

    #[test]
    fn parses_delay_seconds() {
        assert_eq!(
            RetryAfter::parse("120"),
            Ok(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert_eq!(RetryAfter::parse(" 0 "), Ok(RetryAfter::Delay(Duration::ZERO)));
    }

    #[test]
    fn huge_delay_saturates_instead_of_failing() {
        let v = RetryAfter::parse("99999999999999999999999999").unwrap();
        assert_eq!(v, RetryAfter::Delay(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn parses_all_three_http_date_forms() {
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(RetryAfter::parse(v), Ok(RetryAfter::At(NOV_6_1994)), "{v}");
        }
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        let later = NOV_6_1994.saturating_add(Duration::from_secs(10));
        assert_eq!(RetryAfter::At(NOV_6_1994).delay_from(later), Duration::ZERO);
        assert_eq!(RetryAfter::At(later).delay_from(NOV_6_1994), Duration::from_secs(10));
    }

    #[test]
    fn rejects_fractions_signs_and_garbage() {
        for v in [
            "",
            "1.5",
            "-1",
            "+5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
        ] {
            let e = RetryAfter::parse(v).unwrap_err();
            assert!(e.to_string().starts_with("invalid Retry-After"), "{v}: {e}");
        }
    }
}
