//! Building [`Message`]s exactly as a Haskell sender would, chunks included.
//!
//! Inside an NCMsg a message travels as `toChunks (encode value)`, so the
//! chunk boundaries GHC's builder produces are visible on the wire (capture
//! 02: a 40000-byte strict ByteString is `[8-byte length][40000 bytes]`).
//! [`GhcPut`] models the part of bytestring-0.10.12's `Builder` that
//! decides those boundaries, for the values distributed-process tests send.

use bytes::Bytes;
use dp_wire::dp::{Message, ProcessId, Serializable};
use dp_wire::fingerprint::{Build, Fingerprint};

/// `smallChunkSize`: the first buffer of `toLazyByteString`.
const SMALL_CHUNK: usize = 4096 - 16;
/// `defaultChunkSize`: every later buffer.
const DEFAULT_CHUNK: usize = 32 * 1024 - 16;
/// `maximalCopySize`: longer strict ByteStrings are inserted as their own
/// chunk instead of being copied.
const MAX_COPY: usize = 2 * SMALL_CHUNK;

/// A Data.Binary `Put` that records chunk boundaries like GHC's
/// `toLazyByteStringWith (untrimmedStrategy smallChunkSize defaultChunkSize)`.
#[derive(Debug)]
pub struct GhcPut {
    chunks: Vec<Bytes>,
    buf: Vec<u8>,
    cap: usize,
}

impl Default for GhcPut {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            buf: Vec::new(),
            cap: SMALL_CHUNK,
        }
    }
}

impl GhcPut {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Yields the filled part of the buffer and starts a new one of at
    /// least `min` bytes (`BufferFull` / `wrapChunk`).
    fn next_buffer(&mut self, min: usize) {
        if !self.buf.is_empty() {
            self.chunks.push(Bytes::from(std::mem::take(&mut self.buf)));
        }
        self.cap = min.max(DEFAULT_CHUNK);
    }

    /// A fixed-size primitive (Int64, Word32, a Char's UTF-8, a tag): it
    /// needs contiguous room, so it never straddles two chunks.
    pub fn prim(&mut self, bytes: &[u8]) -> &mut Self {
        if self.cap - self.buf.len() < bytes.len() {
            self.next_buffer(bytes.len());
        }
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `byteStringCopy`: fills the buffer and continues in the next one.
    pub fn copy(&mut self, mut bytes: &[u8]) -> &mut Self {
        while !bytes.is_empty() {
            let room = self.cap - self.buf.len();
            if room == 0 {
                self.next_buffer(1);
                continue;
            }
            let n = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self
    }

    /// `byteStringInsert`: the bytes become a chunk of their own.
    pub fn insert(&mut self, bytes: &[u8]) -> &mut Self {
        if bytes.is_empty() {
            return self;
        }
        let reuse = self.buf.is_empty();
        if !reuse {
            self.chunks.push(Bytes::from(std::mem::take(&mut self.buf)));
            self.cap = DEFAULT_CHUNK;
        }
        self.chunks.push(Bytes::copy_from_slice(bytes));
        self
    }

    /// `put :: Int` (and every Data.Binary length prefix).
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.prim(&v.to_be_bytes())
    }

    /// `put :: Int32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.prim(&v.to_be_bytes())
    }

    /// `put` of a strict (or single-chunk lazy) ByteString: length, then
    /// the bytes copied or inserted by `byteString`'s threshold.
    pub fn bytestring(&mut self, bytes: &[u8]) -> &mut Self {
        self.int(bytes.len() as i64);
        if bytes.len() <= MAX_COPY {
            self.copy(bytes)
        } else {
            self.insert(bytes)
        }
    }

    /// `put :: String`: character count, then each Char's UTF-8.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.int(s.chars().count() as i64);
        let mut b = [0u8; 4];
        for c in s.chars() {
            self.prim(c.encode_utf8(&mut b).as_bytes());
        }
        self
    }

    /// `put :: ProcessId` (NodeId is an EndPointAddress, a ByteString).
    pub fn pid(&mut self, pid: &ProcessId) -> &mut Self {
        self.bytestring(pid.node.as_bytes());
        self.i32(pid.local.unique).i32(pid.local.counter)
    }

    /// `toChunks` of everything put so far.
    pub fn finish(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.chunks.push(Bytes::from(self.buf));
        }
        self.chunks
    }

    /// The message `fingerprint` with these chunks.
    pub fn into_message(self, fingerprint: Fingerprint) -> Message {
        Message::from_chunks(fingerprint, self.finish())
    }
}

/// Message helpers for the types the captures send, fingerprinted for a
/// given [`Build`] and chunked as GHC would.
#[derive(Debug, Clone, Default)]
pub struct Messages {
    build: Build,
}

impl Messages {
    /// Helpers for peers of build `build`.
    pub fn new(build: Build) -> Self {
        Self { build }
    }

    /// The build used for fingerprints.
    pub fn build(&self) -> &Build {
        &self.build
    }

    /// A strict `ByteString`.
    pub fn strict_bytes(&self, b: &[u8]) -> Message {
        let mut p = GhcPut::new();
        p.bytestring(b);
        p.into_message(self.build.strict_bytestring().fingerprint())
    }

    /// A lazy `ByteString` of one chunk (same bytes, other fingerprint).
    pub fn lazy_bytes(&self, b: &[u8]) -> Message {
        let mut p = GhcPut::new();
        p.bytestring(b);
        p.into_message(self.build.lazy_bytestring().fingerprint())
    }

    /// A `String`.
    pub fn string(&self, s: &str) -> Message {
        let mut p = GhcPut::new();
        p.string(s);
        p.into_message(<String as Serializable>::fingerprint(&self.build))
    }

    /// A `(String, ByteString)`.
    pub fn string_bytes(&self, s: &str, b: &[u8]) -> Message {
        let mut p = GhcPut::new();
        p.string(s).bytestring(b);
        p.into_message(<(String, Bytes) as Serializable>::fingerprint(&self.build))
    }

    /// A `(ProcessId, ByteString)`.
    pub fn pid_bytes(&self, pid: &ProcessId, b: &[u8]) -> Message {
        let mut p = GhcPut::new();
        p.pid(pid).bytestring(b);
        p.into_message(<(ProcessId, Bytes) as Serializable>::fingerprint(
            &self.build,
        ))
    }

    /// A `ProcessId`.
    pub fn pid(&self, pid: &ProcessId) -> Message {
        let mut p = GhcPut::new();
        p.pid(pid);
        p.into_message(<ProcessId as Serializable>::fingerprint(&self.build))
    }

    /// `()`: a fingerprint and no value chunk.
    pub fn unit(&self) -> Message {
        Message::from_chunks(<() as Serializable>::fingerprint(&self.build), Vec::new())
    }

    /// Any other value. Its encoding goes into chunks as if every byte
    /// were copied, which is exact for values under 4080 bytes without
    /// large ByteStrings inside (all NC replies).
    pub fn of<T: Serializable>(&self, value: &T) -> Message {
        let mut p = GhcPut::new();
        p.copy(&value.to_binary());
        p.into_message(T::fingerprint(&self.build))
    }

    /// Decodes `m` as `T` if its fingerprint is `T`'s in this build.
    pub fn decode<T: Serializable>(&self, m: &Message) -> Option<T> {
        m.decode_as(&self.build, &dp_wire::Limits::default())
            .ok()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dp_wire::dp::{LocalProcessId, NodeId};

    fn lens(m: &Message) -> Vec<usize> {
        m.chunks().iter().map(Bytes::len).collect()
    }

    #[test]
    fn chunking_matches_capture_02() {
        let m = Messages::default();
        let pid = ProcessId {
            node: NodeId::new("127.0.0.1:10501:0"),
            local: LocalProcessId {
                unique: 1,
                counter: 8,
            },
        };
        assert_eq!(lens(&m.pid_bytes(&pid, b"named-hello")), vec![52]);
        assert_eq!(lens(&m.strict_bytes(&[b'x'; 40000])), vec![8, 40000]);
        assert_eq!(lens(&m.string("bye")), vec![11]);
        assert_eq!(lens(&m.unit()), Vec::<usize>::new());
    }

    #[test]
    fn copy_spills_into_the_next_buffer() {
        let m = Messages::default();
        // 8 + 5000 bytes, copied: the first buffer holds 4080.
        assert_eq!(lens(&m.strict_bytes(&[0; 5000])), vec![4080, 928]);
        let mut p = GhcPut::new();
        p.copy(&[0; 4078]).int(1);
        assert_eq!(
            p.finish().iter().map(Bytes::len).collect::<Vec<_>>(),
            vec![4078, 8],
            "a primitive never straddles chunks"
        );
    }
}
