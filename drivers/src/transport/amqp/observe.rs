//! What the broker said, as facts for the core: a confirm, a nack, a returned message, a
//! closed channel or connection. No decision is made here beyond naming the fact; the
//! core's classifier decides what is retried.
//!
//! | broker | observation |
//! |---|---|
//! | `basic.ack` | `Acknowledged` |
//! | `basic.nack` | `Refused { retryable: true, reason: "nack" }` |
//! | `basic.return` (mandatory, no queue bound) | `Refused { retryable: false, reason: "unroutable" }` |
//! | channel closed: 404 (no such exchange) | `Refused { retryable: false, reason: "no_exchange" }` |
//! | 403 / 530 (access refused, vhost not allowed) | `Refused { retryable: false, reason: "access_refused" }` |
//! | channel closed: 406 (e.g. message over the broker's size limit) | `Refused { retryable: false, reason: "precondition_failed" }` |
//! | other channel errors | `Refused { retryable: true, reason: "channel_error" }` |
//! | no connection (refused, unreachable) | `Network(Connect)` (`Tls` for a TLS failure) |
//! | connection lost, forced closed, missed heartbeats | `Network(Reset)` |

use herald_core::{AttemptReport, NetworkError, Observation};
use lapin::message::BasicReturnMessage;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::{Confirmation, ErrorKind};

/// When the error happened: before a connection existed, or on an open one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Opening the connection (TCP, TLS, AMQP handshake).
    Connecting,
    /// Opening a channel, publishing or waiting for the confirm.
    Publishing,
}

/// The report of a confirm the broker sent.
pub(super) fn confirmation(confirmation: Confirmation) -> AttemptReport {
    match confirmation {
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => unroutable(&returned),
        Confirmation::Ack(None) => AttemptReport::new(Observation::Acknowledged { duplicate: false }),
        Confirmation::Nack(None) => {
            refused(true, "nack").with_detail("the broker could not take responsibility for the message (basic.nack)")
        }
        // Confirms are selected on every channel before it publishes.
        Confirmation::NotRequested => AttemptReport::new(Observation::Network(NetworkError::Other))
            .with_detail("the channel was not in confirm mode"),
    }
}

fn unroutable(returned: &BasicReturnMessage) -> AttemptReport {
    refused(false, "unroutable").with_detail(format!(
        "no queue is bound to exchange {:?} for routing key {:?} (returned: {} {})",
        returned.delivery.exchange.as_str(),
        returned.delivery.routing_key.as_str(),
        returned.reply_code,
        returned.reply_text.as_str(),
    ))
}

/// The report of a lapin error at `stage`. Details are lapin's and the broker's texts,
/// which hold no credentials.
pub(super) fn error(e: &lapin::Error, stage: Stage) -> AttemptReport {
    let network = |kind: NetworkError| AttemptReport::new(Observation::Network(kind)).with_detail(e.to_string());
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let detail = format!("{} {}", amqp.get_id(), amqp.get_message().as_str());
            let report = match amqp.kind() {
                AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => {
                    refused(false, "access_refused")
                }
                AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => refused(false, "no_exchange"),
                AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => refused(false, "precondition_failed"),
                AMQPErrorKind::Soft(_) => refused(true, "channel_error"),
                AMQPErrorKind::Hard(_) => AttemptReport::new(Observation::Network(NetworkError::Reset)),
            };
            report.with_detail(detail)
        }
        ErrorKind::AuthProviderError(_) => refused(false, "access_refused").with_detail(e.to_string()),
        ErrorKind::IOError(io) if stage == Stage::Connecting => {
            if io.kind() == std::io::ErrorKind::InvalidData {
                network(NetworkError::Tls)
            } else {
                network(NetworkError::Connect)
            }
        }
        ErrorKind::IOError(_)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::MissingHeartbeatError => match stage {
            Stage::Connecting => network(NetworkError::Connect),
            Stage::Publishing => network(NetworkError::Reset),
        },
        _ => network(NetworkError::Other),
    }
}

fn refused(retryable: bool, reason: &str) -> AttemptReport {
    AttemptReport::new(Observation::Refused {
        retryable,
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use lapin::protocol::AMQPError;

    use super::*;

    fn protocol(kind: AMQPErrorKind, text: &str) -> lapin::Error {
        ErrorKind::ProtocolError(AMQPError::new(kind, text.into())).into()
    }

    fn refusal(report: &AttemptReport) -> (bool, &str) {
        match &report.observation {
            Observation::Refused { retryable, reason } => (*retryable, reason.as_str()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_ack_is_delivered_and_a_nack_is_retryable() {
        assert_eq!(
            confirmation(Confirmation::Ack(None)).observation,
            Observation::Acknowledged { duplicate: false }
        );
        assert_eq!(refusal(&confirmation(Confirmation::Nack(None))), (true, "nack"));
    }

    #[test]
    fn a_missing_exchange_or_refused_access_is_permanent_with_the_brokers_text() {
        let e = protocol(
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND),
            "NOT_FOUND - no exchange 'x' in vhost '/'",
        );
        let r = error(&e, Stage::Publishing);
        assert_eq!(refusal(&r), (false, "no_exchange"));
        assert_eq!(
            r.detail.as_deref(),
            Some("404 NOT_FOUND - no exchange 'x' in vhost '/'")
        );
        let e = protocol(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED), "ACCESS_REFUSED");
        assert_eq!(refusal(&error(&e, Stage::Connecting)), (false, "access_refused"));
        let e = protocol(AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED), "RESOURCE_LOCKED");
        assert_eq!(refusal(&error(&e, Stage::Publishing)), (true, "channel_error"));
    }

    #[test]
    fn lost_connections_are_resets_and_failed_connects_are_connect_errors() {
        let forced = protocol(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED), "shutdown");
        assert_eq!(
            error(&forced, Stage::Publishing).observation,
            Observation::Network(NetworkError::Reset)
        );
        let refused: lapin::Error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert_eq!(
            error(&refused, Stage::Connecting).observation,
            Observation::Network(NetworkError::Connect)
        );
        let reset: lapin::Error = std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
        assert_eq!(
            error(&reset, Stage::Publishing).observation,
            Observation::Network(NetworkError::Reset)
        );
    }
}
