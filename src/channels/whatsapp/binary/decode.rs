//! WABinary decoder. Never panics on any input: every read is bounds-checked, nesting depth and
//! decompressed size are capped, and no allocation is sized from an untrusted length before the
//! bytes are known to be there.

use std::io::Read;

use super::node::{Content, Node};
use super::tag;
use super::tokens::{DOUBLE_BYTE, SINGLE_BYTE};

/// Deepest node nesting accepted (real stanzas nest a handful of levels).
pub const MAX_DEPTH: usize = 64;
/// Largest decompressed stanza accepted.
pub const MAX_INFLATED: u64 = 32 * 1024 * 1024;

/// Why a buffer is not a valid node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("wabinary: unexpected end of input")]
    Eof,
    /// A byte that is not valid where it appears.
    #[error("wabinary: invalid tag {tag} for {what}")]
    BadTag {
        /// The byte.
        tag: u8,
        /// What was being read.
        what: &'static str,
    },
    /// A double-byte token index out of range or an invalid packed nibble.
    #[error("wabinary: invalid {0}")]
    Invalid(&'static str),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("wabinary: nesting too deep")]
    TooDeep,
    /// The zlib stream is corrupt or inflates beyond [`MAX_INFLATED`].
    #[error("wabinary: bad compressed payload")]
    Inflate,
}

/// Decodes a transport plaintext: flags byte, optional zlib, then one node.
pub fn unpack(data: &[u8]) -> Result<Node, DecodeError> {
    let (&flags, rest) = data.split_first().ok_or(DecodeError::Eof)?;
    if flags & 0x02 != 0 {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(rest)
            .take(MAX_INFLATED + 1)
            .read_to_end(&mut out)
            .map_err(|_| DecodeError::Inflate)?;
        if out.len() as u64 > MAX_INFLATED {
            return Err(DecodeError::Inflate);
        }
        decode_node(&out)
    } else {
        decode_node(rest)
    }
}

/// Decodes one node (no flags byte). Trailing bytes are ignored, as Baileys does.
pub fn decode_node(data: &[u8]) -> Result<Node, DecodeError> {
    Reader { data, pos: 0 }.node(0)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.data.get(self.pos).ok_or(DecodeError::Eof)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Eof)?;
        let s = self.data.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(s)
    }

    fn int(&mut self, n: usize) -> Result<usize, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
    }

    fn list_size(&mut self, t: u8) -> Result<usize, DecodeError> {
        match t {
            tag::LIST_EMPTY => Ok(0),
            tag::LIST_8 => Ok(usize::from(self.byte()?)),
            tag::LIST_16 => self.int(2),
            _ => Err(DecodeError::BadTag {
                tag: t,
                what: "list size",
            }),
        }
    }

    fn node(&mut self, depth: usize) -> Result<Node, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let t = self.byte()?;
        let size = self.list_size(t)?;
        if size == 0 {
            return Err(DecodeError::Invalid("empty node"));
        }
        let t = self.byte()?;
        let tag_name = self.string(t)?;
        if tag_name.is_empty() {
            return Err(DecodeError::Invalid("node without tag"));
        }
        let n_attrs = (size - 1) >> 1;
        let mut attrs = Vec::new();
        for _ in 0..n_attrs {
            let t = self.byte()?;
            let k = self.string(t)?;
            let t = self.byte()?;
            let v = self.string(t)?;
            attrs.push((k, v));
        }
        let content = if size % 2 == 0 {
            let t = self.byte()?;
            match t {
                tag::LIST_EMPTY | tag::LIST_8 | tag::LIST_16 => {
                    let n = self.list_size(t)?;
                    let mut kids = Vec::new();
                    for _ in 0..n {
                        kids.push(self.node(depth + 1)?);
                    }
                    Content::Nodes(kids)
                }
                tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                    Content::Bytes(self.binary(t)?.to_vec())
                }
                _ => Content::Text(self.string(t)?),
            }
        } else {
            Content::None
        };
        Ok(Node {
            tag: tag_name,
            attrs,
            content,
        })
    }

    fn binary(&mut self, t: u8) -> Result<&'a [u8], DecodeError> {
        let n = match t {
            tag::BINARY_8 => usize::from(self.byte()?),
            tag::BINARY_20 => {
                let b = self.take(3)?;
                (usize::from(b[0] & 0x0F) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
            }
            _ => self.int(4)?,
        };
        self.take(n)
    }

    fn string(&mut self, t: u8) -> Result<String, DecodeError> {
        match t {
            tag::LIST_EMPTY => Ok(String::new()),
            1..=235 => SINGLE_BYTE
                .get(usize::from(t))
                .map(|s| (*s).to_owned())
                .ok_or(DecodeError::Invalid("single-byte token")),
            tag::DICTIONARY_0..=tag::DICTIONARY_3 => {
                let i = self.byte()?;
                Ok(DOUBLE_BYTE[usize::from(t - tag::DICTIONARY_0)][usize::from(i)].to_owned())
            }
            tag::BINARY_8 | tag::BINARY_20 | tag::BINARY_32 => {
                Ok(String::from_utf8_lossy(self.binary(t)?).into_owned())
            }
            tag::JID_PAIR => {
                let t = self.byte()?;
                let user = self.string(t)?;
                let t = self.byte()?;
                let server = self.string(t)?;
                Ok(format!("{user}@{server}"))
            }
            tag::AD_JID => {
                let domain = self.byte()?;
                let device = self.byte()?;
                let t = self.byte()?;
                let user = self.string(t)?;
                let server = match domain {
                    0 => "s.whatsapp.net",
                    1 => "lid",
                    128 => "hosted",
                    129 => "hosted.lid",
                    _ => return Err(DecodeError::Invalid("AD_JID domain type")),
                };
                Ok(jid(&user, device.into(), server))
            }
            tag::FB_JID => {
                let t = self.byte()?;
                let user = self.string(t)?;
                let device = self.int(2)?;
                let t = self.byte()?;
                let server = self.string(t)?;
                Ok(jid(&user, device, &server))
            }
            tag::INTEROP_JID => {
                let t = self.byte()?;
                let user = self.string(t)?;
                let device = self.int(2)?;
                let integrator = self.int(2)?;
                Ok(format!("{integrator}-{user}:{device}@interop"))
            }
            tag::HEX_8 | tag::NIBBLE_8 => self.packed(t),
            _ => Err(DecodeError::BadTag {
                tag: t,
                what: "string",
            }),
        }
    }

    fn packed(&mut self, t: u8) -> Result<String, DecodeError> {
        let start = self.byte()?;
        let n = usize::from(start & 0x7F);
        let bytes = self.take(n)?;
        let mut s = String::with_capacity(n * 2);
        for b in bytes {
            for nib in [b >> 4, b & 0x0F] {
                s.push(unpack_nibble(t, nib)?);
            }
        }
        if start & 0x80 != 0 {
            s.pop();
        }
        Ok(s)
    }
}

fn unpack_nibble(t: u8, v: u8) -> Result<char, DecodeError> {
    if t == tag::NIBBLE_8 {
        match v {
            0..=9 => Ok(char::from(b'0' + v)),
            10 => Ok('-'),
            11 => Ok('.'),
            15 => Ok('\0'),
            _ => Err(DecodeError::Invalid("nibble")),
        }
    } else {
        match v {
            0..=9 => Ok(char::from(b'0' + v)),
            _ => Ok(char::from(b'A' + v - 10)),
        }
    }
}

/// `user[:device]@server`; device 0 is omitted (Baileys `jidEncode`).
fn jid(user: &str, device: usize, server: &str) -> String {
    if device == 0 {
        format!("{user}@{server}")
    } else {
        format!("{user}:{device}@{server}")
    }
}
