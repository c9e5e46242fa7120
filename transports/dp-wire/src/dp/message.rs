//! Messages: a type fingerprint plus a Data.Binary payload.
//!
//! On a process connection a message is one frame, `fingerprint ++
//! payload` with no length or tag ([`Message::decode_frame`]). Inside an
//! NCMsg (`NamedSend`, `Exit`, `UnreliableSend`, …) the same message is a
//! Binary list of strict ByteStrings: the 16-byte fingerprint chunk, then
//! the payload in whatever chunks GHC's builder produced. [`Message`] keeps
//! those chunks so that re-encoding reproduces the peer's bytes exactly.

use bytes::{Bytes, BytesMut};

use super::typed::Serializable;
use crate::binary::reader::safe_capacity;
use crate::binary::{decode_exact_shared, encode_len, BinaryError, Decode, Encode, Reader};
use crate::fingerprint::{Build, Fingerprint};
use crate::Limits;

/// A message: fingerprint of the payload's Haskell type and its encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// Names the payload's type (see [`crate::fingerprint`]).
    pub fingerprint: Fingerprint,
    // Payload chunks as they appear inside an NCMsg; empty for an empty
    // payload, as Haskell's `toChunks` gives no chunk then.
    chunks: Vec<Bytes>,
}

impl Message {
    /// A message with its payload in one chunk (how GHC sends any value
    /// whose encoding fits its first builder chunk).
    pub fn new(fingerprint: Fingerprint, payload: impl Into<Bytes>) -> Self {
        let payload = payload.into();
        let chunks = if payload.is_empty() {
            Vec::new()
        } else {
            vec![payload]
        };
        Self {
            fingerprint,
            chunks,
        }
    }

    /// A message with explicit payload chunks; empty chunks are kept.
    pub fn from_chunks(fingerprint: Fingerprint, chunks: Vec<Bytes>) -> Self {
        Self {
            fingerprint,
            chunks,
        }
    }

    /// Encodes `value` with the fingerprint of its type in `build`.
    pub fn of<T: Serializable>(value: &T, build: &Build) -> Self {
        Self::new(T::fingerprint(build), value.to_binary())
    }

    /// The payload chunks as they were (or will be) sent in an NCMsg.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// Payload length in bytes.
    pub fn payload_len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// The whole payload; zero-copy unless it spans several chunks.
    pub fn payload(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut b = BytesMut::with_capacity(self.payload_len());
                for c in many {
                    b.extend_from_slice(c);
                }
                b.freeze()
            }
        }
    }

    /// Decodes the payload as `T` if the fingerprint is `T`'s in `build`;
    /// `Ok(None)` for another type (like Haskell's `match`, which skips it).
    pub fn decode_as<T: Serializable>(
        &self,
        build: &Build,
        limits: &Limits,
    ) -> Result<Option<T>, BinaryError> {
        if self.fingerprint != T::fingerprint(build) {
            return Ok(None);
        }
        decode_exact_shared(&self.payload(), limits).map(Some)
    }

    /// Appends the process-connection frame: fingerprint ++ payload.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        out.reserve(Fingerprint::LEN + self.payload_len());
        self.fingerprint.encode(out);
        for c in &self.chunks {
            out.extend_from_slice(c);
        }
    }

    /// Reads a process-connection frame; the payload shares `frame`'s
    /// buffer.
    pub fn decode_frame(frame: &Bytes) -> Result<Self, BinaryError> {
        let (fp, payload) = decode_frame(frame)?;
        Ok(Self::new(fp, payload))
    }
}

/// Appends a process-connection message frame: the 16 fingerprint bytes,
/// then `payload` (already Data.Binary-encoded).
pub fn encode_frame(fingerprint: Fingerprint, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(Fingerprint::LEN + payload.len());
    fingerprint.encode(out);
    out.extend_from_slice(payload);
}

/// Splits a process-connection frame into fingerprint and payload
/// (zero-copy).
pub fn decode_frame(frame: &Bytes) -> Result<(Fingerprint, Bytes), BinaryError> {
    if frame.len() < Fingerprint::LEN {
        return Err(BinaryError::UnexpectedEof {
            what: "message fingerprint",
            needed: Fingerprint::LEN as u64,
            available: frame.len(),
        });
    }
    let mut fp = [0u8; 16];
    fp.copy_from_slice(&frame[..Fingerprint::LEN]);
    Ok((Fingerprint::from_bytes(fp), frame.slice(Fingerprint::LEN..)))
}

/// Haskell's `put (messageToPayload msg)`: `[ByteString]`, fingerprint
/// chunk first.
impl Encode for Message {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(1 + self.chunks.len(), out);
        encode_len(Fingerprint::LEN, out);
        self.fingerprint.encode(out);
        for c in &self.chunks {
            c.encode(out);
        }
    }
}

impl Decode for Message {
    // Stricter than `payloadToMessage`, which re-splits the concatenation
    // at byte 16: the fingerprint must be its own chunk, as every
    // distributed-process sender makes it, so that re-encoding is exact.
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        // Each chunk costs at least its 8-byte length.
        let n = r.list_len("message chunks", 8)?;
        if n == 0 {
            return Err(BinaryError::WrongSize {
                what: "message fingerprint chunk",
                expected: Fingerprint::LEN,
                got: 0,
            });
        }
        let fp_chunk = Bytes::decode(r)?;
        if fp_chunk.len() != Fingerprint::LEN {
            return Err(BinaryError::WrongSize {
                what: "message fingerprint chunk",
                expected: Fingerprint::LEN,
                got: fp_chunk.len(),
            });
        }
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&fp_chunk);
        let mut chunks = Vec::with_capacity(safe_capacity(n - 1, r.remaining()));
        for _ in 1..n {
            chunks.push(Bytes::decode(r)?);
        }
        Ok(Self::from_chunks(Fingerprint::from_bytes(fp), chunks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::decode_exact;
    use crate::fingerprint::known::captured;

    #[test]
    fn frame_is_fingerprint_then_payload() {
        let m = Message::of(&Bytes::from_static(b"hello-strict"), &Build::default());
        let mut out = Vec::new();
        m.encode_frame(&mut out);
        assert_eq!(
            hex::encode(&out),
            "0d85666aab1d56eb83253d32af7a7445000000000000000c68656c6c6f2d737472696374"
        );
        let back = Message::decode_frame(&Bytes::from(out)).unwrap();
        assert_eq!(back, m);
        let v: Bytes = back
            .decode_as(&Build::default(), &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(&v[..], b"hello-strict");
        assert_eq!(
            back.decode_as::<String>(&Build::default(), &Limits::default()),
            Ok(None)
        );
    }

    #[test]
    fn short_frame_is_eof() {
        assert!(matches!(
            decode_frame(&Bytes::from_static(&[1, 2, 3])),
            Err(BinaryError::UnexpectedEof { available: 3, .. })
        ));
    }

    #[test]
    fn unit_message_has_no_value_chunk() {
        let m = Message::of(&(), &Build::default());
        assert_eq!(m.fingerprint, captured::UNIT);
        assert_eq!(
            hex::encode(m.to_binary()),
            "00000000000000010000000000000010d395a248530d97d03b0b33304cfbe3ff"
        );
    }

    #[test]
    fn fingerprint_chunk_must_be_16_bytes() {
        let mut b = Vec::new();
        encode_len(1, &mut b);
        Bytes::from_static(&[0; 8]).encode(&mut b);
        assert_eq!(
            decode_exact::<Message>(&b, &Limits::default()).unwrap_err(),
            BinaryError::WrongSize {
                what: "message fingerprint chunk",
                expected: 16,
                got: 8
            }
        );
    }
}
