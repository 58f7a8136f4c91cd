//! The ClientPayload sent inside the Noise ClientFinish (reference §1.5): a registration payload for
//! a new link, a login payload for saved credentials.

use md5::{Digest, Md5};
use prost::Message;

use super::creds::Creds;
use super::proto::client_payload::user_agent::{AppVersion, Platform, ReleaseChannel};
use super::proto::client_payload::web_info::WebSubPlatform;
use super::proto::client_payload::{
    ConnectReason, ConnectType, DevicePairingRegistrationData, UserAgent, WebInfo,
};
use super::proto::{ClientPayload, DeviceProps, device_props};

/// The WhatsApp Web version we announce: the one baileys@7.0.0-rc14 sends (reference §1.5). A too
/// old version gets `<failure reason="405">`.
pub const DEFAULT_APP_VERSION: [u32; 3] = [2, 3000, 1_043_857_760];

/// Name shown on the phone's "Linked devices" list.
pub const DEVICE_OS_NAME: &str = "OpenClaw";

/// The login payload needs a linked account.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("credentials are not linked (no me.id)")]
pub struct NotLinked;

fn user_agent(v: [u32; 3]) -> UserAgent {
    UserAgent {
        platform: Some(Platform::Web as i32),
        app_version: Some(AppVersion {
            primary: Some(v[0]),
            secondary: Some(v[1]),
            tertiary: Some(v[2]),
            ..Default::default()
        }),
        mcc: Some("000".into()),
        mnc: Some("000".into()),
        os_version: Some("0.1".into()),
        device: Some("Desktop".into()),
        os_build_number: Some("0.1".into()),
        release_channel: Some(ReleaseChannel::Release as i32),
        locale_language_iso6391: Some("en".into()),
        locale_country_iso31661_alpha2: Some("US".into()),
        // Baileys leaves the manufacturer unset.
        manufacturer: None,
    }
}

fn base(v: [u32; 3]) -> ClientPayload {
    ClientPayload {
        user_agent: Some(user_agent(v)),
        web_info: Some(WebInfo {
            web_sub_platform: Some(WebSubPlatform::WebBrowser as i32),
        }),
        connect_type: Some(ConnectType::WifiUnknown as i32),
        connect_reason: Some(ConnectReason::UserActivated as i32),
        ..Default::default()
    }
}

/// Registration payload for a new link: `devicePairingData` with our registration id, identity key
/// and signed prekey.
pub fn registration(creds: &Creds, v: [u32; 3]) -> ClientPayload {
    let version = format!("{}.{}.{}", v[0], v[1], v[2]);
    let props = DeviceProps {
        os: Some(DEVICE_OS_NAME.into()),
        version: Some(device_props::AppVersion {
            primary: Some(10),
            secondary: Some(15),
            tertiary: Some(7),
        }),
        platform_type: Some(device_props::PlatformType::Chrome as i32),
        require_full_sync: Some(false),
    };
    let spk = &creds.signed_pre_key;
    let mut p = base(v);
    p.passive = Some(false);
    p.pull = Some(false);
    p.device_pairing_data = Some(DevicePairingRegistrationData {
        e_regid: Some(creds.registration_id.to_be_bytes().to_vec()),
        e_keytype: Some(vec![5]),
        e_ident: Some(creds.signed_identity_key.public.clone()),
        e_skey_id: Some(spk.key_id.to_be_bytes()[1..].to_vec()),
        e_skey_val: Some(spk.key_pair.public.clone()),
        e_skey_sig: Some(spk.signature.clone()),
        build_hash: Some(Md5::digest(version.as_bytes()).to_vec()),
        device_props: Some(props.encode_to_vec()),
    });
    p
}

/// Login payload for a linked account: phone number and device from `me.id`, `pull = true`.
pub fn login(creds: &Creds, v: [u32; 3]) -> Result<ClientPayload, NotLinked> {
    let (user, device) = creds
        .me
        .as_ref()
        .and_then(|m| m.user_and_device())
        .ok_or(NotLinked)?;
    let mut p = base(v);
    p.username = Some(user);
    p.device = Some(device);
    p.passive = Some(true);
    p.pull = Some(true);
    p.lid_db_migrated = Some(false);
    Ok(p)
}

/// Whether a decoded payload is a login (has `username`) rather than a registration.
pub fn is_login(p: &ClientPayload) -> bool {
    p.username.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::creds::Me;
    use crate::channels::whatsapp::crypto::{SeededEntropy, xeddsa_verify};

    #[test]
    fn registration_carries_verifiable_pairing_data() {
        let c = Creds::generate(&SeededEntropy::new(1));
        let p = registration(&c, DEFAULT_APP_VERSION);
        let d = p.device_pairing_data.clone().unwrap();
        assert_eq!(d.e_regid.unwrap().len(), 4);
        assert_eq!(d.e_keytype.unwrap(), vec![5]);
        assert_eq!(d.e_skey_id.unwrap(), vec![0, 0, 1]);
        assert_eq!(d.build_hash.unwrap().len(), 16);
        let mut msg = vec![5u8];
        msg.extend(d.e_skey_val.unwrap());
        let ident: [u8; 32] = d.e_ident.unwrap().try_into().unwrap();
        assert!(xeddsa_verify(&ident, &msg, &d.e_skey_sig.unwrap()));
        assert!(!is_login(&p));
        assert_eq!(login(&c, DEFAULT_APP_VERSION), Err(NotLinked));
    }

    #[test]
    fn login_uses_phone_and_device() {
        let mut c = Creds::generate(&SeededEntropy::new(1));
        c.me = Some(Me {
            id: "15550001234:7@s.whatsapp.net".into(),
            lid: None,
            name: None,
        });
        let p = login(&c, DEFAULT_APP_VERSION).unwrap();
        assert_eq!(
            (p.username, p.device, p.pull, p.passive),
            (Some(15550001234), Some(7), Some(true), Some(true))
        );
        assert!(p.device_pairing_data.is_none());
    }
}
