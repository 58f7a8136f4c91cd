//! Merging the system and state layers, recording where every value came from.
//!
//! Rules: the system layer wins for every key it sets; objects merge deeply; arrays (and every
//! other value) are replaced whole. Each node of the result records its origin (source file,
//! key and value positions) and the state values it shadowed.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::json5::{Node, NodeValue, Pos};
use super::path::KeyPath;

/// Where a value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index of the source file (see `Compilation::sources`).
    pub source: usize,
    /// Position of the key (absent for the root and array elements).
    pub key_pos: Option<Pos>,
    /// Position of the value.
    pub value_pos: Pos,
}

impl Origin {
    /// The key position if there is one, else the value position: where the setting "is".
    pub fn pos(&self) -> Pos {
        self.key_pos.unwrap_or(self.value_pos)
    }
}

/// The origin of one node of the merged tree and what it shadowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where the winning value was written.
    pub origin: Origin,
    /// Lower-layer values this one replaced.
    pub shadowed: Vec<Origin>,
}

/// Origins of every node of the merged tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    entries: HashMap<KeyPath, Entry>,
}

impl Provenance {
    /// The entry of exactly this path.
    pub fn get(&self, path: &KeyPath) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// The entry of this path or its nearest recorded ancestor.
    pub fn nearest(&self, path: &KeyPath) -> Option<(&KeyPath, &Entry)> {
        let mut p = path.clone();
        loop {
            if let Some((k, e)) = self.entries.get_key_value(&p) {
                return Some((k, e));
            }
            if p.is_root() {
                return None;
            }
            p = p.parent();
        }
    }

    /// All entries.
    pub fn iter(&self) -> impl Iterator<Item = (&KeyPath, &Entry)> {
        self.entries.iter()
    }

    fn record(&mut self, path: KeyPath, origin: Origin, shadowed: Vec<Origin>) {
        self.entries.insert(path, Entry { origin, shadowed });
    }

    fn record_tree(&mut self, node: &Node, path: &KeyPath, source: usize, key_pos: Option<Pos>) {
        self.record(path.clone(), Origin { source, key_pos, value_pos: node.pos }, Vec::new());
        match &node.value {
            NodeValue::Object(members) => {
                for m in members {
                    self.record_tree(&m.value, &path.key(&m.key), source, Some(m.key_pos));
                }
            }
            NodeValue::Array(items) => {
                for (i, n) in items.iter().enumerate() {
                    self.record_tree(n, &path.index(i), source, None);
                }
            }
            _ => {}
        }
    }
}

/// One parsed layer.
#[derive(Debug, Clone, Copy)]
pub struct LayerInput<'a> {
    /// Index of its source file.
    pub source: usize,
    /// Its tree.
    pub node: &'a Node,
}

/// A state value replaced by a different system value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowing {
    /// The path.
    pub path: KeyPath,
    /// The winning (system) origin.
    pub winner: Origin,
    /// The shadowed (state) origin.
    pub loser: Origin,
    /// The winning value (for fingerprints of secrets; never printed).
    pub winner_value: Value,
    /// The shadowed value (likewise).
    pub loser_value: Value,
}

/// The merged tree.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// The resolved value.
    pub value: Value,
    /// Where each node came from.
    pub provenance: Provenance,
    /// State values overridden by different system values.
    pub shadowings: Vec<Shadowing>,
}

/// Merges `upper` (wins) over `lower`. Either may be absent.
pub fn merge(upper: Option<LayerInput<'_>>, lower: Option<LayerInput<'_>>) -> Merged {
    let mut out = Merged { value: Value::Object(Map::new()), ..Default::default() };
    let root = KeyPath::root();
    let upper = upper.map(|l| (l.source, l.node, None));
    let lower = lower.map(|l| (l.source, l.node, None));
    if let Some(v) = merge_node(&root, upper, lower, &mut out) {
        out.value = v;
    }
    out
}

type Side<'a> = Option<(usize, &'a Node, Option<Pos>)>;

fn members(n: &Node) -> Option<&[super::json5::Member]> {
    match &n.value {
        NodeValue::Object(m) => Some(m),
        _ => None,
    }
}

fn merge_node(path: &KeyPath, upper: Side<'_>, lower: Side<'_>, out: &mut Merged) -> Option<Value> {
    match (upper, lower) {
        (None, None) => None,
        (Some((s, n, k)), None) | (None, Some((s, n, k))) => {
            out.provenance.record_tree(n, path, s, k);
            Some(n.to_value())
        }
        (Some((us, un, uk)), Some((ls, ln, lk))) => {
            let upper_origin = Origin { source: us, key_pos: uk, value_pos: un.pos };
            let lower_origin = Origin { source: ls, key_pos: lk, value_pos: ln.pos };
            if let (Some(um), Some(lm)) = (members(un), members(ln)) {
                out.provenance.record(path.clone(), upper_origin, Vec::new());
                let mut map = Map::new();
                for m in um {
                    let l = lm.iter().find(|x| x.key == m.key).map(|x| (ls, &x.value, Some(x.key_pos)));
                    let p = path.key(&m.key);
                    if let Some(v) = merge_node(&p, Some((us, &m.value, Some(m.key_pos))), l, out) {
                        map.insert(m.key.clone(), v);
                    }
                }
                for m in lm.iter().filter(|m| !um.iter().any(|x| x.key == m.key)) {
                    let p = path.key(&m.key);
                    if let Some(v) = merge_node(&p, None, Some((ls, &m.value, Some(m.key_pos))), out) {
                        map.insert(m.key.clone(), v);
                    }
                }
                return Some(Value::Object(map));
            }
            out.provenance.record_tree(un, path, us, uk);
            if let Some(e) = out.provenance.entries.get_mut(path) {
                e.shadowed.push(lower_origin);
            }
            let value = un.to_value();
            let lower_value = ln.to_value();
            if value != lower_value {
                out.shadowings.push(Shadowing {
                    path: path.clone(),
                    winner: upper_origin,
                    loser: lower_origin,
                    winner_value: value.clone(),
                    loser_value: lower_value,
                });
            }
            Some(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::json5::parse;
    use serde_json::json;

    #[test]
    fn system_wins_objects_merge_arrays_replace() {
        let sys = parse("{gateway: {port: 1}, channels: {whatsapp: {allowFrom: ['+1555']}}}").node.unwrap();
        let st = parse("{gateway: {port: 2, bind: 'lan'}, channels: {whatsapp: {allowFrom: ['+1', '+2'], dmPolicy: 'allowlist'}}}")
            .node
            .unwrap();
        let m = merge(Some(LayerInput { source: 0, node: &sys }), Some(LayerInput { source: 1, node: &st }));
        assert_eq!(
            m.value,
            json!({"gateway": {"port": 1, "bind": "lan"}, "channels": {"whatsapp": {"allowFrom": ["+1555"], "dmPolicy": "allowlist"}}})
        );
        let port = m.provenance.get(&KeyPath::parse_dotted("gateway.port").unwrap()).unwrap();
        assert_eq!(port.origin.source, 0);
        assert_eq!(port.shadowed.len(), 1);
        assert_eq!(port.shadowed[0].source, 1);
        let bind = m.provenance.get(&KeyPath::parse_dotted("gateway.bind").unwrap()).unwrap();
        assert_eq!(bind.origin.source, 1);
        assert_eq!(bind.origin.key_pos, Some(Pos { line: 1, col: 21 }));
        // The replaced array's elements come from the system file only.
        let el = m.provenance.get(&KeyPath::parse_dotted("channels.whatsapp.allowFrom[0]").unwrap()).unwrap();
        assert_eq!(el.origin.source, 0);
        assert!(m.provenance.get(&KeyPath::parse_dotted("channels.whatsapp.allowFrom[1]").unwrap()).is_none());
        let paths: Vec<String> = m.shadowings.iter().map(|s| s.path.to_string()).collect();
        assert_eq!(paths, vec!["gateway.port", "channels.whatsapp.allowFrom"]);
    }

    #[test]
    fn equal_values_shadow_without_a_warning() {
        let sys = parse("{gateway: {port: 1}}").node.unwrap();
        let st = parse("{gateway: {port: 1}}").node.unwrap();
        let m = merge(Some(LayerInput { source: 0, node: &sys }), Some(LayerInput { source: 1, node: &st }));
        assert!(m.shadowings.is_empty());
        assert_eq!(m.provenance.get(&KeyPath::parse_dotted("gateway.port").unwrap()).unwrap().shadowed.len(), 1);
    }
}
