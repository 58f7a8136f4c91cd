//! Times and sizes for people: relative times next to absolute ones ("in 19 min"), log lines
//! with readable timestamps, and the terminal's size. Pure functions except [`terminal_size`].

use crate::channels::whatsapp::supervisor::persist::fmt_ms;

/// How far `t_ms` is from `now_ms` in words: "now", "in 19 min", "3 h 5 min ago", "in 2 days".
pub fn relative(now_ms: u64, t_ms: u64) -> String {
    let (future, d) = if t_ms >= now_ms { (true, t_ms - now_ms) } else { (false, now_ms - t_ms) };
    let s = d / 1000;
    let span = if s < 5 {
        return "now".into();
    } else if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", (s + 30) / 60)
    } else if s < 86_400 {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        if m == 0 { format!("{h} h") } else { format!("{h} h {m} min") }
    } else {
        let days = s / 86_400;
        if days == 1 { "1 day".into() } else { format!("{days} days") }
    };
    if future { format!("in {span}") } else { format!("{span} ago") }
}

/// `2026-11-29 10:05:00 UTC (in 19 min)`.
pub fn when(now_ms: u64, t_ms: u64) -> String {
    format!("{} ({})", fmt_ms(t_ms), relative(now_ms, t_ms))
}

/// Appends the relative time after every `YYYY-MM-DD HH:MM:SS UTC` in `text` that is not already
/// followed by one, so a gateway's status sentence reads "until 2026-… UTC (in 19 min)".
pub fn annotate(text: &str, now_ms: u64) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    while i < b.len() {
        if let Some(ms) = parse_utc(&b[i..]) {
            let end = i + 23;
            out.push_str(&text[i..end]);
            if !text[end..].starts_with(" (") {
                out.push_str(&format!(" ({})", relative(now_ms, ms)));
            }
            i = end;
        } else {
            let ch = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + ch]);
            i += ch;
        }
    }
    out
}

/// Parses `YYYY-MM-DD HH:MM:SS UTC` at the start of `b` into unix ms.
fn parse_utc(b: &[u8]) -> Option<u64> {
    if b.len() < 23 || &b[19..23] != b" UTC" {
        return None;
    }
    let s = std::str::from_utf8(&b[..19]).ok()?;
    let shape = s.bytes().enumerate().all(|(i, c)| match i {
        4 | 7 => c == b'-',
        10 => c == b' ',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let days = days_from_civil(y, m, d);
    u64::try_from((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000).ok()
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A log-buffer line `"<unix ms> LEVEL target: message"` with the time made readable
/// (`2026-11-29 10:05:00 UTC LEVEL target: message`); other lines unchanged.
pub fn log_line(line: &str) -> String {
    match line.split_once(' ') {
        Some((ts, rest)) if ts.len() >= 12 && ts.bytes().all(|c| c.is_ascii_digit()) => match ts.parse::<u64>() {
            Ok(ms) => format!("{} {rest}", fmt_ms(ms)),
            Err(_) => line.to_string(),
        },
        _ => line.to_string(),
    }
}

/// The size of the terminal on stdout as `(columns, rows)`: the terminal's own answer when
/// stdout is one, else `$COLUMNS`/`$LINES` when both are set, else `None` (a pipe or file).
pub fn terminal_size() -> Option<(usize, usize)> {
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct we pass and nothing else.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        return Some((usize::from(ws.ws_col), usize::from(ws.ws_row)));
    }
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<usize>().ok());
    Some((env("COLUMNS")?, env("LINES")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000_000;

    #[test]
    fn issue13_item6_relative_times() {
        assert_eq!(relative(NOW, NOW + 19 * 60_000), "in 19 min");
        assert_eq!(relative(NOW, NOW - 3 * 60_000), "3 min ago");
        assert_eq!(relative(NOW, NOW + 2_000), "now");
        assert_eq!(relative(NOW, NOW + 42_000), "in 42 s");
        assert_eq!(relative(NOW, NOW - (3 * 3600 + 5 * 60) * 1000), "3 h 5 min ago");
        assert_eq!(relative(NOW, NOW + 2 * 86_400_000 + 5), "in 2 days");
    }

    #[test]
    fn issue13_item6_annotate_adds_relative_time_once() {
        let until = NOW + 19 * 60_000;
        let text = format!("no attempt until {} so the number is not blocked", fmt_ms(until));
        let a = annotate(&text, NOW);
        assert_eq!(a, format!("no attempt until {} (in 19 min) so the number is not blocked", fmt_ms(until)));
        assert_eq!(annotate(&a, NOW), a, "idempotent");
        assert_eq!(annotate("héllo 2026-13", NOW), "héllo 2026-13");
    }

    #[test]
    fn parse_round_trips_fmt_ms() {
        for t in [0, NOW, NOW + 86_399_000, 951_782_400_000] {
            assert_eq!(parse_utc(fmt_ms(t).as_bytes()), Some(t));
        }
    }

    #[test]
    fn issue13_item6_log_lines_get_human_times() {
        assert_eq!(log_line(&format!("{NOW} INFO gw: up")), format!("{} INFO gw: up", fmt_ms(NOW)));
        assert_eq!(log_line("plain text"), "plain text");
    }
}
