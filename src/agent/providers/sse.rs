//! An incremental Server-Sent Events parser (the `text/event-stream` format both provider APIs
//! stream): bytes in, complete events out, whatever the chunk boundaries. Pure.
//!
//! Lines end with `\n`, `\r\n` or `\r`; `data:` lines of one event are joined with `\n`; a
//! blank line ends the event; `:` lines are comments; one space after the colon is dropped.

/// One event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The joined `data:` lines.
    pub data: String,
}

/// The parser state: an incomplete line and the fields of the event being read.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    pending_cr: bool,
}

impl SseParser {
    /// A new parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = bytes;
        // An empty chunk tells nothing about the `\n` that may follow a chunk-ending `\r`.
        if self.pending_cr && !rest.is_empty() {
            self.pending_cr = false;
            if let Some(r) = rest.strip_prefix(b"\n") {
                rest = r;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..pos]);
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out);
            if rest[pos] == b'\r' {
                match rest.get(pos + 1) {
                    Some(b'\n') => rest = &rest[pos + 2..],
                    Some(_) => rest = &rest[pos + 1..],
                    None => {
                        self.pending_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[pos + 1..];
            }
        }
        self.line.extend_from_slice(rest);
        out
    }

    /// Ends the stream: an event not closed by a blank line is returned (servers that close
    /// right after the last `data:` line).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let line = std::mem::take(&mut self.line);
        let mut out = Vec::new();
        if !line.is_empty() {
            self.line_done(&line, &mut out);
        }
        self.line_done(b"", &mut out);
        out.pop()
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseEvent { event: self.event.take(), data });
            }
            self.event = None;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => (&text[..i], text[i + 1..].strip_prefix(' ').unwrap_or(&text[i + 1..])),
            None => (&text[..], ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: event.map(String::from), data: data.into() }
    }

    #[test]
    fn events_data_lines_comments_and_line_ends() {
        let mut p = SseParser::new();
        let out = p.push(b": ping\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\ndata:[DONE]\r\r");
        assert_eq!(out, vec![ev(Some("message_start"), "{\"a\":1}"), ev(None, "x\ny"), ev(None, "[DONE]")]);
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn an_unterminated_last_event_is_returned_by_finish() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: tail").is_empty());
        assert_eq!(p.finish(), Some(ev(None, "tail")));
    }

    /// Found by the proptest below in CI: `\r` ending a chunk, then an empty chunk, then `\n`
    /// made a blank line out of the `\r\n` and dropped the event's name.
    #[test]
    fn an_empty_chunk_between_cr_and_lf_keeps_the_event_name() {
        let mut p = SseParser::new();
        let mut got = p.push(b"event: a\r");
        got.extend(p.push(b""));
        got.extend(p.push(b"\ndata: one\r\n\r\n"));
        assert_eq!(got, vec![ev(Some("a"), "one")]);
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(cuts in proptest::collection::vec(0usize..120, 0..8)) {
            let stream: &[u8] = b"event: a\r\ndata: one\r\n\r\n: c\ndata: two\ndata: \xc3\xa9\n\ndata: 3\r\r\ndata: 4\n\n";
            let whole = { let mut p = SseParser::new(); let mut v = p.push(stream); v.extend(p.finish()); v };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort();
            let mut p = SseParser::new();
            let mut got = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                got.extend(p.push(&stream[last..c]));
                last = c;
            }
            got.extend(p.finish());
            prop_assert_eq!(&got, &whole);
            prop_assert_eq!(got.len(), 4);
        }
    }
}
