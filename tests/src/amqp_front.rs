//! The AMQP front of a conformance [`Receiver`]: a frame-aware proxy between Herald and the
//! real RabbitMQ that records every published message and turns the broker's confirms into
//! the script's verdicts.
//!
//! Client to broker, every byte is forwarded unchanged. On the way the front follows each
//! channel: `confirm.select` starts delivery tags at 1, every `basic.publish` takes the next
//! one, and once a message's content header and body are complete it becomes a
//! [`Received`] (id = `message_id`, method `PUBLISH`, path = routing key, the headers'
//! string values, content type, body) handed to [`Peer::answer`] — before its last frame
//! reaches the broker, so the verdict is known when the broker's ack comes back.
//!
//! Broker to client, every `basic.ack` is split into one per delivery tag and answered by
//! the verdict: accept → the ack; retryable → `basic.nack`; permanent → what RabbitMQ
//! sends for an unroutable mandatory message (`basic.return` 312 `NO_ROUTE` with the
//! message's content header and body, in frames within the negotiated `frame_max`, then
//! the ack); never → nothing. A scripted delay sends it later (clients accept confirms out
//! of order); a delayed confirm for a channel closed and opened again since is dropped.
//! Everything else passes through.
//!
//! Each receiver publishes to an exchange of its own with a queue bound for every routing
//! key ([`Routed`]), so the real broker routes and confirms. A receiver started again on
//! the same port (after a simulated outage) gets the same exchange, which lives until the
//! test process ends; the broker then deletes queue and exchange.

use std::collections::{BTreeMap, HashMap};
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::amqp_wire::{self as wire, ContentHeader, Frame, Publish};
use crate::brokers;
use crate::rabbitmq::Routed;
use crate::receiver::{Answer, Peer, Received, Receiver, Script, Verdict};

/// The reply RabbitMQ gives with a returned unroutable message.
const NO_ROUTE: (u16, &str) = (312, "NO_ROUTE");

/// Starts an AMQP front on 127.0.0.1:`port` (0: any) answering by `script`;
/// [`Receiver::destination`] is the exchange to publish to.
pub fn receiver(port: u16, script: Script) -> Receiver {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the front's port");
    let port = listener.local_addr().expect("local addr").port();
    let exchange = exchange_for(port);
    Receiver::with_front(listener, script, exchange, |listener, peer| {
        Box::pin(serve(listener, peer))
    })
}

/// The exchange of the front on `port`, declared the first time (on a thread of its own:
/// the caller may be inside any runtime).
fn exchange_for(port: u16) -> String {
    static BY_PORT: Mutex<BTreeMap<u16, Routed>> = Mutex::new(BTreeMap::new());
    let mut by_port = BY_PORT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(routed) = by_port.get(&port) {
        return routed.exchange.clone();
    }
    let routed = std::thread::spawn(|| smol::block_on(Routed::declare("herald-conformance", Default::default())))
        .join()
        .expect("declare the front's exchange");
    let exchange = routed.exchange.clone();
    by_port.insert(port, routed);
    exchange
}

/// Accepts connections and proxies each one; dropping the future closes every accepted
/// connection at once (the broker looks gone to the client).
async fn serve(listener: TcpListener, peer: Peer) {
    let mut open = Open::default();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if let Ok(client) = open.track(client) {
            tokio::spawn(proxy(client, peer.clone()));
        }
    }
}

/// Clones of the accepted sockets, shut down when the front stops: a task that is merely
/// cancelled may close its socket later than the test expects.
#[derive(Default)]
struct Open(Vec<std::net::TcpStream>);

impl Open {
    fn track(&mut self, stream: TcpStream) -> std::io::Result<TcpStream> {
        let stream = stream.into_std()?;
        self.0.push(stream.try_clone()?);
        TcpStream::from_std(stream)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        for stream in &self.0 {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

async fn proxy(client: TcpStream, peer: Peer) {
    let Ok(server) = TcpStream::connect(brokers::RABBITMQ).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_read, client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let state = Arc::new(Mutex::new(Connection::default()));
    let (to_client, outbox) = unbounded_channel();
    let writer = tokio::spawn(write_out(client_write, outbox));
    let up = async {
        let mut protocol_header = [0u8; 8];
        if client_read.read_exact(&mut protocol_header).await.is_err()
            || server_write.write_all(&protocol_header).await.is_err()
        {
            return;
        }
        while let Some(frame) = Frame::read(&mut client_read).await {
            lock(&state).follow_client_frame(&frame, &peer);
            if server_write
                .write_all(&Frame::encode(frame.kind, frame.channel, &frame.payload))
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let down = async {
        while let Some(frame) = Frame::read(&mut server_read).await {
            let outputs = lock(&state).answer_server_frame(frame);
            for out in outputs {
                send(out, &to_client, &state);
            }
        }
    };
    futures_lite::future::or(up, down).await;
    // Let what is queued reach the client, then close.
    drop(to_client);
    let abort = writer.abort_handle();
    let _ = tokio::time::timeout(Duration::from_millis(200), writer).await;
    abort.abort();
}

async fn write_out(mut to: impl AsyncWrite + Unpin, mut outbox: UnboundedReceiver<Vec<u8>>) {
    while let Some(bytes) = outbox.recv().await {
        if to.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

fn send(out: Out, to_client: &UnboundedSender<Vec<u8>>, state: &Arc<Mutex<Connection>>) {
    if out.delay.is_zero() {
        let _ = to_client.send(out.bytes);
        return;
    }
    let (to_client, state) = (to_client.clone(), state.clone());
    tokio::spawn(async move {
        tokio::time::sleep(out.delay).await;
        if lock(&state).epoch(out.channel) == Some(out.epoch) {
            let _ = to_client.send(out.bytes);
        }
    });
}

fn lock(state: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bytes for the client, now or after a delay, for one incarnation of a channel.
struct Out {
    delay: Duration,
    channel: u16,
    epoch: u64,
    bytes: Vec<u8>,
}

/// What the front knows of one connection.
#[derive(Default)]
struct Connection {
    /// `frame_max` from `connection.tune-ok` (0: none negotiated yet, no limit).
    frame_max: u32,
    channels: HashMap<u16, ChannelState>,
    epochs: u64,
}

#[derive(Default)]
struct ChannelState {
    /// Which opening of the channel id this is.
    epoch: u64,
    confirming: bool,
    /// Delivery tags given so far (the last one).
    published: u64,
    /// Confirms not yet answered, by delivery tag.
    pending: BTreeMap<u64, Settle>,
    incoming: Option<Incoming>,
}

/// A message being published: method seen, header and body arriving.
struct Incoming {
    tag: Option<u64>,
    publish: Publish,
    header: Option<(Vec<u8>, ContentHeader)>,
    body: Vec<u8>,
}

/// How to answer the broker's confirm of one delivery tag.
struct Settle {
    delay: Duration,
    verdict: Verdict,
    /// For a permanent verdict: the message to return.
    returned: Option<(Publish, Vec<u8>, Vec<u8>)>,
}

impl Connection {
    fn epoch(&self, channel: u16) -> Option<u64> {
        self.channels.get(&channel).map(|c| c.epoch)
    }

    /// Follows a frame on its way to the broker; a completed publish is answered by `peer`.
    fn follow_client_frame(&mut self, frame: &Frame, peer: &Peer) {
        match frame.kind {
            wire::METHOD => match frame.method() {
                Some(wire::TUNE_OK) => {
                    let mut args = frame.arguments();
                    let _channel_max = args.u16();
                    self.frame_max = args.u32().unwrap_or(0);
                }
                Some(wire::CHANNEL_OPEN) => {
                    self.epochs += 1;
                    let epoch = self.epochs;
                    self.channels.insert(
                        frame.channel,
                        ChannelState {
                            epoch,
                            ..ChannelState::default()
                        },
                    );
                }
                Some(wire::CONFIRM_SELECT) => self.channel(frame.channel).confirming = true,
                Some(wire::PUBLISH) => {
                    let channel = self.channel(frame.channel);
                    let tag = channel.confirming.then(|| {
                        channel.published += 1;
                        channel.published
                    });
                    channel.incoming = Publish::decode(frame).map(|publish| Incoming {
                        tag,
                        publish,
                        header: None,
                        body: Vec::new(),
                    });
                }
                _ => {}
            },
            wire::HEADER => {
                let channel = self.channel(frame.channel);
                if let Some(incoming) = channel.incoming.as_mut() {
                    let decoded = ContentHeader::decode(&frame.payload).unwrap_or_default();
                    let empty = decoded.body_size == 0;
                    incoming.header = Some((frame.payload.clone(), decoded));
                    if empty {
                        channel.complete(peer);
                    }
                }
            }
            wire::BODY => {
                let channel = self.channel(frame.channel);
                if let Some(incoming) = channel.incoming.as_mut() {
                    incoming.body.extend_from_slice(&frame.payload);
                    let size = incoming.header.as_ref().map_or(0, |(_, h)| h.body_size);
                    if incoming.body.len() as u64 >= size {
                        channel.complete(peer);
                    }
                }
            }
            _ => {}
        }
    }

    /// What to send the client for a frame from the broker.
    fn answer_server_frame(&mut self, frame: Frame) -> Vec<Out> {
        let now = |bytes| Out {
            delay: Duration::ZERO,
            channel: 0,
            epoch: 0,
            bytes,
        };
        let frame_max = self.frame_max;
        match frame.method() {
            Some(wire::ACK) => {
                let mut args = frame.arguments();
                let (Some(tag), Some(bits)) = (args.u64(), args.u8()) else {
                    return vec![now(Frame::encode(frame.kind, frame.channel, &frame.payload))];
                };
                let channel_id = frame.channel;
                let channel = self.channel(channel_id);
                let tags: Vec<u64> = match (bits & 1 == 1, tag) {
                    (false, _) => vec![tag],
                    (true, 0) => channel.pending.keys().copied().collect(),
                    (true, _) => channel.pending.range(..=tag).map(|(t, _)| *t).collect(),
                };
                let epoch = channel.epoch;
                tags.into_iter()
                    .filter_map(|t| {
                        let Some(settle) = channel.pending.remove(&t) else {
                            return Some(now(wire::ack(channel_id, t)));
                        };
                        let bytes = match (settle.verdict, settle.returned) {
                            (Verdict::Accept, _) => wire::ack(channel_id, t),
                            (Verdict::Retryable(_), _) => wire::nack(channel_id, t),
                            (Verdict::Permanent(_), Some((publish, header, body))) => {
                                let mut bytes =
                                    wire::returned(channel_id, NO_ROUTE, &publish, &header, &body, frame_max);
                                bytes.extend(wire::ack(channel_id, t));
                                bytes
                            }
                            (Verdict::Permanent(_), None) => wire::ack(channel_id, t),
                            (Verdict::Never, _) => return None,
                        };
                        Some(Out {
                            delay: settle.delay,
                            channel: channel_id,
                            epoch,
                            bytes,
                        })
                    })
                    .collect()
            }
            Some(wire::NACK) => {
                let mut args = frame.arguments();
                if let (Some(tag), Some(bits)) = (args.u64(), args.u8()) {
                    let channel = self.channel(frame.channel);
                    if bits & 1 == 1 {
                        channel.pending.retain(|t, _| tag != 0 && *t > tag);
                    } else {
                        channel.pending.remove(&tag);
                    }
                }
                vec![now(Frame::encode(frame.kind, frame.channel, &frame.payload))]
            }
            _ => vec![now(Frame::encode(frame.kind, frame.channel, &frame.payload))],
        }
    }

    fn channel(&mut self, id: u16) -> &mut ChannelState {
        self.channels.entry(id).or_default()
    }
}

impl ChannelState {
    /// The message is complete: record it, ask for the verdict, keep it for the confirm.
    fn complete(&mut self, peer: &Peer) {
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        let (header_bytes, header) = incoming.header.unwrap_or_default();
        let received = Received {
            id: header.message_id.unwrap_or_default(),
            method: "PUBLISH".to_owned(),
            path: incoming.publish.routing_key.clone(),
            timestamp: header.timestamp.map(|t| t.to_string()).unwrap_or_default(),
            content_type: header.content_type.unwrap_or_default(),
            headers: header.headers,
            body: incoming.body.clone(),
            signature_ok: None,
            answer: Answer::Status(0),
        };
        let (delay, verdict) = peer.answer(received).verdict();
        if let Some(tag) = incoming.tag {
            let returned =
                matches!(verdict, Verdict::Permanent(_)).then(|| (incoming.publish, header_bytes, incoming.body));
            self.pending.insert(
                tag,
                Settle {
                    delay,
                    verdict,
                    returned,
                },
            );
        }
    }
}
