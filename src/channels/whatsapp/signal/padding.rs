//! WhatsApp's random padding inside the Signal plaintext: 1–16 bytes, each equal to the pad
//! length (Baileys `writeRandomPadMax16` / `unpadRandomMax16`). Unlike Baileys, [`unpad`]
//! validates every pad byte.

use crate::channels::whatsapp::crypto::Entropy;

/// Why a decrypted plaintext is not validly padded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaddingError {
    /// No bytes at all.
    #[error("empty plaintext")]
    Empty,
    /// The last byte is 0, above 16 or longer than the plaintext.
    #[error("bad pad length {0}")]
    Length(u8),
    /// A pad byte differs from the pad length.
    #[error("pad bytes differ from the pad length")]
    Bytes,
}

/// Appends 1–16 random-length padding bytes, each equal to the length.
pub fn pad(message: &[u8], rng: &dyn Entropy) -> Vec<u8> {
    let mut b = [0u8; 1];
    rng.fill(&mut b);
    let n = (b[0] & 0x0f) + 1;
    let mut out = Vec::with_capacity(message.len() + n as usize);
    out.extend_from_slice(message);
    out.resize(message.len() + n as usize, n);
    out
}

/// Strips and validates the padding.
pub fn unpad(padded: &[u8]) -> Result<&[u8], PaddingError> {
    let &n = padded.last().ok_or(PaddingError::Empty)?;
    if n == 0 || n > 16 || n as usize > padded.len() {
        return Err(PaddingError::Length(n));
    }
    let (body, tail) = padded.split_at(padded.len() - n as usize);
    if tail.iter().any(|&b| b != n) {
        return Err(PaddingError::Bytes);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    #[test]
    fn pads_cover_one_to_sixteen() {
        let rng = SeededEntropy::new(9);
        let mut seen = [false; 17];
        for _ in 0..400 {
            let p = pad(b"hi", &rng);
            let n = p.len() - 2;
            assert!((1..=16).contains(&n));
            assert!(p[2..].iter().all(|&b| b as usize == n));
            seen[n] = true;
            assert_eq!(unpad(&p).unwrap(), b"hi");
        }
        assert!(seen[1..].iter().all(|&s| s));
    }

    #[test]
    fn unpad_rejects_bad_padding() {
        assert_eq!(unpad(&[]), Err(PaddingError::Empty));
        assert_eq!(unpad(&[1, 2, 0]), Err(PaddingError::Length(0)));
        assert_eq!(unpad(&[17; 20]), Err(PaddingError::Length(17)));
        assert_eq!(unpad(&[3, 3]), Err(PaddingError::Length(3)));
        assert_eq!(unpad(&[9, 2, 3, 3]), Err(PaddingError::Bytes));
        assert_eq!(unpad(&[9, 3, 3, 3]).unwrap(), &[9]);
        assert_eq!(unpad(&[16; 16]).unwrap(), &[] as &[u8]);
    }

    proptest! {
        #[test]
        fn unpad_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(body) = unpad(&data) {
                prop_assert!(body.len() < data.len());
            }
        }
    }
}
