//! A small explicit binary codec for the stable formats of this crate (records, locks,
//! descriptors, commands). Integers are fixed-width big-endian; byte strings carry a u32 length.
//! Every top-level format starts with its own version byte, checked on decode.

use std::io;

/// Appends values to a byte buffer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// A writer whose buffer starts with a format version byte.
    pub fn versioned(version: u8) -> Writer {
        Writer(vec![version])
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("byte strings are limited far below 4 GiB");
        self.u32(len);
        self.0.extend_from_slice(v);
        self
    }

    pub fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(v) => self.u8(1).bytes(v),
            None => self.u8(0),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads values from the front of a byte slice; every read fails cleanly on truncated input.
pub struct Reader<'a>(pub &'a [u8]);

/// The error returned for malformed stored or received data.
pub fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed {what}"))
}

impl<'a> Reader<'a> {
    /// A reader over `buf` that first checks the format version byte.
    pub fn versioned(buf: &'a [u8], version: u8, what: &str) -> io::Result<Reader<'a>> {
        match buf.split_first() {
            Some((&v, rest)) if v == version => Ok(Reader(rest)),
            Some((&v, _)) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what}: unsupported format version {v} (expected {version})"),
            )),
            None => Err(corrupt(what)),
        }
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("encoding (truncated)"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn bool(&mut self) -> io::Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("bool")),
        }
    }

    pub fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    pub fn opt_bytes(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err(corrupt("option")),
        }
    }

    /// Reads a u32 count followed by that many items.
    pub fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> io::Result<T>,
    ) -> io::Result<Vec<T>> {
        let n = self.u32()? as usize;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Fails unless the whole input was consumed.
    pub fn end(&self, what: &str) -> io::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(corrupt(what))
        }
    }

    /// The unread rest of the input.
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }
}

impl Writer {
    /// Writes a u32 count followed by each item.
    pub fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) -> &mut Self {
        let n = u32::try_from(items.len()).expect("lists are limited far below 4 billion items");
        self.u32(n);
        for i in items {
            item(self, i);
        }
        self
    }
}
