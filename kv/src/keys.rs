//! Keys: the one ordered keyspace and its typed top-level spaces.
//!
//! Every key starts with a tag byte that orders the spaces `local < sys < sql < kv`. Variable-length
//! components are escaped and terminated ([`encode_bytes`]) so that no encoded component is a
//! prefix of another, and numeric ids are fixed-width big-endian. [`Key`] is the typed form;
//! [`Key::decode`] turns raw bytes back into it for logs, errors and debug tools.

use std::fmt;

/// Tag of range-local keys: `<local> <escaped range start key> <suffix>`.
pub const TAG_LOCAL: u8 = 0x01;
/// Tag of cluster metadata: range directory, catalog, settings.
pub const TAG_SYS: u8 = 0x02;
/// Tag of SQL rows and index entries: `<sql> <table_id u32> <index_id u32> <columns...>`.
pub const TAG_SQL: u8 = 0x03;
/// Tag of raw KV API data: `<kv> <escaped tenant> <escaped user key>`.
pub const TAG_KV: u8 = 0x04;

/// Sys sub-space: range directory entries `<sys> 0x01 <escaped end key>` → descriptor.
pub const SYS_RANGES: u8 = 0x01;
/// Sys sub-space: SQL catalog `<sys> 0x02 <catalog key>` (the SQL layer owns the suffix).
pub const SYS_CATALOG: u8 = 0x02;

/// Sys key: the next range id (u64 big-endian), `<sys> 0x03`.
pub const SYS_RANGE_ID_COUNTER: u8 = 0x03;

/// The key of the next range id.
pub fn range_id_counter_key() -> Vec<u8> {
    vec![TAG_SYS, SYS_RANGE_ID_COUNTER]
}

/// Sys sub-space: the node directory, `<sys> 0x04 <node_id u64>` → the node's record.
pub const SYS_NODES: u8 = 0x04;
/// Sys key: the next node id (u64 big-endian), `<sys> 0x05`.
pub const SYS_NODE_ID_COUNTER: u8 = 0x05;

/// The key of the next node id.
pub fn node_id_counter_key() -> Vec<u8> {
    vec![TAG_SYS, SYS_NODE_ID_COUNTER]
}

/// The node directory entry of `node_id`.
pub fn node_key(node_id: u64) -> Vec<u8> {
    let mut k = vec![TAG_SYS, SYS_NODES];
    k.extend_from_slice(&node_id.to_be_bytes());
    k
}

/// Sys key prefix: each node's oldest live transaction, `<sys> 0x06 <node_id u64 BE>` (what
/// GC's safe point must stay below on every node).
pub const SYS_OLDEST_ACTIVE: u8 = 0x06;

/// The key of `node_id`'s published oldest live transaction.
pub fn oldest_active_key(node_id: u64) -> Vec<u8> {
    let mut k = vec![TAG_SYS, SYS_OLDEST_ACTIVE];
    k.extend_from_slice(&node_id.to_be_bytes());
    k
}

/// The span of every node's published oldest live transaction.
pub fn oldest_active_span() -> (Vec<u8>, Vec<u8>) {
    (
        vec![TAG_SYS, SYS_OLDEST_ACTIVE],
        vec![TAG_SYS, SYS_OLDEST_ACTIVE + 1],
    )
}

/// The span of the range directory.
pub fn directory_span() -> (Vec<u8>, Vec<u8>) {
    (vec![TAG_SYS, SYS_RANGES], vec![TAG_SYS, SYS_RANGES + 1])
}

/// The span of the node directory.
pub fn node_span() -> (Vec<u8>, Vec<u8>) {
    (vec![TAG_SYS, SYS_NODES], vec![TAG_SYS, SYS_NODES + 1])
}

/// Range-local suffix: the range descriptor copy (the split/merge trigger key).
pub const LOCAL_DESCRIPTOR: u8 = 0x01;

/// The smallest key (the start of range 1).
pub const KEY_MIN: &[u8] = &[];
/// A key greater than every key the system stores (the end of the last range).
pub const KEY_MAX: &[u8] = &[0xFF];

/// Escape byte sequence for 0x00 inside a component.
const ESCAPE: [u8; 2] = [0x00, 0xFF];
/// Terminator of an escaped component.
const TERMINATOR: [u8; 2] = [0x00, 0x01];

/// Appends `bytes` escaped (`0x00` → `0x00 0xFF`) and terminated (`0x00 0x01`).
///
/// The encoding preserves byte order, and no encoding is a prefix of another's encoding.
pub fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        if b == 0x00 {
            out.extend_from_slice(&ESCAPE);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&TERMINATOR);
}

/// Decodes one escaped, terminated component from the front of `input`, returning it and the
/// rest of the input; `None` if the input is not a valid encoding.
pub fn decode_bytes(input: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    // Runs of plain bytes are copied whole; only a zero byte needs a look at its successor.
    while let Some(zero) = rest.iter().position(|&b| b == 0x00) {
        out.extend_from_slice(&rest[..zero]);
        match rest.get(zero + 1)? {
            0xFF => {
                out.push(0x00);
                rest = &rest[zero + 2..];
            }
            0x01 => return Some((out, &rest[zero + 2..])),
            _ => return None,
        }
    }
    None
}

/// The smallest key strictly greater than `key` (appends a zero byte).
pub fn next_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(0x00);
    k
}

/// The smallest key greater than every key with prefix `prefix` (None if there is none).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A typed key. Encodes to bytes whose order matches the order of the variants and their fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// A range-local key of the range starting at `range_start`.
    Local { range_start: Vec<u8>, suffix: u8 },
    /// A range directory entry, keyed by the range's end key.
    RangeDirectory { end_key: Vec<u8> },
    /// A catalog entry; `suffix` is owned by the SQL layer.
    Catalog { suffix: Vec<u8> },
    /// A SQL row or index entry; `columns` is the SQL layer's order-preserving encoding.
    Sql {
        table_id: u32,
        index_id: u32,
        columns: Vec<u8>,
    },
    /// A raw KV API key of a tenant.
    Kv { tenant: Vec<u8>, key: Vec<u8> },
}

impl Key {
    /// Encodes the key to its ordered byte form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Key::Local {
                range_start,
                suffix,
            } => {
                out.push(TAG_LOCAL);
                encode_bytes(&mut out, range_start);
                out.push(*suffix);
            }
            Key::RangeDirectory { end_key } => {
                out.extend_from_slice(&[TAG_SYS, SYS_RANGES]);
                encode_bytes(&mut out, end_key);
            }
            Key::Catalog { suffix } => {
                out.extend_from_slice(&[TAG_SYS, SYS_CATALOG]);
                out.extend_from_slice(suffix);
            }
            Key::Sql {
                table_id,
                index_id,
                columns,
            } => {
                out.extend_from_slice(&sql_index_prefix(*table_id, *index_id));
                out.extend_from_slice(columns);
            }
            Key::Kv { tenant, key } => {
                out.push(TAG_KV);
                encode_bytes(&mut out, tenant);
                encode_bytes(&mut out, key);
            }
        }
        out
    }

    /// Decodes raw key bytes; `None` if they are not a key of any known space.
    pub fn decode(raw: &[u8]) -> Option<Key> {
        let (&tag, rest) = raw.split_first()?;
        match tag {
            TAG_LOCAL => {
                let (range_start, rest) = decode_bytes(rest)?;
                match rest {
                    [suffix] => Some(Key::Local {
                        range_start,
                        suffix: *suffix,
                    }),
                    _ => None,
                }
            }
            TAG_SYS => {
                let (&sub, rest) = rest.split_first()?;
                match sub {
                    SYS_RANGES => {
                        let (end_key, rest) = decode_bytes(rest)?;
                        rest.is_empty().then_some(Key::RangeDirectory { end_key })
                    }
                    SYS_CATALOG => Some(Key::Catalog {
                        suffix: rest.to_vec(),
                    }),
                    _ => None,
                }
            }
            TAG_SQL => {
                if rest.len() < 8 {
                    return None;
                }
                let table_id = u32::from_be_bytes(rest[0..4].try_into().ok()?);
                let index_id = u32::from_be_bytes(rest[4..8].try_into().ok()?);
                Some(Key::Sql {
                    table_id,
                    index_id,
                    columns: rest[8..].to_vec(),
                })
            }
            TAG_KV => {
                let (tenant, rest) = decode_bytes(rest)?;
                let (key, rest) = decode_bytes(rest)?;
                rest.is_empty().then_some(Key::Kv { tenant, key })
            }
            _ => None,
        }
    }
}

/// `<sql> <table_id> <index_id>`: the prefix of every entry of one index of a table.
pub fn sql_index_prefix(table_id: u32, index_id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(TAG_SQL);
    out.extend_from_slice(&table_id.to_be_bytes());
    out.extend_from_slice(&index_id.to_be_bytes());
    out
}

/// `<sys> <catalog>`: the prefix of every catalog key.
pub fn catalog_prefix() -> Vec<u8> {
    vec![TAG_SYS, SYS_CATALOG]
}

/// The start of the `sql` space, which is the end of range 1 and the start of range 2 at bootstrap.
pub fn sql_start() -> Vec<u8> {
    vec![TAG_SQL]
}

/// The range-local key that a range's descriptor copy is written to (it routes to that range).
pub fn range_descriptor_key(range_start: &[u8]) -> Vec<u8> {
    Key::Local {
        range_start: range_start.to_vec(),
        suffix: LOCAL_DESCRIPTOR,
    }
    .encode()
}

/// The key whose range a raw key is routed to: range-local keys route to the range containing
/// the start key they embed; every other key routes to itself.
pub fn routing_key(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if raw.first() == Some(&TAG_LOCAL)
        && let Some((start, _)) = decode_bytes(&raw[1..])
    {
        return std::borrow::Cow::Owned(start);
    }
    std::borrow::Cow::Borrowed(raw)
}

/// A readable form of raw key bytes for logs, errors and debug tools.
pub struct Pretty<'a>(pub &'a [u8]);

impl fmt::Display for Pretty<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
            f.write_str("\"")?;
            for c in b.escape_ascii() {
                write!(f, "{}", c as char)?;
            }
            f.write_str("\"")
        }
        if self.0.is_empty() {
            return f.write_str("/Min");
        }
        if self.0 == KEY_MAX {
            return f.write_str("/Max");
        }
        match Key::decode(self.0) {
            Some(Key::Local {
                range_start,
                suffix,
            }) => {
                write!(f, "/Local/Range/{}/{suffix}", Pretty(&range_start))
            }
            Some(Key::RangeDirectory { end_key }) => {
                write!(f, "/Sys/Ranges/{}", Pretty(&end_key))
            }
            Some(Key::Catalog { suffix }) => {
                f.write_str("/Sys/Catalog/")?;
                bytes(f, &suffix)
            }
            Some(Key::Sql {
                table_id,
                index_id,
                columns,
            }) => {
                write!(f, "/Table/{table_id}/{index_id}")?;
                if !columns.is_empty() {
                    f.write_str("/")?;
                    bytes(f, &columns)?;
                }
                Ok(())
            }
            Some(Key::Kv { tenant, key }) => {
                f.write_str("/Kv/")?;
                bytes(f, &tenant)?;
                f.write_str("/")?;
                bytes(f, &key)
            }
            None => bytes(f, self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_key() -> impl Strategy<Value = Key> {
        let bytes = || {
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()],
                0..6,
            )
        };
        prop_oneof![
            (bytes(), any::<u8>()).prop_map(|(range_start, suffix)| Key::Local {
                range_start,
                suffix
            }),
            bytes().prop_map(|end_key| Key::RangeDirectory { end_key }),
            bytes().prop_map(|suffix| Key::Catalog { suffix }),
            (0u32..3, 0u32..3, bytes()).prop_map(|(table_id, index_id, columns)| Key::Sql {
                table_id,
                index_id,
                columns
            }),
            (bytes(), bytes()).prop_map(|(tenant, key)| Key::Kv { tenant, key }),
        ]
    }

    proptest! {
        /// Encoded order equals logical order, and encodings round-trip.
        #[test]
        fn encoded_order_is_logical_order(a in any_key(), b in any_key()) {
            let (ea, eb) = (a.encode(), b.encode());
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb), "{:?} vs {:?}", a, b);
            prop_assert_eq!(Key::decode(&ea), Some(a));
        }

        /// Escaped components keep byte order, including components that prefix one another,
        /// and no encoding is a prefix of another's.
        #[test]
        fn escaped_bytes_order(a in proptest::collection::vec(any::<u8>(), 0..8),
                               b in proptest::collection::vec(any::<u8>(), 0..8)) {
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            encode_bytes(&mut ea, &a);
            encode_bytes(&mut eb, &b);
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            if a != b {
                prop_assert!(!ea.starts_with(&eb) && !eb.starts_with(&ea));
            }
            prop_assert_eq!(decode_bytes(&ea), Some((a, &[][..])));
        }
    }

    #[test]
    fn tenant_components_do_not_collide() {
        let a = Key::Kv {
            tenant: b"a/b".to_vec(),
            key: b"c".to_vec(),
        }
        .encode();
        let b = Key::Kv {
            tenant: b"a".to_vec(),
            key: b"b/c".to_vec(),
        }
        .encode();
        assert_ne!(a, b);
        let c = Key::Kv {
            tenant: b"a\0".to_vec(),
            key: b"x".to_vec(),
        }
        .encode();
        let d = Key::Kv {
            tenant: b"a".to_vec(),
            key: b"\0x".to_vec(),
        }
        .encode();
        assert_ne!(c, d);
    }

    #[test]
    fn spaces_are_ordered_and_prefixes_hold() {
        let local = Key::Local {
            range_start: vec![0xFF; 3],
            suffix: 0xFF,
        }
        .encode();
        let sys = Key::RangeDirectory { end_key: vec![] }.encode();
        let sql = Key::Sql {
            table_id: 0,
            index_id: 0,
            columns: vec![],
        }
        .encode();
        let kv = Key::Kv {
            tenant: vec![],
            key: vec![],
        }
        .encode();
        assert!(local < sys && sys < sql && kv > sql);
        assert!(sys < sql_start() && sql_start() <= sql);
        assert!(kv.as_slice() < KEY_MAX);
        let row = Key::Sql {
            table_id: 7,
            index_id: 1,
            columns: vec![1, 2],
        }
        .encode();
        assert!(row.starts_with(&sql_index_prefix(7, 1)));
        let cat = Key::Catalog {
            suffix: b"t".to_vec(),
        }
        .encode();
        assert!(cat.starts_with(&catalog_prefix()));
    }

    #[test]
    fn routing_of_range_local_keys() {
        let k = range_descriptor_key(b"\x03abc");
        assert_eq!(&*routing_key(&k), b"\x03abc");
        assert_eq!(&*routing_key(b"\x03x"), b"\x03x");
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
        assert_eq!(
            Pretty(&range_descriptor_key(b"")).to_string(),
            "/Local/Range//Min/1"
        );
    }
}
