//! Markdown as models write it, adapted to WhatsApp's formatting (`*bold*`, `_italic_`,
//! `~strike~`, `` `code` ``, ```` ```blocks``` ````).
//!
//! | Markdown | WhatsApp |
//! |---|---|
//! | `**bold**`, `__bold__` | `*bold*` |
//! | `*italic*` | `_italic_` (`_italic_` stays) |
//! | `~~strike~~` | `~strike~` |
//! | `# Heading` (levels 1–6) | `*Heading*` |
//! | `[text](url)` | `text (url)` (just `url` when both are the same) |
//! | `` `code` ``, fenced blocks | unchanged |
//!
//! List markers (`- `, `* `, `1. `) are left alone: WhatsApp renders them. Unbalanced markers
//! are copied as they are.

/// Converts Markdown to WhatsApp formatting.
pub fn to_whatsapp(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let trimmed = body.trim_start();
        let fence = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
        match (in_fence, fence) {
            (None, Some(f)) => {
                in_fence = Some(f);
                out.push_str(line);
                continue;
            }
            (Some(open), Some(f)) if open == f => {
                in_fence = None;
                out.push_str(line);
                continue;
            }
            (Some(_), _) => {
                out.push_str(line);
                continue;
            }
            (None, None) => {}
        }
        out.push_str(&convert_line(body));
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn convert_line(line: &str) -> String {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with([' ', '\t']) {
        let title = line[hashes..].trim().trim_end_matches('#').trim_end();
        if !title.is_empty() {
            let inner = inline(title);
            let inner = inner.strip_prefix('*').and_then(|s| s.strip_suffix('*')).unwrap_or(&inner).to_string();
            return format!("*{inner}*");
        }
    }
    inline(line)
}

/// The content between `marker` at the start of `s` and its closing `marker`, if the span is
/// well formed (non-empty, no space just inside the markers).
fn span<'a>(s: &'a str, marker: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(marker)?;
    if rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut search = 0;
    while let Some(found) = rest[search..].find(marker) {
        let end = search + found;
        let content = &rest[..end];
        let double_star = marker == "*" && rest[end..].starts_with("**");
        if !content.is_empty() && !content.ends_with(char::is_whitespace) && !double_star {
            return Some(content);
        }
        search = end + if double_star { 2 } else { marker.len() };
    }
    None
}

fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if let Some(end) = rest.strip_prefix('`').and_then(|r| r.find('`')) {
            out.push_str(&rest[..end + 2]);
            i += end + 2;
            continue;
        }
        let mut matched = false;
        for (marker, wa) in [("**", "*"), ("__", "*"), ("~~", "~"), ("*", "_")] {
            if let Some(content) = span(rest, marker) {
                out.push_str(wa);
                out.push_str(&inline(content));
                out.push_str(wa);
                i += 2 * marker.len() + content.len();
                matched = true;
                break;
            }
        }
        if matched {
            continue;
        }
        if let Some((text, url, len)) = link(rest) {
            if text == url {
                out.push_str(url);
            } else {
                out.push_str(&inline(text));
                out.push_str(" (");
                out.push_str(url);
                out.push(')');
            }
            i += len;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        // A run of markers that opened nothing is copied whole, so `***` is not re-read as `*`.
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `[text](url)` at the start of `s`: text, url and the byte length of the whole link.
fn link(s: &str) -> Option<(&str, &str, usize)> {
    let r = s.strip_prefix('[')?;
    let close = r.find("](")?;
    let text = &r[..close];
    if text.is_empty() || text.contains('[') {
        return None;
    }
    let after = &r[close + 2..];
    let end = after.find(')')?;
    let url = &after[..end];
    if url.is_empty() || url.contains(char::is_whitespace) {
        return None;
    }
    Some((text, url, 1 + close + 2 + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let cases = [
            ("**bold**", "*bold*"),
            ("__bold__", "*bold*"),
            ("*it*", "_it_"),
            ("_it_", "_it_"),
            ("~~gone~~", "~gone~"),
            ("a **b** and *c* and ~~d~~.", "a *b* and _c_ and ~d~."),
            ("**bold with *it* inside**", "*bold with _it_ inside*"),
            ("# Title", "*Title*"),
            ("### Sub ##", "*Sub*"),
            ("## **Bold title**", "*Bold title*"),
            ("#hashtag", "#hashtag"),
            ("see [docs](https://x.y/z)", "see docs (https://x.y/z)"),
            ("[https://x.y](https://x.y)", "https://x.y"),
            ("`**not bold**`", "`**not bold**`"),
            ("- item\n* item", "- item\n* item"),
            ("2 * 3 * 4", "2 * 3 * 4"),
            ("**unclosed", "**unclosed"),
            ("émoji **😀**", "émoji *😀*"),
        ];
        for (md, wa) in cases {
            assert_eq!(to_whatsapp(md), wa, "{md:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_plain_text_is_unchanged(text in "(\\PC|[*_~#`\\[\\]()\n ]|😀)*") {
            let out = to_whatsapp(&text);
            if !text.contains(['*', '_', '~', '#', '[', '`']) {
                proptest::prop_assert_eq!(out, text);
            }
        }
    }

    #[test]
    fn fenced_code_is_left_alone() {
        let md = "**x**\n```rust\nlet a = **b**;\n# not a title\n```\n# T\n";
        assert_eq!(to_whatsapp(md), "*x*\n```rust\nlet a = **b**;\n# not a title\n```\n*T*\n");
    }
}
