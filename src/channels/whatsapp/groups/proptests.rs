//! The group parsers never panic, whatever node they are given (they read untrusted stanzas).

use proptest::prelude::*;

use super::metadata::{parse_group, parse_participating_answer, parse_query_answer};
use super::notification::parse_notification;
use super::phash::participant_hash;
use crate::channels::whatsapp::binary::{Content, Node};

/// Tags and attribute names the parsers look at, so random trees reach their branches.
const TAGS: [&str; 20] = [
    "iq",
    "group",
    "groups",
    "participant",
    "description",
    "body",
    "ephemeral",
    "announcement",
    "locked",
    "error",
    "notification",
    "create",
    "add",
    "remove",
    "promote",
    "demote",
    "leave",
    "subject",
    "not_ephemeral",
    "x",
];
const KEYS: [&str; 16] = [
    "id",
    "type",
    "from",
    "subject",
    "s_o",
    "s_t",
    "creation",
    "creator",
    "addressing_mode",
    "size",
    "jid",
    "phone_number",
    "lid",
    "participant",
    "expiration",
    "code",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("w:gp2".to_owned()),
        Just("error".to_owned()),
        Just("lid".to_owned()),
        Just("superadmin".to_owned()),
        "[0-9]{0,22}",
        "[0-9]{1,15}(:[0-9]{1,3})?@(s\\.whatsapp\\.net|lid|g\\.us)",
        "[0-9]{1,12}-[0-9]{1,12}@g\\.us",
        ".{0,40}",
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (
        proptest::sample::select(TAGS.to_vec()),
        proptest::collection::vec((proptest::sample::select(KEYS.to_vec()), value()), 0..6),
        prop_oneof![
            Just(Content::None),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Content::Bytes),
            ".{0,20}".prop_map(Content::Text),
        ],
    )
        .prop_map(|(tag, attrs, content)| Node {
            tag: tag.to_owned(),
            attrs: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            content,
        });
    leaf.prop_recursive(4, 48, 6, |inner| {
        (
            proptest::sample::select(TAGS.to_vec()),
            proptest::collection::vec((proptest::sample::select(KEYS.to_vec()), value()), 0..6),
            proptest::collection::vec(inner, 0..6),
        )
            .prop_map(|(tag, attrs, kids)| Node {
                tag: tag.to_owned(),
                attrs: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                content: Content::Nodes(kids),
            })
    })
}

proptest! {
    #[test]
    fn group_parsers_never_panic(n in node()) {
        let _ = parse_group(&n);
        let _ = parse_query_answer(&n);
        let _ = parse_participating_answer(&n);
        let _ = parse_notification(&n);
        // The same node presented as the notification and answer they expect.
        let mut as_gp2 = n.clone();
        as_gp2.tag = "notification".into();
        as_gp2.attrs.push(("type".into(), "w:gp2".into()));
        as_gp2.attrs.push(("from".into(), "1-2@g.us".into()));
        let _ = parse_notification(&as_gp2);
        let wrapped = Node::new("iq").children(vec![n.clone()]);
        let _ = parse_query_answer(&wrapped);
        let _ = parse_participating_answer(&Node::new("iq").children(vec![Node::new("groups").children(vec![n])]));
    }

    #[test]
    fn phash_never_panics_and_has_its_shape(jids in proptest::collection::vec(".{0,30}", 0..20)) {
        let h = participant_hash(&jids);
        prop_assert!(h.starts_with("2:"));
        prop_assert_eq!(h.len(), 10);
    }
}
