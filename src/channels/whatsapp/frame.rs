//! Frame layer: every handshake and transport frame is `len (3 bytes, big-endian) || payload`.
//!
//! WebSocket messages do not align with frames: one message may carry several frames or part of
//! one, so the decoder buffers and re-splits.

/// The connection header the client sends once, before its first frame: "WA", magic 6, dictionary
/// version 3 (reference §1.2). It is also the Noise prologue.
pub const WA_HEADER: [u8; 4] = [b'W', b'A', 6, 3];

/// The largest payload a 3-byte length can describe.
pub const MAX_FRAME: usize = (1 << 24) - 1;

/// Frame-layer errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The payload does not fit a 3-byte length.
    #[error("frame of {0} bytes exceeds the 16 MiB frame limit")]
    TooLarge(usize),
    /// The connection did not start with the expected header.
    #[error("bad connection header")]
    BadHeader,
}

/// Appends `len(3) || payload` to `out`.
pub fn encode_frame_into(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(payload.len()));
    }
    let n = payload.len() as u32;
    out.extend_from_slice(&n.to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    Ok(())
}

/// Returns `len(3) || payload`.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(payload.len() + 3);
    encode_frame_into(&mut out, payload)?;
    Ok(out)
}

/// Reassembles frames from arbitrary chunks of the byte stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    pos: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete frame's payload, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 3 {
            return None;
        }
        let len =
            (usize::from(avail[0]) << 16) | (usize::from(avail[1]) << 8) | usize::from(avail[2]);
        if avail.len() < 3 + len {
            return None;
        }
        let frame = avail[3..3 + len].to_vec();
        self.pos += 3 + len;
        if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Some(frame)
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// The optional edge-routing pre-intro: `"ED" 00 01 len(3) routing_info` (reference §1.2). It goes
/// before the `WA` header and is not part of the Noise prologue.
pub fn edge_routing_intro(routing_info: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = b"ED\x00\x01".to_vec();
    encode_frame_into(&mut out, routing_info)?;
    Ok(out)
}

/// Server side: the routing info of an `ED` pre-intro at the start of `bytes`, if complete.
pub fn routing_info_of(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < 7 || &bytes[..4] != b"ED\x00\x01" {
        return None;
    }
    let len = (usize::from(bytes[4]) << 16) | (usize::from(bytes[5]) << 8) | usize::from(bytes[6]);
    bytes.get(7..7 + len)
}

/// Server side: strips the optional `ED` edge-routing pre-intro and the `WA 06 03` header from the
/// start of a connection. Returns how many bytes they took, or `Ok(None)` if more bytes are needed.
pub fn strip_intro(bytes: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut off = 0;
    if bytes.len() >= 2 && &bytes[..2] == b"ED" {
        if bytes.len() < 7 {
            return Ok(None);
        }
        if bytes[2] != 0 || bytes[3] != 1 {
            return Err(FrameError::BadHeader);
        }
        let len =
            (usize::from(bytes[4]) << 16) | (usize::from(bytes[5]) << 8) | usize::from(bytes[6]);
        off = 7 + len;
    }
    if bytes.len() < off + 4 {
        return Ok(None);
    }
    if bytes[off..off + 4] != WA_HEADER {
        return Err(FrameError::BadHeader);
    }
    Ok(Some(off + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_frames_in_one_message_and_split_frames() {
        let mut wire = Vec::new();
        for p in [&b"abc"[..], b"", &[7u8; 300]] {
            encode_frame_into(&mut wire, p).unwrap();
        }
        // One chunk with everything.
        let mut d = FrameDecoder::new();
        d.push(&wire);
        assert_eq!(d.next_frame().unwrap(), b"abc");
        assert_eq!(d.next_frame().unwrap(), b"");
        assert_eq!(d.next_frame().unwrap(), vec![7u8; 300]);
        assert_eq!(d.next_frame(), None);
        // Byte by byte.
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for b in &wire {
            d.push(&[*b]);
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn length_prefix_is_big_endian_24_bit() {
        assert_eq!(encode_frame(&[1, 2]).unwrap(), vec![0, 0, 2, 1, 2]);
        assert_eq!(&encode_frame(&vec![0; 0x010203]).unwrap()[..3], &[1, 2, 3]);
        assert_eq!(
            encode_frame(&vec![0; MAX_FRAME + 1]),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
    }

    #[test]
    fn intro_with_and_without_edge_routing() {
        assert_eq!(strip_intro(b"WA\x06\x03\x00"), Ok(Some(4)));
        assert_eq!(strip_intro(b"WA\x06"), Ok(None));
        assert_eq!(
            strip_intro(b"ED\x00\x01\x00\x00\x02xyWA\x06\x03"),
            Ok(Some(13))
        );
        assert_eq!(strip_intro(b"GET /"), Err(FrameError::BadHeader));
        let mut intro = edge_routing_intro(b"xyz").unwrap();
        intro.extend_from_slice(&WA_HEADER);
        assert_eq!(strip_intro(&intro), Ok(Some(14)));
        assert_eq!(routing_info_of(&intro), Some(&b"xyz"[..]));
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn decoder_never_panics_on_any_chunks(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = FrameDecoder::new();
            for c in &chunks {
                d.push(c);
                while d.next_frame().is_some() {}
            }
            let _ = strip_intro(&chunks.concat());
        }

        #[test]
        fn frames_survive_any_split(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6), cut in 1usize..50) {
            let mut wire = Vec::new();
            for p in &payloads {
                encode_frame_into(&mut wire, p).unwrap();
            }
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for c in wire.chunks(cut) {
                d.push(c);
                while let Some(f) = d.next_frame() {
                    got.push(f);
                }
            }
            prop_assert_eq!(got, payloads);
        }
    }
}
