//! WABinary known-answer vectors (reference §2, produced with Baileys' `encodeBinaryNode`) and
//! property tests.

use proptest::prelude::*;

use super::*;

fn vectors() -> Vec<(Node, &'static str)> {
    vec![
        (
            Node::new("iq")
                .attr("id", "1")
                .attr("to", "@s.whatsapp.net")
                .attr("type", "get")
                .attr("xmlns", "w:p")
                .children(vec![Node::new("ping")]),
            "00f80a19085511fa000304291657f801f80156",
        ),
        (
            Node::new("iq")
                .attr("to", "@s.whatsapp.net")
                .attr("type", "result")
                .attr("id", "abc"),
            "00f8071911fa0003041408fc03616263",
        ),
        (
            Node::new("receipt")
                .attr("to", "15550001234:7@s.whatsapp.net")
                .attr("id", "3EB0ABCDEF"),
            "00f8050711f70007ff8615550001234f08fb053eb0abcdef",
        ),
        (
            Node::new("message")
                .attr("to", "123456789012345:7@lid")
                .attr("type", "text")
                .bytes(vec![1, 2, 3]),
            "00f8061311f70107ff88123456789012345f0438fc03010203",
        ),
        (
            Node::new("stream:error").attr("code", "515"),
            "00f8039d70ff82515f",
        ),
    ]
}

#[test]
fn reference_vectors_encode_and_decode() {
    for (node, hex_str) in vectors() {
        assert_eq!(hex::encode(marshal(&node)), hex_str, "encoding {node}");
        assert_eq!(
            unpack(&hex::decode(hex_str).unwrap()).unwrap(),
            node,
            "decoding {hex_str}"
        );
    }
}

#[test]
fn compressed_payload_is_inflated() {
    use std::io::Write;
    let node = Node::new("iq")
        .attr("id", "x1")
        .children(vec![Node::new("ping")]);
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let mut plain = Vec::new();
    encode_node(&node, &mut plain);
    enc.write_all(&plain).unwrap();
    let mut data = vec![2u8];
    data.extend(enc.finish().unwrap());
    assert_eq!(unpack(&data).unwrap(), node);
    assert_eq!(unpack(&[2, 1, 2, 3]), Err(DecodeError::Inflate));
}

#[test]
fn large_binary_and_long_lists_round_trip() {
    let big = vec![0xABu8; 70_000];
    let kids: Vec<Node> = (0..300)
        .map(|i| Node::new("key").attr("id", i.to_string()))
        .collect();
    let node = Node::new("iq").children(vec![
        Node::new("value").bytes(big),
        Node::new("list").children(kids),
    ]);
    assert_eq!(unpack(&marshal(&node)).unwrap(), node);
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let mut data = vec![0u8];
    for _ in 0..10_000 {
        data.extend_from_slice(&[0xf8, 0x02, 0x19, 0xf8, 0x01]);
    }
    assert_eq!(unpack(&data), Err(DecodeError::TooDeep));
}

fn safe_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_:]{1,12}",
        "[0-9]{1,20}",
        "[0-9A-F]{2,20}",
        Just("s.whatsapp.net".to_owned()),
        "[a-z ]{0,300}",
        "[0-9]{5,15}@s\\.whatsapp\\.net",
        "[1-9][0-9]{4,14}:[1-9]@lid",
    ]
}

fn arb_node() -> impl Strategy<Value = Node> {
    let leaf = (
        "[a-z]{1,8}",
        proptest::collection::vec((safe_string(), safe_string()), 0..4),
        prop_oneof![
            Just(Content::None),
            proptest::collection::vec(any::<u8>(), 0..600).prop_map(Content::Bytes),
            // Text content survives a round trip only as a token or packed string; other text
            // is written as BINARY and read back as bytes, exactly as in Baileys.
            prop_oneof![
                Just("ping"),
                Just("result"),
                Just("text"),
                Just("s.whatsapp.net")
            ]
            .prop_map(|s| Content::Text(s.to_owned())),
            "[0-9]{1,30}".prop_map(Content::Text),
        ],
    )
        .prop_map(|(tag, attrs, content)| Node {
            tag,
            attrs,
            content,
        });
    leaf.prop_recursive(4, 32, 6, |inner| {
        ("[a-z]{1,8}", proptest::collection::vec(inner, 0..6))
            .prop_map(|(tag, kids)| Node::new(tag).children(kids))
    })
}

proptest! {
    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = unpack(&data);
        let _ = decode_node(&data);
    }

    #[test]
    fn decoder_never_panics_on_mutated_valid_input(node in arb_node(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut data = marshal(&node);
        for (i, b) in flips {
            let n = data.len();
            data[i % n] = b;
        }
        let _ = unpack(&data);
    }

    #[test]
    fn round_trip(node in arb_node()) {
        prop_assert_eq!(unpack(&marshal(&node)).unwrap(), node);
    }
}

/// The token tables are byte-for-byte the ones of Baileys, whatsmeow and whatsapp-rust: reference
/// §2 gives the SHA-256 of each table's compact JSON.
#[test]
fn token_tables_match_the_reference_hashes() {
    use sha2::{Digest, Sha256};
    let single = serde_json::to_string(tokens::SINGLE_BYTE.as_slice()).unwrap();
    let double: Vec<&[&str]> = tokens::DOUBLE_BYTE.iter().map(|t| t.as_slice()).collect();
    let double = serde_json::to_string(&double).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(single.as_bytes())),
        "5fd87b0938866fa14324bee863c414eedd3b61c34aa2ff024c5d663f21546690"
    );
    assert_eq!(
        hex::encode(Sha256::digest(double.as_bytes())),
        "0c785ca43e8e316d9458bd214034f8818cc5b1127efbfd98e511f9d180212570"
    );
    assert_eq!(
        (tokens::SINGLE_BYTE.len(), tokens::SINGLE_BYTE[0]),
        (236, "")
    );
}
