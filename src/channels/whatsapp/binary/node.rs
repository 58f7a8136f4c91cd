//! The WABinary node model: `(tag, attrs, content)`.

use std::fmt;

/// A node's content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Content {
    /// No content.
    #[default]
    None,
    /// Raw bytes (encoded as BINARY_n).
    Bytes(Vec<u8>),
    /// A string (encoded as token, packed digits/hex, JID or BINARY_n, whichever fits first).
    Text(String),
    /// Child nodes.
    Nodes(Vec<Node>),
}

/// One WABinary node. Attribute order is kept, since it determines the encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// Tag, e.g. `iq`.
    pub tag: String,
    /// Attributes in order.
    pub attrs: Vec<(String, String)>,
    /// Content.
    pub content: Content,
}

impl Node {
    /// A node with no attributes or content.
    pub fn new(tag: impl Into<String>) -> Self {
        Self {
            tag: tag.into(),
            attrs: Vec::new(),
            content: Content::None,
        }
    }

    /// Adds an attribute (builder style).
    pub fn attr(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.attrs.push((k.into(), v.into()));
        self
    }

    /// Sets child nodes (builder style).
    pub fn children(mut self, nodes: Vec<Node>) -> Self {
        self.content = Content::Nodes(nodes);
        self
    }

    /// Sets byte content (builder style).
    pub fn bytes(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.content = Content::Bytes(b.into());
        self
    }

    /// Sets text content (builder style).
    pub fn text(mut self, s: impl Into<String>) -> Self {
        self.content = Content::Text(s.into());
        self
    }

    /// The value of attribute `k`.
    pub fn get_attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    /// Child nodes (empty unless the content is a list).
    pub fn child_nodes(&self) -> &[Node] {
        match &self.content {
            Content::Nodes(n) => n,
            _ => &[],
        }
    }

    /// The first child with tag `tag`.
    pub fn child(&self, tag: &str) -> Option<&Node> {
        self.child_nodes().iter().find(|n| n.tag == tag)
    }

    /// Content as bytes (text content gives its UTF-8 bytes).
    pub fn content_bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Bytes(b) => Some(b),
            Content::Text(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

impl fmt::Display for Node {
    /// An XML-like rendering for logs and test failures (bytes shown as hex).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}", self.tag)?;
        for (k, v) in &self.attrs {
            write!(f, " {k}=\"{v}\"")?;
        }
        match &self.content {
            Content::None => write!(f, "/>"),
            Content::Bytes(b) => write!(f, ">[{}]</{}>", hex::encode(b), self.tag),
            Content::Text(s) => write!(f, ">{s}</{}>", self.tag),
            Content::Nodes(ns) => {
                write!(f, ">")?;
                for n in ns {
                    write!(f, "{n}")?;
                }
                write!(f, "</{}>", self.tag)
            }
        }
    }
}
