//! One connection per destination, opened lazily and opened again after it is lost, and
//! a pool of confirm-mode channels on it.
//!
//! Each attempt borrows a channel of its own, so a channel has at most one publish in
//! flight: the broker's confirm (and a `basic.return` before it) belongs to that publish
//! without matching delivery tags. A channel goes back to the pool only after its confirm
//! arrived; one whose attempt failed or timed out is dropped, which closes it, so a late
//! confirm can never be taken for another message's.
//!
//! Reconnection is lazy: an attempt that finds the connection closed (lapin marks it so as
//! soon as its IO thread sees the socket fail) opens a new one. There is no background
//! retry loop: with nothing to send, nothing reconnects.

use std::sync::{Arc, Mutex};

use async_lock::Mutex as AsyncMutex;
use herald_core::AttemptReport;
use lapin::options::ConfirmSelectOptions;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties};

use super::observe::{self, Stage};

/// The connection of one destination and its idle channels.
pub(super) struct Link {
    uri: AMQPUri,
    connection: AsyncMutex<Option<Arc<Connection>>>,
    idle: Mutex<Vec<Channel>>,
}

impl Link {
    /// A link to `uri`; nothing is opened until the first attempt.
    pub(super) fn new(uri: AMQPUri) -> Self {
        Link {
            uri,
            connection: AsyncMutex::new(None),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A channel in confirm mode, idle from the pool or newly opened (on a new connection if
    /// the last one is gone). The error is the attempt's report.
    pub(super) async fn channel(&self) -> Result<Channel, AttemptReport> {
        while let Some(channel) = self.lock_idle().pop() {
            if channel.status().connected() {
                return Ok(channel);
            }
        }
        let connection = self.connection().await?;
        let opened = async {
            let channel = connection.create_channel().await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            Ok::<_, lapin::Error>(channel)
        };
        opened.await.map_err(|e| observe::error(&e, Stage::Publishing))
    }

    /// Returns a channel whose publish is settled, for the next attempt.
    pub(super) fn give_back(&self, channel: Channel) {
        if channel.status().connected() {
            self.lock_idle().push(channel);
        }
    }

    /// The open connection, or a new one. Concurrent attempts wait for one connect.
    async fn connection(&self) -> Result<Arc<Connection>, AttemptReport> {
        let mut current = self.connection.lock().await;
        if let Some(connection) = current.as_ref().filter(|c| c.status().connected()) {
            return Ok(connection.clone());
        }
        if current.take().is_some() {
            // Channels of the lost connection are closed with it.
            self.lock_idle().clear();
            tracing::debug!("amqp connection lost; opening a new one");
        }
        let properties = ConnectionProperties::default().with_connection_name("herald".into());
        // The smol runtime kit: lapin's IO runs on its own thread and async-io's reactor,
        // so this works under any executor (see the module docs of `amqp`).
        let connection = Connection::connect_uri_with_runtime(self.uri.clone(), properties, async_rs::Runtime::smol())
            .await
            .map_err(|e| observe::error(&e, Stage::Connecting))?;
        let connection = Arc::new(connection);
        *current = Some(connection.clone());
        Ok(connection)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Channel>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}
