//! Paths into the config tree: `channels.whatsapp.allowFrom[1]`.

use std::fmt;

/// One step of a path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A path from the root of the config to a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The root.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path plus an object key.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Self(v)
    }

    /// This path plus an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }

    /// The parent path (the root's parent is the root).
    pub fn parent(&self) -> Self {
        let mut v = self.0.clone();
        v.pop();
        Self(v)
    }

    /// The last key, if the path ends in one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a dotted path as users type it: `gateway.port`, `channels.whatsapp.allowFrom[0]`,
    /// `channels.whatsapp.groups["123@g.us"].requireMention`.
    pub fn parse_dotted(s: &str) -> Option<Self> {
        let mut segs = Vec::new();
        let mut chars = s.chars().peekable();
        let mut cur = String::new();
        let mut after_bracket = false;
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    if cur.is_empty() && !after_bracket {
                        return None;
                    }
                    if !cur.is_empty() {
                        segs.push(Seg::Key(std::mem::take(&mut cur)));
                    }
                    after_bracket = false;
                }
                '[' => {
                    if !cur.is_empty() {
                        segs.push(Seg::Key(std::mem::take(&mut cur)));
                    }
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        let mut k = String::new();
                        loop {
                            match chars.next()? {
                                '\\' => k.push(chars.next()?),
                                '"' => break,
                                c => k.push(c),
                            }
                        }
                        if chars.next()? != ']' {
                            return None;
                        }
                        segs.push(Seg::Key(k));
                    } else {
                        let mut n = String::new();
                        loop {
                            match chars.next()? {
                                ']' => break,
                                c if c.is_ascii_digit() => n.push(c),
                                _ => return None,
                            }
                        }
                        segs.push(Seg::Index(n.parse().ok()?));
                    }
                    after_bracket = true;
                }
                c => {
                    if after_bracket {
                        return None;
                    }
                    cur.push(c)
                }
            }
        }
        if !cur.is_empty() {
            segs.push(Seg::Key(cur));
        }
        Some(Self(segs))
    }

    /// Looks the path up in a JSON value.
    pub fn get<'v>(&self, mut v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        for s in &self.0 {
            v = match s {
                Seg::Key(k) => v.as_object()?.get(k)?,
                Seg::Index(i) => v.as_array()?.get(*i)?,
            };
        }
        Some(v)
    }

    /// Converts a JSON pointer (`/a/0/b`) into a path, using `value` to tell array indices from
    /// numeric object keys.
    pub fn from_pointer(pointer: &str, value: &serde_json::Value) -> Self {
        let mut segs = Vec::new();
        let mut cur = Some(value);
        for raw in pointer.split('/').skip(1) {
            let tok = raw.replace("~1", "/").replace("~0", "~");
            let seg = match (cur, tok.parse::<usize>()) {
                (Some(serde_json::Value::Array(_)), Ok(i)) => Seg::Index(i),
                _ => Seg::Key(tok),
            };
            cur = cur.and_then(|v| match &seg {
                Seg::Key(k) => v.as_object().and_then(|o| o.get(k)),
                Seg::Index(i) => v.as_array().and_then(|a| a.get(*i)),
            });
            segs.push(seg);
        }
        Self(segs)
    }
}

fn is_plain_key(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{k:?}]")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for s in ["gateway.port", "channels.whatsapp.allowFrom[1]", "channels.whatsapp.groups[\"123@g.us\"].requireMention", "$schema"] {
            let p = KeyPath::parse_dotted(s).unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(KeyPath::root().to_string(), "<root>");
        assert!(KeyPath::parse_dotted("a..b").is_none());
        assert!(KeyPath::parse_dotted("a[x]").is_none());
    }

    #[test]
    fn pointer_uses_the_value_to_tell_indices_from_keys() {
        let v = serde_json::json!({"a": [{"0": 1}], "b": {"1": 2}});
        assert_eq!(KeyPath::from_pointer("/a/0/0", &v).to_string(), "a[0][\"0\"]");
        assert_eq!(KeyPath::from_pointer("/b/1", &v).to_string(), "b[\"1\"]");
    }
}
