//! A strict JSON5 parser that keeps the position of every key and value.
//!
//! Why our own: the `json5` crate silently keeps the last of duplicate keys, turns `Infinity` into
//! `null`, and has no positions for values that parse (see `shared/reference/rust-stack.md` §A2).
//! The compiler needs all three: duplicates are errors with both positions, non-finite numbers are
//! errors, and every resolved leaf records file:line:col for provenance and diagnostics.
//!
//! The grammar follows the JSON5 spec (<https://spec.json5.org/>): comments, trailing commas,
//! unquoted identifier keys, single-quoted strings, hex numbers, leading/trailing decimal points,
//! `+` signs, line continuations in strings. A test checks agreement with the `json5` crate.
//!
//! Parsing never panics. A syntax error ends the parse; duplicate keys and non-finite numbers are
//! collected and parsing goes on, so one run reports all of them.

use std::fmt;

use super::path::KeyPath;

/// A position in the source text: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Pos {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A parsed value with the position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub value: NodeValue,
}

/// The kinds of JSON5 values.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A finite number.
    Number(serde_json::Number),
    /// A string, escapes resolved.
    String(String),
    /// An array.
    Array(Vec<Node>),
    /// An object, members in source order (duplicates already removed and reported).
    Object(Vec<Member>),
}

/// One `key: value` member of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The key, escapes resolved.
    pub key: String,
    /// Where the key starts (the quote for quoted keys).
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
}

impl Node {
    /// Converts to a plain `serde_json::Value`, dropping positions.
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Array(a) => Value::Array(a.iter().map(Node::to_value).collect()),
            NodeValue::Object(m) => {
                Value::Object(m.iter().map(|m| (m.key.clone(), m.value.to_value())).collect())
            }
        }
    }

    /// The JSON type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "boolean",
            NodeValue::Number(_) => "number",
            NodeValue::String(_) => "string",
            NodeValue::Array(_) => "array",
            NodeValue::Object(_) => "object",
        }
    }
}

/// What went wrong at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The text is not JSON5. Parsing stopped here.
    Syntax(String),
    /// A key appears twice in one object. The later member is dropped.
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the first one is.
        first: Pos,
    },
    /// `Infinity`, `NaN` or a number too large for a double. Replaced by `null`.
    NonFinite(String),
}

/// A parse problem with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where (for duplicates, the second key).
    pub pos: Pos,
    /// The config path of the value being parsed.
    pub path: KeyPath,
    /// What.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::Syntax(m) => write!(f, "{}: {m}", self.pos),
            ParseErrorKind::DuplicateKey { key, first, .. } => {
                write!(f, "{}: duplicate key {key:?} (first defined at {first})", self.pos)
            }
            ParseErrorKind::NonFinite(t) => {
                write!(f, "{}: non-finite number {t} is not allowed", self.pos)
            }
        }
    }
}

/// The result of a parse: the tree (absent after a syntax error) and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The document, unless a syntax error stopped the parse.
    pub node: Option<Node>,
    /// Syntax errors (at most one, last), duplicate keys and non-finite numbers, in text order.
    pub errors: Vec<ParseError>,
}

/// Nesting deeper than this is refused (protects the stack on hostile input).
pub const MAX_DEPTH: usize = 128;

/// Parses a JSON5 document.
pub fn parse(text: &str) -> Parsed {
    let mut p = Parser { src: text, i: 0, line: 1, col: 1, errors: Vec::new(), path: KeyPath::root() };
    let node = match p.document() {
        Ok(n) => Some(n),
        Err(e) => {
            p.errors.push(e);
            None
        }
    };
    Parsed { node, errors: p.errors }
}

struct Parser<'a> {
    src: &'a str,
    i: usize,
    line: u32,
    col: u32,
    errors: Vec<ParseError>,
    /// Path of the value being parsed (for duplicate-key reports).
    path: KeyPath,
}

type PResult<T> = Result<T, ParseError>;

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

fn is_json5_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\u{0B}'
            | '\u{0C}'
            | '\u{A0}'
            | '\u{FEFF}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    ) || is_line_terminator(c)
}

fn is_id_start(c: char) -> bool {
    c == '$' || c == '_' || c.is_alphabetic()
}

fn is_id_continue(c: char) -> bool {
    is_id_start(c) || c.is_alphanumeric() || c == '\u{200C}' || c == '\u{200D}'
}

fn describe(c: Option<char>) -> String {
    match c {
        None => "end of input".to_string(),
        Some(c) if c.is_control() || c.is_whitespace() => format!("character U+{:04X}", c as u32),
        Some(c) => format!("character {c:?}"),
    }
}

impl<'a> Parser<'a> {
    fn pos(&self) -> Pos {
        Pos { line: self.line, col: self.col }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.i..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.i..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        if c == '\n' || c == '\u{2028}' || c == '\u{2029}' {
            self.line += 1;
            self.col = 1;
        } else if c == '\r' {
            // \r\n is one line break: count it at the \n.
            if self.peek() == Some('\n') {
                self.col += 1;
            } else {
                self.line += 1;
                self.col = 1;
            }
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err<T>(&self, pos: Pos, msg: impl Into<String>) -> PResult<T> {
        Err(ParseError { pos, path: self.path.clone(), kind: ParseErrorKind::Syntax(msg.into()) })
    }

    fn unexpected<T>(&self, expected: &str) -> PResult<T> {
        self.err(self.pos(), format!("unexpected {}, expected {expected}", describe(self.peek())))
    }

    fn skip_ws(&mut self) -> PResult<()> {
        loop {
            match self.peek() {
                Some(c) if is_json5_space(c) => {
                    self.bump();
                }
                Some('/') => match self.peek2() {
                    Some('/') => {
                        while let Some(c) = self.peek() {
                            if is_line_terminator(c) {
                                break;
                            }
                            self.bump();
                        }
                    }
                    Some('*') => {
                        let start = self.pos();
                        self.bump();
                        self.bump();
                        loop {
                            match self.bump() {
                                None => return self.err(start, "unterminated block comment"),
                                Some('*') if self.peek() == Some('/') => {
                                    self.bump();
                                    break;
                                }
                                Some(_) => {}
                            }
                        }
                    }
                    _ => return self.unexpected("a value"),
                },
                _ => return Ok(()),
            }
        }
    }

    fn document(&mut self) -> PResult<Node> {
        self.skip_ws()?;
        if self.peek().is_none() {
            return self.err(self.pos(), "empty document, expected a value");
        }
        let node = self.value(0)?;
        self.skip_ws()?;
        if self.peek().is_some() {
            return self.unexpected("end of input after the top-level value");
        }
        Ok(node)
    }

    fn value(&mut self, depth: usize) -> PResult<Node> {
        let pos = self.pos();
        match self.peek() {
            Some('{') => self.object(depth + 1),
            Some('[') => self.array(depth + 1),
            Some('"') | Some('\'') => Ok(Node { pos, value: NodeValue::String(self.string()?) }),
            Some(c) if c == '-' || c == '+' || c == '.' || c.is_ascii_digit() => self.number(),
            Some('I') | Some('N') => self.number(),
            Some(c) if is_id_start(c) => {
                let word = self.identifier_raw();
                match word {
                    "null" => Ok(Node { pos, value: NodeValue::Null }),
                    "true" => Ok(Node { pos, value: NodeValue::Bool(true) }),
                    "false" => Ok(Node { pos, value: NodeValue::Bool(false) }),
                    w => self.err(pos, format!("unexpected word {w:?}, expected a value (strings need quotes)")),
                }
            }
            _ => self.unexpected("a value"),
        }
    }

    /// Reads a run of identifier characters (no escapes) for keywords.
    fn identifier_raw(&mut self) -> &'a str {
        let start = self.i;
        while let Some(c) = self.peek() {
            if !is_id_continue(c) {
                break;
            }
            self.bump();
        }
        &self.src[start..self.i]
    }

    fn object(&mut self, depth: usize) -> PResult<Node> {
        let pos = self.pos();
        if depth > MAX_DEPTH {
            return self.err(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.bump(); // {
        let mut members: Vec<Member> = Vec::new();
        // Key -> index in `members`: duplicate detection stays linear in the member count.
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some('}') {
                self.bump();
                return Ok(Node { pos, value: NodeValue::Object(members) });
            }
            let key_pos = self.pos();
            let key = match self.peek() {
                Some('"') | Some('\'') => self.string()?,
                Some(c) if is_id_start(c) || c == '\\' => self.identifier()?,
                _ => return self.unexpected("a key or '}'"),
            };
            self.skip_ws()?;
            if self.peek() != Some(':') {
                return self.unexpected("':' after the key");
            }
            self.bump();
            self.skip_ws()?;
            let outer = std::mem::replace(&mut self.path, KeyPath::root());
            self.path = outer.key(&key);
            let value = self.value(depth);
            let member_path = std::mem::replace(&mut self.path, outer);
            let value = value?;
            if let Some(&first) = seen.get(&key) {
                self.errors.push(ParseError {
                    pos: key_pos,
                    path: member_path,
                    kind: ParseErrorKind::DuplicateKey { key, first: members[first].key_pos },
                });
            } else {
                seen.insert(key.clone(), members.len());
                members.push(Member { key, key_pos, value });
            }
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    return Ok(Node { pos, value: NodeValue::Object(members) });
                }
                _ => return self.unexpected("',' or '}' after an object member"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> PResult<Node> {
        let pos = self.pos();
        if depth > MAX_DEPTH {
            return self.err(pos, format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.bump(); // [
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(']') {
                self.bump();
                return Ok(Node { pos, value: NodeValue::Array(items) });
            }
            let outer = std::mem::replace(&mut self.path, KeyPath::root());
            self.path = outer.index(items.len());
            let item = self.value(depth);
            self.path = outer;
            items.push(item?);
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(']') => {
                    self.bump();
                    return Ok(Node { pos, value: NodeValue::Array(items) });
                }
                _ => return self.unexpected("',' or ']' after an array element"),
            }
        }
    }

    /// An identifier key, with `\uXXXX` escapes.
    fn identifier(&mut self) -> PResult<String> {
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.peek() {
                Some('\\') => {
                    self.bump();
                    if self.bump() != Some('u') {
                        return self.err(pos, "invalid escape in identifier (only \\uXXXX is allowed)");
                    }
                    let c = self.unicode_escape(pos)?;
                    let ok = if out.is_empty() { is_id_start(c) } else { is_id_continue(c) };
                    if !ok {
                        return self.err(pos, format!("escaped character {c:?} is not allowed in an identifier"));
                    }
                    out.push(c);
                }
                Some(c) if (out.is_empty() && is_id_start(c)) || (!out.is_empty() && is_id_continue(c)) => {
                    self.bump();
                    out.push(c);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    fn hex_digits(&mut self, n: usize, pos: Pos) -> PResult<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    self.bump();
                    v = v * 16 + d;
                }
                None => return self.err(pos, format!("invalid escape: expected {n} hex digits")),
            }
        }
        Ok(v)
    }

    /// After `\u`: four hex digits, combining a surrogate pair if one follows.
    fn unicode_escape(&mut self, pos: Pos) -> PResult<char> {
        let hi = self.hex_digits(4, pos)?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.peek() == Some('\\') && self.peek2() == Some('u') {
                self.bump();
                self.bump();
                let lo = self.hex_digits(4, pos)?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    if let Some(c) = char::from_u32(c) {
                        return Ok(c);
                    }
                }
            }
            return self.err(pos, "invalid \\u escape: unpaired surrogate");
        }
        match char::from_u32(hi) {
            Some(c) => Ok(c),
            None => self.err(pos, "invalid \\u escape: unpaired surrogate"),
        }
    }

    fn string(&mut self) -> PResult<String> {
        let start = self.pos();
        let quote = self.bump();
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None => return self.err(start, "unterminated string"),
                Some(c) if Some(c) == quote => return Ok(out),
                Some('\n') | Some('\r') => {
                    return self.err(pos, "line break inside a string (use \\n, or \\ at the line end)")
                }
                Some('\\') => match self.bump() {
                    None => return self.err(start, "unterminated string"),
                    Some('b') => out.push('\u{08}'),
                    Some('f') => out.push('\u{0C}'),
                    Some('n') => out.push('\n'),
                    Some('r') => {
                        out.push('\r');
                    }
                    Some('t') => out.push('\t'),
                    Some('v') => out.push('\u{0B}'),
                    Some('0') => {
                        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            return self.err(pos, "invalid escape: \\0 must not be followed by a digit");
                        }
                        out.push('\0');
                    }
                    Some('x') => {
                        let v = self.hex_digits(2, pos)?;
                        // Two hex digits are always a valid scalar value.
                        out.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                    }
                    Some('u') => out.push(self.unicode_escape(pos)?),
                    Some('\r') => {
                        // Line continuation; \r\n counts as one terminator.
                        if self.peek() == Some('\n') {
                            self.bump();
                        }
                    }
                    Some('\n') | Some('\u{2028}') | Some('\u{2029}') => {}
                    Some(c) if c.is_ascii_digit() => {
                        return self.err(pos, format!("invalid escape \\{c}"));
                    }
                    Some(c) => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn number(&mut self) -> PResult<Node> {
        let pos = self.pos();
        let start = self.i;
        let negative = match self.peek() {
            Some('-') => {
                self.bump();
                true
            }
            Some('+') => {
                self.bump();
                false
            }
            _ => false,
        };
        let value = match self.peek() {
            Some('I') | Some('N') => {
                let word = self.identifier_raw();
                if word != "Infinity" && word != "NaN" {
                    return self.err(pos, format!("unexpected word {word:?}, expected a value (strings need quotes)"));
                }
                self.errors.push(ParseError {
                    pos,
                    path: self.path.clone(),
                    kind: ParseErrorKind::NonFinite(self.src[start..self.i].to_string()),
                });
                NodeValue::Null
            }
            Some('0') if matches!(self.peek2(), Some('x') | Some('X')) => {
                self.bump();
                self.bump();
                let digits_start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                    self.bump();
                }
                let digits = &self.src[digits_start..self.i];
                if digits.is_empty() {
                    return self.err(pos, "invalid hex number: no digits after 0x");
                }
                match u64::from_str_radix(digits, 16) {
                    Ok(v) => int_value(negative, v),
                    Err(_) => {
                        // Larger than u64: a double, as JavaScript would read it.
                        let mut f = 0f64;
                        for c in digits.chars() {
                            f = f * 16.0 + f64::from(c.to_digit(16).unwrap_or(0));
                        }
                        self.float_value(pos, if negative { -f } else { f }, start)
                    }
                }
            }
            _ => {
                let mut int_digits = 0usize;
                let int_start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                    int_digits += 1;
                }
                if int_digits > 1 && self.src[int_start..].starts_with('0') {
                    return self.err(pos, "invalid number: leading zeros are not allowed");
                }
                let mut is_float = false;
                let mut frac_digits = 0usize;
                if self.peek() == Some('.') {
                    is_float = true;
                    self.bump();
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                        frac_digits += 1;
                    }
                }
                if int_digits == 0 && frac_digits == 0 {
                    return self.err(pos, "invalid number");
                }
                if matches!(self.peek(), Some('e') | Some('E')) {
                    is_float = true;
                    self.bump();
                    if matches!(self.peek(), Some('+') | Some('-')) {
                        self.bump();
                    }
                    let mut exp_digits = 0;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                        exp_digits += 1;
                    }
                    if exp_digits == 0 {
                        return self.err(pos, "invalid number: exponent has no digits");
                    }
                }
                let body = &self.src[int_start..self.i];
                let parsed_int = if is_float { None } else { body.parse::<u64>().ok() };
                match parsed_int {
                    Some(v) => int_value(negative, v),
                    None => match body.parse::<f64>() {
                        Ok(f) => self.float_value(pos, if negative { -f } else { f }, start),
                        Err(_) => return self.err(pos, "invalid number"),
                    },
                }
            }
        };
        if self.peek().is_some_and(|c| is_id_continue(c) || c == '.') {
            return self.unexpected("a separator after the number");
        }
        Ok(Node { pos, value })
    }

    fn float_value(&mut self, pos: Pos, f: f64, start: usize) -> NodeValue {
        match serde_json::Number::from_f64(f) {
            Some(n) => NodeValue::Number(n),
            None => {
                self.errors.push(ParseError {
                    pos,
                    path: self.path.clone(),
                    kind: ParseErrorKind::NonFinite(self.src[start..self.i].to_string()),
                });
                NodeValue::Null
            }
        }
    }
}

fn int_value(negative: bool, v: u64) -> NodeValue {
    if !negative {
        return NodeValue::Number(v.into());
    }
    match i64::try_from(v) {
        Ok(i) => NodeValue::Number((-i).into()),
        Err(_) => {
            if v == 1u64 << 63 {
                NodeValue::Number(i64::MIN.into())
            } else {
                // Below i64::MIN: a double, as JavaScript would read it (always finite).
                serde_json::Number::from_f64(-(v as f64)).map_or(NodeValue::Null, NodeValue::Number)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> serde_json::Value {
        let p = parse(text);
        assert!(p.errors.is_empty(), "{text}: {:?}", p.errors);
        p.node.expect("node").to_value()
    }

    fn first_err(text: &str) -> String {
        let p = parse(text);
        p.errors.first().map(|e| e.to_string()).unwrap_or_else(|| panic!("no error for {text}"))
    }

    #[test]
    fn json5_features() {
        assert_eq!(
            ok("// c\n{a: 1, 'b': \"x\", /* c */ c: [1, 2,], d: {e: null,},}"),
            json!({"a": 1, "b": "x", "c": [1, 2], "d": {"e": null}})
        );
        assert_eq!(ok("0x1F"), json!(31));
        assert_eq!(ok("-0x10"), json!(-16));
        assert_eq!(ok(".5"), json!(0.5));
        assert_eq!(ok("5."), json!(5.0));
        assert_eq!(ok("+3"), json!(3));
        assert_eq!(ok("1e3"), json!(1000.0));
        assert_eq!(ok("'a\\\nb'"), json!("ab"));
        assert_eq!(ok(r#""\x41\u0042\uD83D\uDE00\v\0""#), json!("AB\u{1F600}\u{0B}\0"));
        assert_eq!(ok("{$a_1: 1, \\u0061b: 2, null: 3}"), json!({"$a_1": 1, "ab": 2, "null": 3}));
        assert_eq!(ok("18446744073709551615"), json!(18446744073709551615u64));
        assert_eq!(ok("-9223372036854775808"), json!(i64::MIN));
    }

    #[test]
    fn positions_of_keys_and_values() {
        let p = parse("{\n  gateway: {\n    port: 18789,\n  },\n}");
        let root = p.node.unwrap();
        let NodeValue::Object(m) = &root.value else { panic!() };
        assert_eq!(m[0].key_pos, Pos { line: 2, col: 3 });
        let NodeValue::Object(g) = &m[0].value.value else { panic!() };
        assert_eq!(g[0].key_pos, Pos { line: 3, col: 5 });
        assert_eq!(g[0].value.pos, Pos { line: 3, col: 11 });
    }

    #[test]
    fn crlf_counts_as_one_line() {
        let p = parse("{\r\n a: 1,\r\n b: x}");
        assert_eq!(p.errors[0].pos, Pos { line: 3, col: 5 });
    }

    #[test]
    fn duplicates_are_all_reported_with_both_positions() {
        let p = parse("{\n groupPolicy: 'open',\n x: {a: 1, a: 2},\n groupPolicy: 'allowlist',\n}");
        let msgs: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "3:12: duplicate key \"a\" (first defined at 3:6)",
                "4:2: duplicate key \"groupPolicy\" (first defined at 2:2)",
            ]
        );
        // The first definition is kept.
        assert_eq!(p.node.unwrap().to_value(), json!({"groupPolicy": "open", "x": {"a": 1}}));
    }

    #[test]
    fn non_finite_numbers_are_errors() {
        assert_eq!(first_err("{a: Infinity}"), "1:5: non-finite number Infinity is not allowed");
        assert_eq!(first_err("[-NaN]"), "1:2: non-finite number -NaN is not allowed");
        assert_eq!(first_err("1e999"), "1:1: non-finite number 1e999 is not allowed");
    }

    #[test]
    fn syntax_errors_have_positions() {
        assert_eq!(first_err("{a: 1,, }"), "1:7: unexpected character ',', expected a key or '}'");
        assert_eq!(first_err("{a 1}"), "1:4: unexpected character '1', expected ':' after the key");
        assert_eq!(first_err("{a: yes}"), "1:5: unexpected word \"yes\", expected a value (strings need quotes)");
        assert_eq!(first_err("01"), "1:1: invalid number: leading zeros are not allowed");
        assert_eq!(first_err("'abc"), "1:1: unterminated string");
        assert_eq!(first_err("/* x"), "1:1: unterminated block comment");
        assert_eq!(first_err(""), "1:1: empty document, expected a value");
        assert_eq!(first_err("{} x"), "1:4: unexpected character 'x', expected end of input after the top-level value");
        assert_eq!(first_err("[1 2]"), "1:4: unexpected character '2', expected ',' or ']' after an array element");
        assert_eq!(first_err("12abc"), "1:3: unexpected character 'a', expected a separator after the number");
        assert_eq!(first_err("'\\1'"), "1:2: invalid escape \\1");
        assert_eq!(first_err("'\\uD800'"), "1:2: invalid \\u escape: unpaired surrogate");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(100_000);
        assert!(first_err(&text).contains("nesting deeper than 128 levels"));
    }
}
