//! Secret handling shared by the compiler and the gateway: fingerprints, never values.

use sha2::{Digest, Sha256};

/// The printable fingerprint of a secret: `sha256:` followed by the first 8 hex digits of its
/// SHA-256. This is what logs, snapshots, errors and `/health` show instead of the secret.
pub fn fingerprint(secret: &[u8]) -> String {
    let digest = Sha256::digest(secret);
    format!("sha256:{}", &hex::encode(digest)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_prefix_of_sha256() {
        // sha256("abc") = ba7816bf...
        assert_eq!(fingerprint(b"abc"), "sha256:ba7816bf");
    }
}
