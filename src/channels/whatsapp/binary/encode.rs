//! WABinary encoder. String encoding order (reference §2): single-byte token, double-byte token,
//! NIBBLE_8, HEX_8, JID, BINARY_n — the same choices Baileys makes, so the golden vectors match.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::node::{Content, Node};
use super::tag;
use super::tokens::{DOUBLE_BYTE, SINGLE_BYTE};

enum Token {
    Single(u8),
    Double(u8, u8),
}

fn token_map() -> &'static HashMap<&'static str, Token> {
    static MAP: OnceLock<HashMap<&'static str, Token>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for (dict, table) in DOUBLE_BYTE.iter().enumerate() {
            for (i, t) in table.iter().enumerate() {
                m.insert(*t, Token::Double(dict as u8, i as u8));
            }
        }
        // Single-byte tokens win over double-byte ones; index 0 ("") is not a token.
        for (i, t) in SINGLE_BYTE.iter().enumerate().skip(1) {
            m.insert(*t, Token::Single(i as u8));
        }
        m
    })
}

/// Encodes `node` with the leading flags byte (0 = uncompressed), ready for Noise encryption.
pub fn marshal(node: &Node) -> Vec<u8> {
    let mut out = vec![0u8];
    encode_node(node, &mut out);
    out
}

/// Appends the encoding of `node` (no flags byte) to `out`.
pub fn encode_node(node: &Node, out: &mut Vec<u8>) {
    let has_content = !matches!(node.content, Content::None);
    let size = 1 + 2 * node.attrs.len() + usize::from(has_content);
    write_list_start(size, out);
    write_string(&node.tag, out);
    for (k, v) in &node.attrs {
        write_string(k, out);
        write_string(v, out);
    }
    match &node.content {
        Content::None => {}
        Content::Bytes(b) => write_bytes(b, out),
        Content::Text(s) => write_string(s, out),
        Content::Nodes(ns) => {
            write_list_start(ns.len(), out);
            for n in ns {
                encode_node(n, out);
            }
        }
    }
}

fn write_list_start(size: usize, out: &mut Vec<u8>) {
    if size == 0 {
        out.push(tag::LIST_EMPTY);
    } else if size < 256 {
        out.push(tag::LIST_8);
        out.push(size as u8);
    } else {
        // Lists above 65535 entries cannot be expressed; callers never build them.
        out.push(tag::LIST_16);
        out.extend_from_slice(&(size.min(0xFFFF) as u16).to_be_bytes());
    }
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    let n = b.len();
    if n < 256 {
        out.push(tag::BINARY_8);
        out.push(n as u8);
    } else if n < (1 << 20) {
        out.push(tag::BINARY_20);
        out.extend_from_slice(&[((n >> 16) & 0x0F) as u8, (n >> 8) as u8, n as u8]);
    } else {
        out.push(tag::BINARY_32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

fn is_nibble(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= tag::PACKED_MAX
        && s.bytes()
            .all(|c| c.is_ascii_digit() || c == b'-' || c == b'.')
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= tag::PACKED_MAX
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
}

fn pack_nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'-' => 10,
        b'.' => 11,
        _ => 15,
    }
}

fn pack_hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        _ => 15,
    }
}

fn write_packed(s: &str, t: u8, out: &mut Vec<u8>) {
    let pack = if t == tag::NIBBLE_8 {
        pack_nibble
    } else {
        pack_hex
    };
    let b = s.as_bytes();
    out.push(t);
    let mut len = b.len().div_ceil(2) as u8;
    if b.len() % 2 == 1 {
        len |= 0x80;
    }
    out.push(len);
    for pair in b.chunks(2) {
        let hi = pack(pair[0]);
        let lo = pair.get(1).map_or(15, |c| pack(*c));
        out.push((hi << 4) | lo);
    }
}

/// Domain types of AD_JID (reference §2): 0 s.whatsapp.net, 1 lid, 128 hosted, 129 hosted.lid.
pub(crate) fn domain_type(server: &str) -> Option<u8> {
    match server {
        "s.whatsapp.net" => Some(0),
        "lid" => Some(1),
        "hosted" => Some(128),
        "hosted.lid" => Some(129),
        _ => None,
    }
}

/// Writes a JID if `s` is one; returns false otherwise.
fn write_jid(s: &str, out: &mut Vec<u8>) -> bool {
    let Some((user_part, server)) = s.split_once('@') else {
        return false;
    };
    if let Some((user, device)) = user_part.split_once(':') {
        // Baileys writes AD_JID whenever a device part is present.
        if let (Ok(dev), Some(dt)) = (device.parse::<u8>(), domain_type(server))
            && !user.contains('_')
        {
            out.push(tag::AD_JID);
            out.push(dt);
            out.push(dev);
            write_string(user, out);
            return true;
        }
    }
    out.push(tag::JID_PAIR);
    if user_part.is_empty() {
        out.push(tag::LIST_EMPTY);
    } else {
        write_string(user_part, out);
    }
    write_string(server, out);
    true
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    if let Some(t) = token_map().get(s) {
        match t {
            Token::Single(i) => out.push(*i),
            Token::Double(d, i) => out.extend_from_slice(&[tag::DICTIONARY_0 + d, *i]),
        }
    } else if is_nibble(s) {
        write_packed(s, tag::NIBBLE_8, out);
    } else if is_hex(s) {
        write_packed(s, tag::HEX_8, out);
    } else if !write_jid(s, out) {
        write_bytes(s.as_bytes(), out);
    }
}
