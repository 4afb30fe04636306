//! Frontend messages off the socket: framing, limits and the bodies of the extended protocol.
//!
//! Every message is cut out of the read buffer whole before anything looks inside it, so a
//! malformed body can only ever be read within its own bounds: a client that sends garbage, a
//! truncated or an oversized message gets a [`FrameError`] (which the connection reports as a
//! FATAL 08P01 and closes), never a panic and never a misread of the next message. The limits
//! are PostgreSQL's: 1 GB for the messages that carry data (Query, Parse, Bind, CopyData,
//! FunctionCall, the password family) and 10,000 bytes for everything else, including the
//! start-up packet.

use bytes::{Buf, Bytes, BytesMut};

/// The largest message that carries data (PostgreSQL's `PQ_LARGE_MESSAGE_LIMIT`).
pub(crate) const LARGE_MESSAGE_LIMIT: usize = 0x3fff_ffff;
/// The largest message of any other kind, and of the start-up packet (`PQ_SMALL_MESSAGE_LIMIT`).
pub(crate) const SMALL_MESSAGE_LIMIT: usize = 10_000;

/// The start-up codes that are not a protocol version.
pub(crate) const SSL_REQUEST_CODE: u32 = 80_877_103;
pub(crate) const GSSENC_REQUEST_CODE: u32 = 80_877_104;
pub(crate) const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// The process id and secret key of a CancelRequest packet (length, code, pid, key); None
/// when the packet does not hold them. A longer key (protocol 3.2) never matches a session's
/// 4-byte key.
pub(crate) fn cancel_request(packet: &[u8]) -> Option<(i32, i32)> {
    let pid = packet.get(8..12)?;
    let key = packet.get(12..)?;
    let key: [u8; 4] = key.try_into().ok()?;
    let pid: [u8; 4] = pid.try_into().ok()?;
    Some((i32::from_be_bytes(pid), i32::from_be_bytes(key)))
}

/// Why the byte stream cannot be read as messages any more.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FrameError(pub(crate) String);

/// One whole frontend message: its type byte (0 for a start-up packet) and its body.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    /// For start-up packets, the whole packet including its length; otherwise the body only.
    pub(crate) body: BytesMut,
}

/// The largest length a message of `kind` may declare (None: not a frontend message type).
fn limit(kind: u8) -> Option<usize> {
    match kind {
        b'Q' | b'P' | b'B' | b'd' | b'F' | b'p' => Some(LARGE_MESSAGE_LIMIT),
        b'E' | b'D' | b'C' | b'S' | b'H' | b'X' | b'c' | b'f' => Some(SMALL_MESSAGE_LIMIT),
        _ => None,
    }
}

/// Cuts the next whole message out of `buf`: Ok(None) if more bytes are needed. `startup` says
/// the connection is still in its start-up phase, where packets have no type byte.
pub(crate) fn next_frame(buf: &mut BytesMut, startup: bool) -> Result<Option<Frame>, FrameError> {
    if startup {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if !(8..=SMALL_MESSAGE_LIMIT).contains(&len) {
            return Err(FrameError("invalid length of startup packet".into()));
        }
        if buf.len() < len {
            return Ok(None);
        }
        let body = buf.split_to(len);
        return Ok(Some(Frame { kind: 0, body }));
    }
    if buf.len() < 5 {
        // Reject a bad type byte at once rather than waiting for its length.
        if let Some(&kind) = buf.first()
            && limit(kind).is_none()
        {
            return Err(invalid_type(kind));
        }
        return Ok(None);
    }
    let kind = buf[0];
    let max = limit(kind).ok_or_else(|| invalid_type(kind))?;
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if !(4..=max).contains(&len) {
        return Err(FrameError(format!(
            "invalid message length {len} for message type \"{}\"",
            kind as char
        )));
    }
    if buf.len() < 1 + len {
        buf.reserve(1 + len - buf.len());
        return Ok(None);
    }
    buf.advance(5);
    let body = buf.split_to(len - 4);
    Ok(Some(Frame { kind, body }))
}

fn invalid_type(kind: u8) -> FrameError {
    FrameError(format!("invalid frontend message type {kind}"))
}

/// A reader of one message body that never reads past its end.
pub(crate) struct Body<'a> {
    buf: &'a [u8],
    kind: u8,
}

impl<'a> Body<'a> {
    pub(crate) fn new(kind: u8, buf: &'a [u8]) -> Body<'a> {
        Body { buf, kind }
    }

    fn malformed(&self) -> FrameError {
        FrameError(format!("invalid \"{}\" message format", self.kind as char))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.buf.len() < n {
            return Err(self.malformed());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16, FrameError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// A non-negative 16-bit count.
    pub(crate) fn count(&mut self) -> Result<usize, FrameError> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| self.malformed())
    }

    pub(crate) fn i32(&mut self) -> Result<i32, FrameError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, FrameError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.malformed())?;
        let s = std::str::from_utf8(&self.buf[..end]).map_err(|_| {
            FrameError("invalid byte sequence for encoding \"UTF8\" in a message".into())
        })?;
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// Requires that the whole body was read.
    pub(crate) fn end(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.malformed())
        }
    }
}

/// Parse: a statement to prepare.
#[derive(Debug, PartialEq)]
pub(crate) struct Parse {
    pub(crate) name: String,
    pub(crate) sql: String,
    pub(crate) type_oids: Vec<u32>,
}

/// Bind: a portal over a prepared statement.
#[derive(Debug, PartialEq)]
pub(crate) struct Bind {
    pub(crate) portal: String,
    pub(crate) statement: String,
    pub(crate) param_formats: Vec<i16>,
    pub(crate) params: Vec<Option<Bytes>>,
    pub(crate) result_formats: Vec<i16>,
}

/// Describe and Close: a statement ('S') or a portal ('P') by name.
#[derive(Debug, PartialEq)]
pub(crate) struct Target {
    pub(crate) kind: u8,
    pub(crate) name: String,
}

/// Execute: run (or continue) a portal, returning at most `max_rows` rows (0: all).
#[derive(Debug, PartialEq)]
pub(crate) struct Execute {
    pub(crate) portal: String,
    pub(crate) max_rows: usize,
}

impl Parse {
    pub(crate) fn decode(body: &[u8]) -> Result<Parse, FrameError> {
        let mut b = Body::new(b'P', body);
        let name = b.cstr()?.to_owned();
        let sql = b.cstr()?.to_owned();
        let n = b.count()?;
        let type_oids = (0..n)
            .map(|_| b.i32().map(|oid| oid as u32))
            .collect::<Result<_, _>>()?;
        b.end()?;
        Ok(Parse {
            name,
            sql,
            type_oids,
        })
    }
}

impl Bind {
    pub(crate) fn decode(body: Bytes) -> Result<Bind, FrameError> {
        let mut b = Body::new(b'B', &body);
        let portal = b.cstr()?.to_owned();
        let statement = b.cstr()?.to_owned();
        let n = b.count()?;
        let param_formats = (0..n).map(|_| b.i16()).collect::<Result<Vec<_>, _>>()?;
        let n = b.count()?;
        let mut spans = Vec::with_capacity(n.min(b.buf.len() / 4));
        for _ in 0..n {
            let len = b.i32()?;
            if len < 0 {
                spans.push(None);
                continue;
            }
            let start = body.len() - b.buf.len();
            b.take(len as usize)?;
            spans.push(Some((start, len as usize)));
        }
        let n = b.count()?;
        let result_formats = (0..n).map(|_| b.i16()).collect::<Result<Vec<_>, _>>()?;
        b.end()?;
        let params = spans
            .into_iter()
            .map(|s| s.map(|(start, len)| body.slice(start..start + len)))
            .collect();
        Ok(Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }
}

impl Target {
    pub(crate) fn decode(message: u8, body: &[u8]) -> Result<Target, FrameError> {
        let mut b = Body::new(message, body);
        let kind = b.u8()?;
        let name = b.cstr()?.to_owned();
        b.end()?;
        if kind != b'S' && kind != b'P' {
            return Err(FrameError(format!(
                "invalid {} message subtype {kind}",
                if message == b'D' { "DESCRIBE" } else { "CLOSE" }
            )));
        }
        Ok(Target { kind, name })
    }
}

impl Execute {
    pub(crate) fn decode(body: &[u8]) -> Result<Execute, FrameError> {
        let mut b = Body::new(b'E', body);
        let portal = b.cstr()?.to_owned();
        let max_rows = b.i32()?;
        b.end()?;
        // PostgreSQL treats a negative limit like 0: all rows.
        let max_rows = usize::try_from(max_rows).unwrap_or(0);
        Ok(Execute { portal, max_rows })
    }
}

/// The body of a Query message: its SQL text.
pub(crate) fn query_text(body: &[u8]) -> Result<&str, FrameError> {
    let mut b = Body::new(b'Q', body);
    let sql = b.cstr()?;
    b.end()?;
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn frames_are_cut_whole() {
        let mut wire = msg(b'S', b"");
        wire.extend(msg(b'Q', b"select 1\0"));
        let mut buf = BytesMut::from(&wire[..wire.len() - 2]);
        let f = next_frame(&mut buf, false).unwrap().unwrap();
        assert_eq!((f.kind, f.body.len()), (b'S', 0));
        assert!(next_frame(&mut buf, false).unwrap().is_none(), "incomplete");
        buf.extend_from_slice(&wire[wire.len() - 2..]);
        let f = next_frame(&mut buf, false).unwrap().unwrap();
        assert_eq!(query_text(&f.body).unwrap(), "select 1");
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_types_and_lengths_are_refused() {
        let mut buf = BytesMut::from(&b"\x00\x01"[..]);
        assert!(next_frame(&mut buf, false).is_err(), "type 0");
        let mut buf = BytesMut::from(&msg(b'Z', b"")[..]);
        assert!(next_frame(&mut buf, false).is_err(), "a backend type");
        let mut buf = BytesMut::from(&b"S\x00\x00\x00\x02"[..]);
        assert!(next_frame(&mut buf, false).is_err(), "length below 4");
        let mut buf = BytesMut::from(&b"Q\x7f\xff\xff\xff"[..]);
        assert!(next_frame(&mut buf, false).is_err(), "over 1 GB");
        let mut buf = BytesMut::from(&b"E\x00\x01\x00\x00"[..]);
        assert!(
            next_frame(&mut buf, false).is_err(),
            "Execute over 10,000 bytes"
        );
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x04"[..]);
        assert!(
            next_frame(&mut buf, true).is_err(),
            "start-up packet too short"
        );
        let mut buf = BytesMut::from(&b"\x01\x00\x00\x00"[..]);
        assert!(
            next_frame(&mut buf, true).is_err(),
            "start-up packet too long"
        );
    }

    #[test]
    fn extended_bodies_decode() {
        let mut body = b"s1\0select $1\0".to_vec();
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&23i32.to_be_bytes());
        let parse = Parse::decode(&body).unwrap();
        assert_eq!(parse.name, "s1");
        assert_eq!(parse.type_oids, vec![23]);

        let mut body = b"p\0s1\0".to_vec();
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"42");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        let bind = Bind::decode(Bytes::from(body)).unwrap();
        assert_eq!(bind.portal, "p");
        assert_eq!(bind.params, vec![Some(Bytes::from_static(b"42")), None]);
        assert_eq!(bind.param_formats, vec![1]);

        let exec = Execute::decode(b"p\0\x00\x00\x00\x05").unwrap();
        assert_eq!(exec.max_rows, 5);
        let close = Target::decode(b'C', b"Ss1\0").unwrap();
        assert_eq!((close.kind, close.name.as_str()), (b'S', "s1"));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(Parse::decode(b"s1").is_err(), "no terminator");
        assert!(
            Parse::decode(b"s1\0q\0\x00\x05").is_err(),
            "5 oids, none sent"
        );
        assert!(Parse::decode(b"s1\0q\0\xff\xff").is_err(), "negative count");
        let mut body = b"\0\0".to_vec();
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&100i32.to_be_bytes());
        body.extend_from_slice(b"short");
        assert!(
            Bind::decode(Bytes::from(body)).is_err(),
            "value past the end"
        );
        assert!(Execute::decode(b"p\0\x00").is_err());
        assert!(Target::decode(b'D', b"X\0").is_err(), "bad subtype");
        assert!(
            Target::decode(b'D', b"Sname\0extra").is_err(),
            "trailing bytes"
        );
        assert!(query_text(b"\xff\xfe\0").is_err(), "not UTF-8");
    }
}
