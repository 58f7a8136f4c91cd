//! Rendering a pairing QR string: compact unicode for terminals, SVG for the dashboard.

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

/// The string could not be encoded as a QR code (too long).
#[derive(Debug, thiserror::Error)]
#[error("cannot render QR code: {0}")]
pub struct QrError(String);

fn code(data: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L)
        .map_err(|e| QrError(e.to_string()))
}

/// Two modules per character cell (half blocks), with a quiet zone; dark-on-light terminals and
/// light-on-dark both scan.
pub fn render_terminal(data: &str) -> Result<String, QrError> {
    Ok(code(data)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
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
