//! Just enough of AMQP 0-9-1 framing for the test front ([`crate::amqp_front`]): reading
//! frames, decoding the methods and content headers a publisher sends, and encoding the
//! confirms and returns a broker sends back.
//!
//! A frame is `type u8, channel u16, size u32, payload[size], 0xCE`; integers big-endian;
//! a short string is a length byte and bytes; a long string a `u32` length and bytes.

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Method frame.
pub const METHOD: u8 = 1;
/// Content header frame.
pub const HEADER: u8 = 2;
/// Content body frame.
pub const BODY: u8 = 3;
/// The byte that ends every frame.
pub const FRAME_END: u8 = 0xCE;

/// `connection.tune-ok` (class 10, method 31).
pub const TUNE_OK: (u16, u16) = (10, 31);
/// `channel.open` (20, 10).
pub const CHANNEL_OPEN: (u16, u16) = (20, 10);
/// `confirm.select` (85, 10).
pub const CONFIRM_SELECT: (u16, u16) = (85, 10);
/// `basic.publish` (60, 40).
pub const PUBLISH: (u16, u16) = (60, 40);
/// `basic.return` (60, 50).
pub const RETURN: (u16, u16) = (60, 50);
/// `basic.ack` (60, 80).
pub const ACK: (u16, u16) = (60, 80);
/// `basic.nack` (60, 120).
pub const NACK: (u16, u16) = (60, 120);

/// One frame as read.
#[derive(Clone, Debug)]
pub struct Frame {
    /// [`METHOD`], [`HEADER`], [`BODY`] or a heartbeat (8).
    pub kind: u8,
    /// The channel.
    pub channel: u16,
    /// The payload, without the frame end.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Reads one frame; `None` at the end of the stream or on a malformed frame.
    pub async fn read(from: &mut (impl AsyncRead + Unpin)) -> Option<Frame> {
        let mut head = [0u8; 7];
        from.read_exact(&mut head).await.ok()?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let mut payload = vec![0u8; size + 1];
        from.read_exact(&mut payload).await.ok()?;
        if payload.pop() != Some(FRAME_END) {
            return None;
        }
        Some(Frame {
            kind: head[0],
            channel: u16::from_be_bytes([head[1], head[2]]),
            payload,
        })
    }

    /// The frame's bytes on the wire.
    pub fn encode(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        out.push(kind);
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&u32::try_from(payload.len()).expect("frame size").to_be_bytes());
        out.extend_from_slice(payload);
        out.push(FRAME_END);
        out
    }

    /// `(class, method)` of a method frame.
    pub fn method(&self) -> Option<(u16, u16)> {
        if self.kind != METHOD || self.payload.len() < 4 {
            return None;
        }
        let p = &self.payload;
        Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
    }

    /// The method's arguments (after class and method ids).
    pub fn arguments(&self) -> Cursor<'_> {
        Cursor(self.payload.get(4..).unwrap_or_default())
    }
}

/// Reads big-endian fields from a byte slice; every read fails softly (`None`) past the end.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    /// A `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    /// A short string (lossy UTF-8).
    pub fn short_string(&mut self) -> Option<String> {
        let n = usize::from(self.u8()?);
        self.take(n).map(|b| String::from_utf8_lossy(b).into_owned())
    }
    /// A long string's bytes.
    pub fn long_bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A field table: its string values (other types are skipped).
    pub fn table(&mut self) -> Option<Vec<(String, String)>> {
        let mut inner = Cursor(self.long_bytes()?);
        let mut out = Vec::new();
        while !inner.0.is_empty() {
            let key = inner.short_string()?;
            if let Some(value) = inner.field_value()? {
                out.push((key, value));
            }
        }
        Some(out)
    }
    /// One field value: `Some(text)` for strings, `Some(None)` for a skipped other type.
    fn field_value(&mut self) -> Option<Option<String>> {
        let skip = |c: &mut Self, n: usize| c.take(n).map(|_| None);
        match self.u8()? {
            b'S' => self.long_bytes().map(|b| Some(String::from_utf8_lossy(b).into_owned())),
            b's' => self.short_string().map(Some),
            b't' | b'b' | b'B' => skip(self, 1),
            b'U' | b'u' => skip(self, 2),
            b'I' | b'i' | b'f' => skip(self, 4),
            b'L' | b'l' | b'd' | b'T' => skip(self, 8),
            b'D' => skip(self, 5),
            b'V' => Some(None),
            b'F' | b'A' | b'x' => self.long_bytes().map(|_| None),
            _ => None,
        }
    }
}

/// What `basic.publish` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publish {
    /// The exchange.
    pub exchange: String,
    /// The routing key.
    pub routing_key: String,
    /// The mandatory flag.
    pub mandatory: bool,
}

impl Publish {
    /// Decodes the arguments of a `basic.publish` frame.
    pub fn decode(frame: &Frame) -> Option<Publish> {
        let mut c = frame.arguments();
        c.u16()?; // reserved (ticket)
        let exchange = c.short_string()?;
        let routing_key = c.short_string()?;
        let bits = c.u8()?;
        Some(Publish {
            exchange,
            routing_key,
            mandatory: bits & 1 == 1,
        })
    }
}

/// A content header of class basic: the body size and the properties the front reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentHeader {
    /// The size of the body that follows.
    pub body_size: u64,
    /// `content-type`.
    pub content_type: Option<String>,
    /// `headers`, string values.
    pub headers: Vec<(String, String)>,
    /// `delivery-mode`.
    pub delivery_mode: Option<u8>,
    /// `message-id`.
    pub message_id: Option<String>,
    /// `timestamp`, seconds.
    pub timestamp: Option<u64>,
    /// `type`.
    pub kind: Option<String>,
}

impl ContentHeader {
    /// Decodes a content header payload (properties in flag order, bit 15 first).
    pub fn decode(payload: &[u8]) -> Option<ContentHeader> {
        let mut c = Cursor(payload);
        c.u16()?; // class
        c.u16()?; // weight
        let mut h = ContentHeader {
            body_size: c.u64()?,
            ..ContentHeader::default()
        };
        let flags = c.u16()?;
        let has = |bit: u16| flags & (1 << bit) != 0;
        if has(15) {
            h.content_type = Some(c.short_string()?);
        }
        if has(14) {
            c.short_string()?; // content-encoding
        }
        if has(13) {
            h.headers = c.table()?;
        }
        if has(12) {
            h.delivery_mode = Some(c.u8()?);
        }
        if has(11) {
            c.u8()?; // priority
        }
        for bit in [10, 9, 8] {
            if has(bit) {
                c.short_string()?; // correlation-id, reply-to, expiration
            }
        }
        if has(7) {
            h.message_id = Some(c.short_string()?);
        }
        if has(6) {
            h.timestamp = Some(c.u64()?);
        }
        if has(5) {
            h.kind = Some(c.short_string()?);
        }
        Some(h)
    }
}

fn short(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(255)];
    out.push(u8::try_from(bytes.len()).expect("at most 255"));
    out.extend_from_slice(bytes);
}

fn method(channel: u16, (class, method): (u16, u16), arguments: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(arguments.len() + 4);
    payload.extend_from_slice(&class.to_be_bytes());
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(arguments);
    Frame::encode(METHOD, channel, &payload)
}

/// `basic.ack` for one delivery tag.
pub fn ack(channel: u16, tag: u64) -> Vec<u8> {
    let mut args = tag.to_be_bytes().to_vec();
    args.push(0);
    method(channel, ACK, &args)
}

/// `basic.nack` for one delivery tag (not requeued).
pub fn nack(channel: u16, tag: u64) -> Vec<u8> {
    let mut args = tag.to_be_bytes().to_vec();
    args.push(0);
    method(channel, NACK, &args)
}

/// What a broker sends for an unroutable mandatory message: `basic.return` with the reply,
/// the message's content header and its body in frames of at most `frame_max` bytes
/// (0: no limit).
pub fn returned(
    channel: u16,
    reply: (u16, &str),
    publish: &Publish,
    header: &[u8],
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let mut args = reply.0.to_be_bytes().to_vec();
    short(&mut args, reply.1);
    short(&mut args, &publish.exchange);
    short(&mut args, &publish.routing_key);
    let mut out = method(channel, RETURN, &args);
    out.extend(Frame::encode(HEADER, channel, header));
    let chunk = match frame_max {
        0 => body.len().max(1),
        n => (n as usize).saturating_sub(8).max(1),
    };
    for piece in body.chunks(chunk) {
        out.extend(Frame::encode(BODY, channel, piece));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_header_gives_its_properties_in_flag_order() {
        let mut p = Vec::new();
        p.extend_from_slice(&60u16.to_be_bytes());
        p.extend_from_slice(&0u16.to_be_bytes());
        p.extend_from_slice(&5u64.to_be_bytes());
        let flags: u16 = (1 << 15) | (1 << 13) | (1 << 12) | (1 << 7) | (1 << 6) | (1 << 5);
        p.extend_from_slice(&flags.to_be_bytes());
        short(&mut p, "application/json");
        let mut table = Vec::new();
        short(&mut table, "tenant");
        table.push(b'S');
        table.extend_from_slice(&4u32.to_be_bytes());
        table.extend_from_slice(b"acme");
        short(&mut table, "n");
        table.push(b'I');
        table.extend_from_slice(&7u32.to_be_bytes());
        p.extend_from_slice(&u32::try_from(table.len()).unwrap().to_be_bytes());
        p.extend_from_slice(&table);
        p.push(2);
        short(&mut p, "evt-1");
        p.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        short(&mut p, "order.created");
        let h = ContentHeader::decode(&p).unwrap();
        assert_eq!(h.body_size, 5);
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
        assert_eq!(h.headers, [("tenant".to_owned(), "acme".to_owned())]);
        assert_eq!(h.delivery_mode, Some(2));
        assert_eq!(h.message_id.as_deref(), Some("evt-1"));
        assert_eq!(h.timestamp, Some(1_700_000_000));
        assert_eq!(h.kind.as_deref(), Some("order.created"));
    }

    #[test]
    fn a_return_splits_the_body_by_frame_max() {
        let publish = Publish {
            exchange: "x".into(),
            routing_key: "k".into(),
            mandatory: true,
        };
        let bytes = returned(1, (312, "NO_ROUTE"), &publish, b"hdr", &[7u8; 20], 18);
        // method + header + two body frames of 10 bytes (18 - 8).
        let mut frames = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let size = u32::from_be_bytes(rest[3..7].try_into().unwrap()) as usize;
            frames.push((rest[0], size));
            rest = &rest[7 + size + 1..];
        }
        assert_eq!(
            frames,
            [(METHOD, 4 + 2 + 9 + 2 + 2), (HEADER, 3), (BODY, 10), (BODY, 10)]
        );
    }
}
