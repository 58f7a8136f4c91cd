//! Splitting a reply into messages of at most `textChunkLimit` (upstream `chunkTextWithMode`,
//! `oc/dist/chunk-*.mjs` and `text-chunking-*.mjs`).
//!
//! Lengths are counted in UTF-16 code units, as upstream's JavaScript counts them, so a chunk
//! upstream accepts is one we accept. A chunk always ends on a character boundary: a character
//! outside the BMP (a surrogate pair in UTF-16) is never split, so no chunk holds a lone surrogate
//! and every chunk is valid UTF-8.
//!
//! - `length` (default): while the rest is longer than the limit, break inside the first `limit`
//!   units at the last newline, else the last other whitespace, ignoring breaks inside
//!   parentheses; with no break, cut hard at the limit. Whitespace at a break is dropped (the end
//!   of the chunk and the start of the rest are trimmed).
//! - `newline`: break at paragraph separators (a blank line, `\n[\t ]*\n+`, outside fenced code),
//!   packing paragraphs into a chunk while it fits, and falling back to `length` for a paragraph
//!   longer than the limit. Line ends are normalised to `\n` first.
//!
//! Differences from upstream, on purpose: breaks fall on character boundaries, not grapheme
//! clusters (a combining mark may start the next chunk); a single character wider than a
//! limit of 1 unit still makes progress as a chunk of its own. Markdown-fence reopening across
//! chunks (upstream's markdown chunker) is not done.

use crate::config::model::whatsapp::ChunkMode;

/// Upstream's default `textChunkLimit`.
pub const DEFAULT_LIMIT: usize = 4000;

/// The UTF-16 length of `s`, as JavaScript's `String.length`.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits `text` into chunks of at most `limit` UTF-16 units by `mode`. A `limit` of 0 means no
/// splitting. Empty text gives no chunk.
pub fn chunk_text(text: &str, limit: usize, mode: ChunkMode) -> Vec<String> {
    match mode {
        ChunkMode::Length => chunk_by_length(text, limit).into_iter().map(str::to_string).collect(),
        ChunkMode::Newline => chunk_by_paragraph(text, limit),
    }
}

/// The largest byte index `i` such that `s[..i]` has at most `limit` UTF-16 units.
fn window_end(s: &str, limit: usize) -> usize {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > limit {
            return i;
        }
    }
    s.len()
}

/// Last newline, else last other whitespace, outside parentheses; `None` when neither is
/// after the start (upstream: a break index must be `> 0`).
fn break_index(window: &str) -> Option<usize> {
    let mut depth = 0usize;
    let (mut newline, mut space) = (None, None);
    for (i, c) in window.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '\n' => newline = Some(i),
            c if c.is_whitespace() => space = Some(i),
            _ => {}
        }
    }
    newline.filter(|&i| i > 0).or(space.filter(|&i| i > 0))
}

/// `length` mode: slices of `text`, in order; what lies between two chunks is whitespace only.
pub fn chunk_by_length(text: &str, limit: usize) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    if limit == 0 || utf16_len(text) <= limit {
        return vec![text];
    }
    let mut out = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > limit {
        let end = window_end(rest, limit);
        let mut cut = break_index(&rest[..end]).unwrap_or(end);
        if cut == 0 {
            // One character wider than the limit: it goes alone rather than split.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let chunk = rest[..cut].trim_end();
        if !chunk.is_empty() {
            out.push(chunk);
        }
        rest = rest[cut..].trim_start();
    }
    let last = rest.trim_end();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// Byte ranges of fenced code blocks (lines opening with ```` ``` ```` or `~~~`, up to the
/// closing fence line or the end of the text).
fn code_regions(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, char)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start_matches(' ');
        let indent_ok = line.len() - t.len() <= 3;
        let fence = if t.starts_with("```") {
            Some('`')
        } else if t.starts_with("~~~") {
            Some('~')
        } else {
            None
        };
        match (open, fence) {
            (None, Some(f)) if indent_ok => open = Some((pos, f)),
            (Some((start, f)), Some(g)) if f == g && indent_ok => {
                out.push((start, pos + line.trim_end_matches('\n').len()));
                open = None;
            }
            _ => {}
        }
        pos += line.len();
    }
    if let Some((start, _)) = open {
        out.push((start, text.len()));
    }
    out
}

/// Paragraph separators `\n[\t ]*\n+` outside code: `(start, end)` byte ranges.
fn separators(text: &str) -> Vec<(usize, usize)> {
    let code = code_regions(text);
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            let mut j = i + 1;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                j += 1;
            }
            if j < b.len() && b[j] == b'\n' {
                while j < b.len() && b[j] == b'\n' {
                    j += 1;
                }
                if !code.iter().any(|&(s, e)| i >= s && i < e) {
                    out.push((i, j));
                }
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// `newline` mode (upstream `chunkByParagraph`).
pub fn chunk_by_paragraph(text: &str, limit: usize) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let normalized = text.replace('\u{2029}', "\n\n").replace("\r\n", "\n").replace(['\r', '\u{2028}'], "\n");
    if limit == 0 {
        return vec![normalized];
    }
    let seps = separators(&normalized);
    if seps.is_empty() {
        return chunk_by_length(&normalized, limit).into_iter().map(str::to_string).collect();
    }
    let mut parts = Vec::with_capacity(seps.len() + 1);
    let mut last = 0;
    for &(s, e) in &seps {
        parts.push((&normalized[last..s], Some(&normalized[s..e])));
        last = e;
    }
    parts.push((&normalized[last..], None));

    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut before: Option<&str> = None;
    for (part, sep_after) in parts {
        let paragraph = part.trim_end();
        if !paragraph.is_empty() {
            push_paragraph(&mut chunks, &mut current, paragraph, before, limit);
        }
        before = sep_after;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn push_paragraph(chunks: &mut Vec<String>, current: &mut String, paragraph: &str, sep: Option<&str>, limit: usize) {
    if current.is_empty() {
        if utf16_len(paragraph) <= limit {
            current.push_str(paragraph);
        } else {
            chunks.extend(chunk_by_length(paragraph, limit).into_iter().map(str::to_string));
        }
        return;
    }
    let sep = sep.unwrap_or("\n\n");
    if utf16_len(current) + utf16_len(sep) + utf16_len(paragraph) <= limit {
        current.push_str(sep);
        current.push_str(paragraph);
        return;
    }
    chunks.push(std::mem::take(current));
    push_paragraph(chunks, current, paragraph, None, limit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_chunk_unchanged() {
        assert_eq!(chunk_text("  hi  ", 10, ChunkMode::Length), vec!["  hi  "]);
        assert!(chunk_text("", 10, ChunkMode::Length).is_empty());
    }

    #[test]
    fn length_breaks_at_newline_then_space_then_hard() {
        assert_eq!(chunk_by_length("aaa bbb\nccc ddd", 12), vec!["aaa bbb", "ccc ddd"]);
        assert_eq!(chunk_by_length("aaa bbb ccc", 9), vec!["aaa bbb", "ccc"]);
        assert_eq!(chunk_by_length("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        // No break inside parentheses.
        assert_eq!(chunk_by_length("ab (c d e) fgh", 9), vec!["ab", "(c d e)", "fgh"]);
    }

    #[test]
    fn nine_thousand_characters_make_three_chunks_at_4000() {
        let text = "word ".repeat(1800);
        let chunks = chunk_text(&text, DEFAULT_LIMIT, ChunkMode::Length);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| utf16_len(c) <= DEFAULT_LIMIT));
    }

    #[test]
    fn surrogate_pairs_are_never_split() {
        // 😀 is 2 UTF-16 units: with limit 5 "a😀😀" (5 units) fits, the next emoji does not.
        let chunks = chunk_by_length("a😀😀😀", 5);
        assert_eq!(chunks, vec!["a😀😀", "😀"]);
        let chunks = chunk_by_length("😀😀😀", 3);
        assert_eq!(chunks, vec!["😀", "😀", "😀"]);
    }

    #[test]
    fn newline_mode_packs_paragraphs() {
        let text = "one\n\ntwo\n\nthree is longer";
        assert_eq!(chunk_text(text, 10, ChunkMode::Newline), vec!["one\n\ntwo", "three is", "longer"]);
        assert_eq!(chunk_text(text, 100, ChunkMode::Newline), vec![text]);
        assert_eq!(chunk_text("a\r\n\r\nb", 1, ChunkMode::Newline), vec!["a", "b"]);
    }

    #[test]
    fn newline_mode_keeps_blank_lines_inside_code() {
        let text = "intro\n\n```\ncode\n\nmore\n```\n\nend";
        assert_eq!(chunk_text(text, 18, ChunkMode::Newline), vec!["intro", "```\ncode\n\nmore\n```", "end"]);
    }

    fn no_ws(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn length_chunks_rejoin_to_the_original(text in "(\\PC|[ \n\t😀é])*", limit in 2usize..40) {
            let chunks = chunk_by_length(&text, limit);
            // Each chunk is a slice of the original, in order, and what lies between two chunks
            // (and around them) is whitespace only: rejoining with those gaps gives the original.
            let mut pos = 0;
            let mut rejoined = String::new();
            for c in &chunks {
                prop_assert!(!c.is_empty());
                prop_assert!(utf16_len(c) <= limit, "chunk {c:?} longer than {limit}");
                let off = c.as_ptr() as usize - text.as_ptr() as usize;
                prop_assert!(off >= pos);
                let gap = &text[pos..off];
                prop_assert!(gap.chars().all(char::is_whitespace), "gap {gap:?}");
                rejoined.push_str(gap);
                rejoined.push_str(c);
                pos = off + c.len();
            }
            let tail = &text[pos..];
            prop_assert!(tail.chars().all(char::is_whitespace));
            rejoined.push_str(tail);
            prop_assert_eq!(rejoined, text);
        }

        #[test]
        fn newline_chunks_keep_every_visible_character(text in "(\\PC|[ \n\r\t😀]|\n\n|```)*", limit in 2usize..40) {
            let chunks = chunk_text(&text, limit, ChunkMode::Newline);
            for c in &chunks {
                prop_assert!(!c.is_empty());
                prop_assert!(utf16_len(c) <= limit, "chunk {c:?} longer than {limit}");
                // Valid UTF-8 with no lone surrogate: a round trip through UTF-16 is lossless.
                prop_assert_eq!(String::from_utf16(&c.encode_utf16().collect::<Vec<_>>()).unwrap(), c.clone());
            }
            prop_assert_eq!(no_ws(&chunks.concat()), no_ws(&text));
        }
    }
}
