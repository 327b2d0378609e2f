//! What an attempt's result means: delivered, worth retrying, or final.
//!
//! The default table (DESIGN.md §2): 2xx delivered; 408, 425, 429 and every 5xx
//! retryable; network errors and timeouts retryable; everything else — 1xx, 3xx (redirects
//! are never followed), 410 and other 4xx — permanent. A port may override single codes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::{AttemptReport, Observation, ResponseExcerpt};
use crate::time::{Timestamp, duration_millis};

/// The meaning of an attempt's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    /// The destination has the event.
    Delivered,
    /// It may work later: schedule another attempt.
    Retryable,
    /// It will not work: stop now.
    Permanent,
}

/// The judged result of one attempt, as recorded in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    /// Delivered, retryable or permanent.
    pub class: OutcomeClass,
    /// A stable short code: `http_503`, `timeout`, `connect_error`, `acknowledged`,
    /// `interrupted`, ...
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// The earliest retry time the destination asked for (`Retry-After`), resolved
    /// against the attempt's end; not yet clamped by the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Timestamp>,
    /// The start of the response, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseExcerpt>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
}

impl AttemptOutcome {
    /// The outcome recorded for an attempt whose end nobody saw: the process stopped
    /// (crash, or shutdown past its grace) while it was in flight. It may have reached
    /// the destination, so it counts as an attempt, and it is retried.
    pub fn interrupted(why: &str) -> Self {
        AttemptOutcome {
            class: OutcomeClass::Retryable,
            code: "interrupted".to_owned(),
            message: format!("attempt interrupted ({why}); its outcome is unknown"),
            retry_after: None,
            response: None,
            duration_ms: 0,
        }
    }

    /// The outcome of an attempt that reached its deadline without an answer.
    pub fn timed_out(timeout: Duration) -> Self {
        AttemptOutcome {
            class: OutcomeClass::Retryable,
            code: "timeout".to_owned(),
            message: format!(
                "no answer within the attempt timeout of {} ms",
                duration_millis(timeout)
            ),
            retry_after: None,
            response: None,
            duration_ms: duration_millis(timeout),
        }
    }
}

/// Turns [`AttemptReport`]s into [`AttemptOutcome`]s: the default table plus a port's
/// overrides for single HTTP status codes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classifier {
    overrides: BTreeMap<u16, OutcomeClass>,
}

/// An override for a status code that HTTP does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot override the class of HTTP status {0}: status codes are 100 to 599")]
pub struct ClassifierError(pub u16);

/// The default class of an HTTP status code.
pub fn default_http_class(status: u16) -> OutcomeClass {
    match status {
        200..=299 => OutcomeClass::Delivered,
        408 | 425 | 429 | 500..=599 => OutcomeClass::Retryable,
        _ => OutcomeClass::Permanent,
    }
}

impl Classifier {
    /// Treats `status` as `class` on this port (e.g. 404 as retryable while a receiver is
    /// being deployed).
    pub fn with_override(mut self, status: u16, class: OutcomeClass) -> Result<Self, ClassifierError> {
        if !(100..=599).contains(&status) {
            return Err(ClassifierError(status));
        }
        self.overrides.insert(status, class);
        Ok(self)
    }

    /// The class of an HTTP status on this port.
    pub fn http_class(&self, status: u16) -> OutcomeClass {
        self.overrides
            .get(&status)
            .copied()
            .unwrap_or_else(|| default_http_class(status))
    }

    /// Judges one attempt's report; `now` resolves an HTTP-date `Retry-After`.
    pub fn classify(&self, report: AttemptReport, now: Timestamp) -> AttemptOutcome {
        let AttemptReport {
            observation,
            detail,
            response,
            duration,
        } = report;
        let (class, code, mut message, retry_after) = match observation {
            Observation::Http { status, retry_after } => {
                let class = self.http_class(status);
                let retry_after = retry_after
                    .filter(|_| class == OutcomeClass::Retryable)
                    .map(|r| now.saturating_add(r.delay_from(now)));
                (class, format!("http_{status}"), http_message(status), retry_after)
            }
            Observation::Acknowledged { duplicate } => {
                let msg = if duplicate {
                    "acknowledged as a duplicate: the destination already had it"
                } else {
                    "acknowledged"
                };
                (OutcomeClass::Delivered, "acknowledged".to_owned(), msg.to_owned(), None)
            }
            Observation::Refused { retryable, reason } => {
                let class = if retryable {
                    OutcomeClass::Retryable
                } else {
                    OutcomeClass::Permanent
                };
                (
                    class,
                    reason.clone(),
                    format!("refused by the destination: {reason}"),
                    None,
                )
            }
            Observation::Network(kind) => (
                OutcomeClass::Retryable,
                kind.code().to_owned(),
                format!("network error ({})", kind.code().replace('_', " ")),
                None,
            ),
            Observation::TimedOut => (
                OutcomeClass::Retryable,
                "timeout".to_owned(),
                "no answer within the attempt timeout".to_owned(),
                None,
            ),
        };
        if let Some(d) = detail.filter(|d| !d.is_empty()) {
            message.push_str(": ");
            message.push_str(&d);
        }
        AttemptOutcome {
            class,
            code,
            message,
            retry_after,
            response,
            duration_ms: duration_millis(duration),
        }
    }
}

fn http_message(status: u16) -> String {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently (redirects are not followed)",
        302 => "Found (redirects are not followed)",
        307 => "Temporary Redirect (redirects are not followed)",
        308 => "Permanent Redirect (redirects are not followed)",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone: the endpoint asks for no more deliveries",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        425 => "Too Early",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        300..=399 => "redirect (redirects are not followed)",
        _ => "",
    };
    if reason.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NetworkError;
    use crate::retry_after::RetryAfter;

    fn http(status: u16) -> AttemptReport {
        AttemptReport::new(Observation::Http {
            status,
            retry_after: None,
        })
    }

    #[test]
    fn the_default_table_for_every_status_code() {
        let table: Vec<String> = (100u16..=599)
            .map(|s| format!("{s} {:?}", default_http_class(s)))
            .collect();
        insta::assert_snapshot!(table.join("\n"));
    }

    #[test]
    fn gone_is_permanent_and_says_so() {
        let o = Classifier::default().classify(http(410), Timestamp::EPOCH);
        assert_eq!(o.class, OutcomeClass::Permanent);
        assert!(o.message.contains("no more deliveries"), "{}", o.message);
    }

    #[test]
    fn overrides_replace_single_codes() {
        let c = Classifier::default()
            .with_override(404, OutcomeClass::Retryable)
            .unwrap();
        assert_eq!(c.http_class(404), OutcomeClass::Retryable);
        assert_eq!(c.http_class(400), OutcomeClass::Permanent);
        assert_eq!(
            Classifier::default().with_override(600, OutcomeClass::Delivered),
            Err(ClassifierError(600))
        );
    }

    #[test]
    fn retry_after_is_resolved_only_for_retryable_outcomes() {
        let now = Timestamp::from_secs(1000);
        let r = Some(RetryAfter::Delay(Duration::from_secs(30)));
        let o = Classifier::default().classify(
            AttemptReport::new(Observation::Http {
                status: 429,
                retry_after: r,
            }),
            now,
        );
        assert_eq!(o.retry_after, Some(Timestamp::from_secs(1030)));
        let o = Classifier::default().classify(
            AttemptReport::new(Observation::Http {
                status: 400,
                retry_after: r,
            }),
            now,
        );
        assert_eq!(o.retry_after, None);
    }

    #[test]
    fn network_errors_timeouts_and_nacks_are_retryable_and_unroutable_is_permanent() {
        let c = Classifier::default();
        let now = Timestamp::EPOCH;
        for obs in [
            Observation::Network(NetworkError::Connect),
            Observation::Network(NetworkError::Reset),
            Observation::TimedOut,
            Observation::Refused {
                retryable: true,
                reason: "nack".into(),
            },
        ] {
            assert_eq!(
                c.classify(AttemptReport::new(obs.clone()), now).class,
                OutcomeClass::Retryable,
                "{obs:?}"
            );
        }
        let o = c.classify(
            AttemptReport::new(Observation::Refused {
                retryable: false,
                reason: "unroutable".into(),
            }),
            now,
        );
        assert_eq!((o.class, o.code.as_str()), (OutcomeClass::Permanent, "unroutable"));
        let o = c.classify(AttemptReport::new(Observation::Acknowledged { duplicate: true }), now);
        assert_eq!(o.class, OutcomeClass::Delivered);
    }

    #[test]
    fn detail_is_appended_to_the_message() {
        let o = Classifier::default().classify(http(503).with_detail("upstream down"), Timestamp::EPOCH);
        assert_eq!(o.message, "HTTP 503 Service Unavailable: upstream down");
        assert_eq!(o.code, "http_503");
    }
}
