//! Reads a QR code back from terminal output as a person's phone would see it: the text is
//! painted with a terminal theme's default colours (where the output sets none) and the
//! resulting picture is decoded with `rqrr`.
#![allow(dead_code)]

/// A terminal colour theme: default foreground and background luminance (0 black, 255 white).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// Default text colour.
    pub fg: u8,
    /// Default background.
    pub bg: u8,
}

/// White text on black.
pub const DARK: Theme = Theme { fg: 230, bg: 20 };
/// Black text on white.
pub const LIGHT: Theme = Theme { fg: 20, bg: 250 };

fn luminance_256(n: u16) -> u8 {
    match n {
        0 | 16 => 0,
        7 | 15 | 231 => 255,
        232..=255 => (8 + (n - 232) * 10) as u8,
        17..=230 => {
            let i = n - 16;
            let (r, g, b) = (i / 36, (i / 6) % 6, i % 6);
            ((r + g + b) * 255 / 15) as u8
        }
        _ => 128,
    }
}

/// Paints the QR lines of `text` (lines made of half blocks) into a grey image, one module per
/// `scale`×`scale` pixels (two modules per character vertically), plus a border of the theme's
/// background. Returns `(width, height, pixels)`.
pub fn paint(text: &str, theme: Theme, scale: usize) -> (usize, usize, Vec<u8>) {
    let mut rows: Vec<Vec<(u8, u8)>> = Vec::new(); // per cell: (top, bottom)
    for line in text.lines() {
        if !line.contains(['▀', '▄', '█']) {
            if !rows.is_empty() {
                break;
            }
            continue;
        }
        let (mut fg, mut bg) = (theme.fg, theme.bg);
        let mut cells = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                let mut seq = String::new();
                chars.next(); // '['
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                    seq.push(d);
                }
                let nums: Vec<u16> = seq.split(';').map(|s| s.parse().unwrap_or(0)).collect();
                let mut i = 0;
                while i < nums.len() {
                    match nums[i] {
                        0 => (fg, bg) = (theme.fg, theme.bg),
                        38 | 48 if nums.get(i + 1) == Some(&5) => {
                            let l = luminance_256(nums[i + 2]);
                            if nums[i] == 38 { fg = l } else { bg = l }
                            i += 2;
                        }
                        30 => fg = 0,
                        97 => fg = 255,
                        40 => bg = 0,
                        107 => bg = 255,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            cells.push(match c {
                '█' => (fg, fg),
                '▀' => (fg, bg),
                '▄' => (bg, fg),
                _ => (bg, bg),
            });
        }
        rows.push(cells);
    }
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let border = 4;
    let w = (cols + 2 * border) * scale;
    let h = (rows.len() * 2 + 2 * border) * scale;
    let mut px = vec![theme.bg; w * h];
    for (r, cells) in rows.iter().enumerate() {
        for (c, (top, bottom)) in cells.iter().enumerate() {
            for (half, v) in [(0, *top), (1, *bottom)] {
                for dy in 0..scale {
                    for dx in 0..scale {
                        let y = (border + r * 2 + half) * scale + dy;
                        let x = (border + c) * scale + dx;
                        px[y * w + x] = v;
                    }
                }
            }
        }
    }
    (w, h, px)
}

/// Decodes the first QR code drawn in `text` as seen on `theme`, if any decodes.
pub fn decode(text: &str, theme: Theme) -> Option<String> {
    let (w, h, px) = paint(text, theme, 4);
    if w == 0 || h == 0 {
        return None;
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| px[y * w + x]);
    let grids = img.detect_grids();
    grids.first().and_then(|g| g.decode().ok()).map(|(_, content)| content)
}
