//! Trust on first use for peers' identity keys, as a pure decision. WhatsApp clients accept a
//! changed identity (the contact reinstalled or changed phones) and show a notice; the caller
//! stores the new key and logs the change.

/// What seeing `seen` means given the identity key stored for the address, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustDecision {
    /// No key stored yet: trust and store it.
    New,
    /// The stored key: nothing to do.
    Same,
    /// A different key than stored: store the new one and log the change.
    Changed {
        /// The key stored until now.
        previous: [u8; 32],
    },
}

/// Decides trust on first use.
pub fn decide(stored: Option<&[u8; 32]>, seen: &[u8; 32]) -> TrustDecision {
    match stored {
        None => TrustDecision::New,
        Some(s) if s == seen => TrustDecision::Same,
        Some(s) => TrustDecision::Changed { previous: *s },
    }
}

impl TrustDecision {
    /// Whether the caller must write the seen key to its store.
    pub fn needs_store(&self) -> bool {
        !matches!(self, TrustDecision::Same)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_same_changed() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(decide(None, &a), TrustDecision::New);
        assert!(decide(None, &a).needs_store());
        assert_eq!(decide(Some(&a), &a), TrustDecision::Same);
        assert!(!decide(Some(&a), &a).needs_store());
        assert_eq!(decide(Some(&a), &b), TrustDecision::Changed { previous: a });
        assert!(decide(Some(&a), &b).needs_store());
    }
}
