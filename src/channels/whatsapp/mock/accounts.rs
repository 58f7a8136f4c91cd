//! The relay's directory of accounts: each is a person with a phone number (PN), a LID, a phone
//! (device 0, played by the mock) and the companion devices linked to it. Pure data: no I/O.

use super::super::crypto::{Entropy, KeyPair};
use super::prekey_store::Bundle;

/// The WhatsApp server of phone-number JIDs.
pub(super) const PN_SERVER: &str = "s.whatsapp.net";
/// The WhatsApp server of LID JIDs.
pub(super) const LID_SERVER: &str = "lid";

/// Which of a user's two identities a JID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Domain {
    /// `PHONE[:DEV]@s.whatsapp.net`.
    Pn,
    /// `LID[:DEV]@lid`.
    Lid,
}

/// A parsed user or device JID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Jid {
    /// The user part (phone digits or LID digits).
    pub user: String,
    /// The device, if the JID names one (`:0` counts).
    pub device: Option<u32>,
    /// PN or LID.
    pub domain: Domain,
}

/// Parses `user[.agent][:device]@s.whatsapp.net|lid`; anything else (groups, broadcast) is `None`.
pub(super) fn parse_jid(s: &str) -> Option<Jid> {
    let (local, server) = s.split_once('@')?;
    let domain = match server {
        PN_SERVER => Domain::Pn,
        LID_SERVER => Domain::Lid,
        _ => return None,
    };
    let (user, device) = match local.split_once(':') {
        Some((u, d)) => (u, Some(d.parse().ok()?)),
        None => (local, None),
    };
    let user = user.split('.').next().unwrap_or(user);
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Jid {
        user: user.to_owned(),
        device,
        domain,
    })
}

/// One device of one account in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct DeviceAddr {
    /// Index of the account.
    pub account: usize,
    /// Device number (0 = the phone).
    pub device: u32,
}

/// A companion device linked to an account.
#[derive(Debug, Clone)]
pub(super) struct Device {
    /// Device number (≥ 1; also its ADV key index).
    pub index: u32,
    /// The companion's Noise static key: login is accepted only with it.
    pub noise_pub: [u8; 32],
    /// The companion's identity key (from its registration).
    pub identity_pub: [u8; 32],
    /// Whether the pair-device-sign reply stripped accountSignatureKey.
    pub account_key_stripped: bool,
    /// What the device uploaded (identity, signed prekey, one-time prekeys).
    pub bundle: Option<Bundle>,
    /// Global link order, for listings.
    pub linked_seq: u64,
}

/// A person on the relay.
#[derive(Debug)]
pub(super) struct Account {
    /// Phone number digits (the PN user), also the account's id in the admin API.
    pub phone: String,
    /// LID digits.
    pub lid: String,
    /// Push name shown to contacts (`notify`).
    pub name: String,
    /// The phone's identity: ADV account key and device 0's Signal identity.
    pub identity: KeyPair,
    /// Device 0's prekey bundle (the mock phone refills one-time prekeys on demand).
    pub phone_bundle: Bundle,
    /// The number the next linked companion gets.
    pub next_device: u32,
    /// Linked companions.
    pub devices: Vec<Device>,
}

impl Account {
    /// `PHONE[:DEV]@s.whatsapp.net` or `LID[:DEV]@lid` (device 0 is written without `:0`).
    pub fn jid(&self, device: u32, domain: Domain) -> String {
        let (user, server) = match domain {
            Domain::Pn => (&self.phone, PN_SERVER),
            Domain::Lid => (&self.lid, LID_SERVER),
        };
        if device == 0 {
            format!("{user}@{server}")
        } else {
            format!("{user}:{device}@{server}")
        }
    }

    /// The companion with number `device`.
    pub fn device(&self, device: u32) -> Option<&Device> {
        self.devices.iter().find(|d| d.index == device)
    }

    /// The companion with number `device`, mutably.
    pub fn device_mut(&mut self, device: u32) -> Option<&mut Device> {
        self.devices.iter_mut().find(|d| d.index == device)
    }

    /// Device numbers a sender must encrypt for: the phone, then every companion.
    pub fn device_numbers(&self) -> Vec<u32> {
        std::iter::once(0)
            .chain(self.devices.iter().map(|d| d.index))
            .collect()
    }
}

/// Why an account cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AccountError {
    /// The phone number is not 6–15 digits.
    #[error("phone must be 6 to 15 digits")]
    BadPhone,
    /// The LID is not 6–20 digits.
    #[error("lid must be 6 to 20 digits")]
    BadLid,
    /// An account with this phone or LID exists.
    #[error("an account with this phone or lid exists")]
    Exists,
}

/// Every account on the relay. Account 0 is the implicit one of the single-account mock.
#[derive(Debug, Default)]
pub(super) struct Directory {
    /// Accounts in creation order (never removed, so indexes stay valid).
    pub accounts: Vec<Account>,
    next_seq: u64,
}

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl Directory {
    /// Adds an account with the phone identity `identity`. A missing LID is derived from the
    /// account's position; a missing name is `"Mock <phone>"`.
    pub fn create(
        &mut self,
        phone: &str,
        lid: Option<&str>,
        name: Option<&str>,
        identity: KeyPair,
        rng: &dyn Entropy,
    ) -> Result<usize, AccountError> {
        let phone = phone.trim().trim_start_matches('+');
        if !digits(phone, 6, 15) {
            return Err(AccountError::BadPhone);
        }
        let lid = match lid {
            Some(l) => l.trim_end_matches("@lid").to_owned(),
            None => format!(
                "{}",
                200_000_000_000_000u64 + self.accounts.len() as u64 * 1_111
            ),
        };
        if !digits(&lid, 6, 20) {
            return Err(AccountError::BadLid);
        }
        if self
            .accounts
            .iter()
            .any(|a| a.phone == phone || a.lid == lid || a.phone == lid || a.lid == phone)
        {
            return Err(AccountError::Exists);
        }
        let phone_bundle = Bundle::for_phone(&identity, rng);
        self.accounts.push(Account {
            phone: phone.to_owned(),
            lid,
            name: name.map_or_else(|| format!("Mock {phone}"), str::to_owned),
            identity,
            phone_bundle,
            next_device: 7,
            devices: Vec::new(),
        });
        Ok(self.accounts.len() - 1)
    }

    /// The account a user JID (PN or LID) belongs to.
    pub fn account_of(&self, jid: &Jid) -> Option<usize> {
        self.accounts.iter().position(|a| match jid.domain {
            Domain::Pn => a.phone == jid.user,
            Domain::Lid => a.lid == jid.user,
        })
    }

    /// The account whose phone number is `phone` (digits, optional `+`).
    pub fn by_phone(&self, phone: &str) -> Option<usize> {
        let phone = phone.trim().trim_start_matches('+');
        self.accounts.iter().position(|a| a.phone == phone)
    }

    /// Resolves a device JID (no device = the phone) to an address whose device exists.
    pub fn resolve_device(&self, jid: &str) -> Option<(DeviceAddr, Domain)> {
        let j = parse_jid(jid)?;
        let account = self.account_of(&j)?;
        let device = j.device.unwrap_or(0);
        if device != 0 && self.accounts[account].device(device).is_none() {
            return None;
        }
        Some((DeviceAddr { account, device }, j.domain))
    }

    /// The account.
    pub fn account(&self, i: usize) -> Option<&Account> {
        self.accounts.get(i)
    }

    /// The device's JID in `domain`.
    pub fn jid(&self, addr: DeviceAddr, domain: Domain) -> String {
        self.accounts
            .get(addr.account)
            .map(|a| a.jid(addr.device, domain))
            .unwrap_or_default()
    }

    /// The device a login (`username`, `device`, Noise static key) belongs to.
    pub fn find_login(
        &self,
        username: u64,
        device: u32,
        noise_pub: &[u8; 32],
    ) -> Option<DeviceAddr> {
        let phone = username.to_string();
        let account = self.accounts.iter().position(|a| a.phone == phone)?;
        let d = self.accounts[account].device(device)?;
        (d.noise_pub == *noise_pub).then_some(DeviceAddr { account, device })
    }

    /// Links a new companion to account `account`; returns its number.
    pub fn link(
        &mut self,
        account: usize,
        noise_pub: [u8; 32],
        identity_pub: [u8; 32],
        device: u32,
        account_key_stripped: bool,
    ) -> Option<DeviceAddr> {
        self.next_seq += 1;
        let seq = self.next_seq;
        let a = self.accounts.get_mut(account)?;
        a.devices.retain(|d| d.index != device);
        a.devices.push(Device {
            index: device,
            noise_pub,
            identity_pub,
            account_key_stripped,
            bundle: None,
            linked_seq: seq,
        });
        Some(DeviceAddr { account, device })
    }

    /// Unlinks a companion (`remove-companion-device`).
    pub fn unlink(&mut self, addr: DeviceAddr) {
        if let Some(a) = self.accounts.get_mut(addr.account) {
            a.devices.retain(|d| d.index != addr.device);
        }
    }

    /// Every linked companion, in link order.
    pub fn linked(&self) -> Vec<(DeviceAddr, &Device)> {
        let mut v: Vec<_> = self
            .accounts
            .iter()
            .enumerate()
            .flat_map(|(i, a)| {
                a.devices.iter().map(move |d| {
                    (
                        DeviceAddr {
                            account: i,
                            device: d.index,
                        },
                        d,
                    )
                })
            })
            .collect();
        v.sort_by_key(|(_, d)| d.linked_seq);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::crypto::SeededEntropy;

    fn dir() -> Directory {
        let rng = SeededEntropy::new(3);
        let mut d = Directory::default();
        d.create(
            "15550001234",
            Some("123456789012345"),
            None,
            KeyPair::generate(&rng),
            &rng,
        )
        .unwrap();
        d.create(
            "+15550002222",
            None,
            Some("Bob"),
            KeyPair::generate(&rng),
            &rng,
        )
        .unwrap();
        d
    }

    #[test]
    fn parses_device_and_user_jids() {
        assert_eq!(
            parse_jid("15550001234:7@s.whatsapp.net"),
            Some(Jid {
                user: "15550001234".into(),
                device: Some(7),
                domain: Domain::Pn
            })
        );
        assert_eq!(
            parse_jid("123456789012345@lid"),
            Some(Jid {
                user: "123456789012345".into(),
                device: None,
                domain: Domain::Lid
            })
        );
        assert_eq!(parse_jid("1234-5678@g.us"), None);
        assert_eq!(parse_jid("status@broadcast"), None);
        assert_eq!(parse_jid("abc@s.whatsapp.net"), None);
        assert_eq!(parse_jid("1555:x@s.whatsapp.net"), None);
    }

    #[test]
    fn accounts_resolve_by_pn_and_lid_and_refuse_duplicates() {
        let mut d = dir();
        let rng = SeededEntropy::new(4);
        assert_eq!(d.by_phone("15550002222"), Some(1));
        let lid = d.accounts[1].lid.clone();
        assert_eq!(
            d.resolve_device(&format!("{lid}@lid")),
            Some((
                DeviceAddr {
                    account: 1,
                    device: 0
                },
                Domain::Lid
            ))
        );
        assert_eq!(
            d.resolve_device("15550002222:7@s.whatsapp.net"),
            None,
            "not linked yet"
        );
        d.link(1, [1; 32], [2; 32], 7, true).unwrap();
        assert_eq!(
            d.resolve_device("15550002222:7@s.whatsapp.net"),
            Some((
                DeviceAddr {
                    account: 1,
                    device: 7
                },
                Domain::Pn
            ))
        );
        assert_eq!(
            d.find_login(15550002222, 7, &[1; 32]),
            Some(DeviceAddr {
                account: 1,
                device: 7
            })
        );
        assert_eq!(
            d.find_login(15550002222, 7, &[9; 32]),
            None,
            "wrong noise key"
        );
        assert_eq!(
            d.create("15550002222", None, None, KeyPair::generate(&rng), &rng),
            Err(AccountError::Exists)
        );
        assert_eq!(
            d.create("12", None, None, KeyPair::generate(&rng), &rng),
            Err(AccountError::BadPhone)
        );
        assert_eq!(
            d.accounts[1].jid(0, Domain::Pn),
            "15550002222@s.whatsapp.net"
        );
        assert_eq!(d.accounts[1].device_numbers(), vec![0, 7]);
    }
}
