//! Rendering a pairing QR string: compact unicode for terminals, SVG for the dashboard.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The string could not be encoded as a QR code (too long).
#[derive(Debug, thiserror::Error)]
#[error("cannot render QR code: {0}")]
pub struct QrError(String);

fn code(data: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L)
        .map_err(|e| QrError(e.to_string()))
}

/// Light modules around the code in the terminal rendering. The standard asks for four; two on
/// an explicit white background scan reliably and keep a WhatsApp code within 61 columns.
pub const TERMINAL_QUIET_MODULES: usize = 2;

/// SGR sequence that fixes the colours: pure black on pure white from the 256-colour cube
/// (16 and 231), which terminal themes do not remap, so the code reads the same on light and
/// dark themes.
pub const TERMINAL_COLOURS: &str = "\x1b[38;5;16;48;5;231m";
/// SGR reset at the end of every line.
pub const TERMINAL_RESET: &str = "\x1b[0m";

/// The terminal cells a code needs: `(columns, rows)` of [`render_terminal`]'s output.
pub fn terminal_size(data: &str) -> Result<(usize, usize), QrError> {
    let side = code(data)?.width() + 2 * TERMINAL_QUIET_MODULES;
    Ok((side, side.div_ceil(2)))
}

/// Two modules per character cell (upper/lower half blocks, so modules stay square), with a
/// quiet zone and explicit colours: dark modules are drawn in black on a white background.
pub fn render_terminal(data: &str) -> Result<String, QrError> {
    let qr = code(data)?;
    let w = qr.width();
    let colors = qr.to_colors();
    let q = TERMINAL_QUIET_MODULES;
    let side = w + 2 * q;
    let dark = |x: usize, y: usize| -> bool {
        x >= q && y >= q && x < q + w && y < q + w && colors[(y - q) * w + (x - q)] == qrcode::Color::Dark
    };
    let mut out = String::with_capacity(side * side);
    for row in 0..side.div_ceil(2) {
        out.push_str(TERMINAL_COLOURS);
        for x in 0..side {
            out.push(match (dark(x, 2 * row), dark(x, 2 * row + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push_str(TERMINAL_RESET);
        out.push('\n');
    }
    Ok(out)
}

/// An SVG document.
pub fn render_svg(data: &str) -> Result<String, QrError> {
    Ok(code(data)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_forms() {
        let s = "https://wa.me/settings/linked_devices#2@abc,AAAA,BBBB,CCCC,1";
        let t = render_terminal(s).unwrap();
        assert!(t.lines().count() > 10 && t.contains('▀'));
        let svg = render_svg(s).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
    }
}
