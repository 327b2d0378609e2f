//! Turns what reqwest returned into the facts of an [`AttemptReport`]: a status with its
//! `Retry-After` and the first 4 KiB of the body, or the kind of failure found in the error's
//! source chain. No judgement here: the core's classifier decides what the facts mean.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use herald_core::{AttemptReport, NetworkError, Observation, ResponseExcerpt, RetryAfter};
use reqwest::header::RETRY_AFTER;
use tokio::time::Instant;

use super::ssrf::ForbiddenDestination;

/// Longest wait for the body excerpt once the status is known: the status is the fact that
/// matters, and a receiver that dribbles its body must not turn an answer into a timeout.
const MAX_EXCERPT_WAIT: Duration = Duration::from_secs(2);

/// The report of a response: its status, `Retry-After` and body excerpt. The body is read in
/// chunks and never beyond [`ResponseExcerpt::MAX_BODY`] (+1 byte to know it was longer), until
/// `deadline` at the latest.
pub(crate) async fn response(mut response: reqwest::Response, deadline: Instant) -> AttemptReport {
    let status = response.status().as_u16();
    let mut notes = Vec::new();
    let retry_after = match response.headers().get(RETRY_AFTER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(value)) => RetryAfter::parse(value)
            .map_err(|e| notes.push(format!("{e}; ignored")))
            .ok(),
        Some(Err(_)) => {
            notes.push("Retry-After is not ASCII; ignored".to_owned());
            None
        }
    };

    let wait_until = deadline.min(Instant::now() + MAX_EXCERPT_WAIT);
    let mut body = Vec::new();
    let complete = match tokio::time::timeout_at(wait_until, read_excerpt(&mut response, &mut body)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            notes.push(format!(
                "the response body broke off: {}",
                error_chain(&e.without_url())
            ));
            false
        }
        Err(_) => {
            notes.push("the response body did not arrive in time; the excerpt is partial".to_owned());
            false
        }
    };
    let mut excerpt = ResponseExcerpt::new(status, &body);
    // An unfinished body may have been longer than what we kept.
    excerpt.truncated |= !complete;

    AttemptReport {
        observation: Observation::Http { status, retry_after },
        detail: (!notes.is_empty()).then(|| notes.join("; ")),
        response: Some(excerpt),
        duration: Duration::ZERO,
    }
}

/// Reads chunks into `body` until the end or until it holds one byte more than is kept.
async fn read_excerpt(response: &mut reqwest::Response, body: &mut Vec<u8>) -> Result<(), reqwest::Error> {
    let limit = ResponseExcerpt::MAX_BODY + 1;
    while body.len() < limit {
        match response.chunk().await? {
            Some(chunk) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(())
}

/// The report of a request that got no response.
pub(crate) fn error(err: reqwest::Error) -> AttemptReport {
    // The URL may carry a token in its path or query: keep it out of the history.
    let err = err.without_url();
    if let Some(forbidden) = find::<ForbiddenDestination>(&err) {
        return refused(forbidden);
    }
    let observation = if err.is_timeout() {
        Observation::TimedOut
    } else if err.is_builder() {
        Observation::Refused {
            retryable: false,
            reason: "invalid_request".to_owned(),
        }
    } else {
        Observation::Network(network_kind(&err))
    };
    let detail = match observation {
        Observation::TimedOut => None,
        _ => Some(error_chain(&err)),
    };
    AttemptReport {
        observation,
        detail,
        response: None,
        duration: Duration::ZERO,
    }
}

/// The report of a destination the SSRF guard refused.
pub(crate) fn refused(forbidden: &ForbiddenDestination) -> AttemptReport {
    AttemptReport {
        observation: Observation::Refused {
            retryable: false,
            reason: ForbiddenDestination::REASON.to_owned(),
        },
        detail: Some(forbidden.to_string()),
        response: None,
        duration: Duration::ZERO,
    }
}

/// Which network failure an error is, from the IO error kinds and the phase reqwest reports.
fn network_kind(err: &reqwest::Error) -> NetworkError {
    if err.is_dns() {
        return NetworkError::Dns;
    }
    let kinds: Vec<io::ErrorKind> = chain(err)
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .map(io::Error::kind)
        .collect();
    let text = error_chain(err).to_ascii_lowercase();
    if err.is_connect() {
        // rustls failures surface as `InvalidData` IO errors wrapping the rustls error.
        let tls = kinds.contains(&io::ErrorKind::InvalidData)
            || ["tls", "certificate", "handshake"].iter().any(|w| text.contains(w));
        return if tls { NetworkError::Tls } else { NetworkError::Connect };
    }
    let broken = kinds.iter().any(|k| {
        matches!(
            k,
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    });
    // hyper reports a peer that hung up mid-exchange as "connection closed before message
    // completed" (no IO error underneath).
    if broken || text.contains("connection closed") || text.contains("connection reset") {
        NetworkError::Reset
    } else {
        NetworkError::Other
    }
}

/// An error and its sources. `io::Error::source` skips the error it wraps (it returns that
/// error's source), so the wrapped error is visited explicitly: that is where rustls errors and
/// inner IO error kinds live.
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| {
        match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        }
    })
}

fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    chain(err).find_map(|e| e.downcast_ref::<T>())
}

/// The messages of an error and its sources, joined with `: `, skipping repeats.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(err) {
        let msg = e.to_string();
        if !msg.is_empty() && !parts.last().is_some_and(|last| last.contains(&msg)) {
            parts.push(msg);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] io::Error);

    #[test]
    fn the_error_chain_joins_messages_and_skips_repeats() {
        let e = Outer(io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"));
        assert_eq!(error_chain(&e), "outer: connection refused");
        let e = Outer(io::Error::other("outer"));
        assert_eq!(error_chain(&e), "outer");
    }

    #[test]
    fn the_chain_descends_into_errors_that_io_errors_wrap() {
        #[derive(Debug, thiserror::Error)]
        #[error("bad record")]
        struct Tls;
        let e = Outer(io::Error::other(io::Error::new(io::ErrorKind::InvalidData, Tls)));
        let kinds: Vec<_> = chain(&e)
            .filter_map(|e| e.downcast_ref::<io::Error>())
            .map(io::Error::kind)
            .collect();
        assert_eq!(kinds, [io::ErrorKind::Other, io::ErrorKind::InvalidData]);
        assert!(find::<Tls>(&e).is_some());
        assert_eq!(error_chain(&e), "outer: bad record");
    }

    #[test]
    fn a_typed_refusal_is_found_anywhere_in_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapper")]
        struct Wrapper(#[source] ForbiddenDestination);
        let e = Wrapper(ForbiddenDestination {
            host: "localhost".into(),
            refused: vec![("127.0.0.1".parse().unwrap(), super::super::ssrf::AddressClass::Loopback)],
        });
        let found = find::<ForbiddenDestination>(&e).unwrap();
        assert_eq!(found.host, "localhost");
        let report = refused(found);
        assert_eq!(
            report.observation,
            Observation::Refused {
                retryable: false,
                reason: "destination_forbidden".into()
            }
        );
        assert!(report.detail.unwrap().contains("127.0.0.1: loopback"));
    }
}
