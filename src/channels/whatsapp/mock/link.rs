//! Linking a companion to an account: the account's phone scans a QR or takes a typed pairing
//! code, then signs `pair-success` with its identity; `pair-device-sign` completes the link.

use super::super::binary::Node;
use super::super::pairing::{QrData, build_pair_success, parse_qr, verify_pair_device_sign};
use super::accounts::{DeviceAddr, Domain};
use super::{Cmd, ConnEntry, Inner, PendingPair, Shared};

fn account_for(g: &Inner, phone: Option<&str>) -> Result<usize, String> {
    match phone {
        Some(p) => g.dir.by_phone(p).ok_or_else(|| format!("no account {p}")),
        None => Ok(g.link_target),
    }
}

/// The phone of account `phone` (default: the link target) scans `qr`. Returns the new JID.
pub(super) fn scan(shared: &Shared, qr: &str, phone: Option<&str>) -> Result<String, String> {
    let q = parse_qr(qr).map_err(|e| e.to_string())?;
    let mut g = shared.lock();
    let account = account_for(&g, phone)?;
    let forge = g.sticky.forge_account_signature;
    let Inner { live, dir, .. } = &mut *g;
    let entry = live
        .values_mut()
        .find(|c| {
            c.pairing
                .as_ref()
                .is_some_and(|p| p.refs.contains(&q.reference))
        })
        .ok_or("no connection is showing this ref")?;
    let Some(p) = entry.pairing.as_ref() else {
        return Err("no pairing".into());
    };
    if p.noise_pub != q.noise_pub || p.identity_pub != q.identity_pub {
        return Err("QR keys do not match the registering connection".into());
    }
    let a = dir.accounts.get_mut(account).ok_or("no such account")?;
    let dev = a.next_device;
    let jid = send_pair_success(
        shared,
        entry,
        a,
        account,
        dev,
        forge,
        q.adv_secret,
        q.reference,
    )?;
    a.next_device += 1;
    Ok(jid)
}

/// The pair-success for a device that proved `adv_secret` (QR scan or pairing code).
#[allow(clippy::too_many_arguments)]
fn send_pair_success(
    shared: &Shared,
    entry: &mut ConnEntry,
    account: &super::accounts::Account,
    account_index: usize,
    dev: u32,
    forge: bool,
    adv_secret: [u8; 32],
    reference: String,
) -> Result<String, String> {
    let Some(p) = entry.pairing.as_mut() else {
        return Err("no pairing".into());
    };
    let q = QrData {
        reference,
        noise_pub: p.noise_pub,
        identity_pub: p.identity_pub,
        adv_secret,
        platform: None,
    };
    let jid = account.jid(dev, Domain::Pn);
    let lid = account.jid(dev, Domain::Lid);
    let node = build_pair_success(
        &q,
        &account.identity,
        &jid,
        &lid,
        dev,
        (shared.clock)(),
        forge,
        shared.rng.as_ref(),
    );
    p.account = Some(account_index);
    p.scanned = Some((dev, jid.clone(), lid));
    entry
        .tx
        .send(Cmd::Send(node))
        .map_err(|_| "connection gone")?;
    Ok(jid)
}

/// The user types `code` on the phone of account `phone` (default: the account whose number
/// the companion gave in `companion_hello`, else the link target).
pub(super) fn enter_pair_code(
    shared: &Shared,
    code: &str,
    phone: Option<&str>,
) -> Result<(), String> {
    let code: String = code.trim().chars().filter(|c| *c != '-').collect();
    let mut g = shared.lock();
    let explicit = phone.map(|p| account_for(&g, Some(p))).transpose()?;
    let Inner {
        live,
        dir,
        link_target,
        ..
    } = &mut *g;
    let entry = live
        .values_mut()
        .find(|c| c.pairing.as_ref().is_some_and(|p| p.code_hello.is_some()))
        .ok_or("no connection asked for a pairing code")?;
    let Some(p) = entry.pairing.as_mut() else {
        return Err("no pairing".into());
    };
    let Some(hello) = p.code_hello.as_ref() else {
        return Err("no hello".into());
    };
    let given = hello
        .child("link_code_companion_reg")
        .and_then(|r| r.get_attr("jid"))
        .and_then(|j| j.split(['@', ':']).next())
        .and_then(|phone| dir.by_phone(phone));
    let account = explicit.or(given).unwrap_or(*link_target);
    let a = dir.accounts.get(account).ok_or("no such account")?;
    let (notification, state) = super::super::paircode::primary_hello(
        hello,
        &code,
        b"mock-link-code-ref",
        &a.identity,
        shared.rng.as_ref(),
    )
    .map_err(|e| e.to_string())?;
    p.primary = Some(state);
    p.account = Some(account);
    entry
        .tx
        .send(Cmd::Send(notification))
        .map_err(|_| "connection gone".to_owned())
}

/// The companion finished the pairing-code exchange on connection `conn`: derive the ADV secret
/// like the phone does and send pair-success. A wrong code fails here, as on a real phone.
pub(super) fn pair_code_finished(
    shared: &Shared,
    conn: u64,
    finish: &Node,
) -> Result<String, String> {
    let mut g = shared.lock();
    let forge = g.sticky.forge_account_signature;
    let Inner { live, dir, .. } = &mut *g;
    let entry = live.get_mut(&conn).ok_or("connection gone")?;
    let p = entry.pairing.as_ref().ok_or("no pairing")?;
    let state = p.primary.as_ref().ok_or("no code entered")?;
    let account = p.account.ok_or("no account")?;
    let a = dir.accounts.get_mut(account).ok_or("no such account")?;
    let (adv, identity) = super::super::paircode::primary_finish(finish, state, &a.identity)
        .map_err(|e| e.to_string())?;
    if identity != p.identity_pub {
        return Err("companion identity differs from the registration".into());
    }
    let dev = a.next_device;
    let jid = send_pair_success(
        shared,
        entry,
        a,
        account,
        dev,
        forge,
        adv,
        "link-code".into(),
    )?;
    a.next_device += 1;
    Ok(jid)
}

/// `pair-device-sign` arrived on connection `conn`: verify it with the account's phone identity
/// and record the link. `None` if no pair-success was sent on this connection.
pub(super) fn device_signed(
    shared: &Shared,
    conn: u64,
    node: &Node,
) -> Option<Result<DeviceAddr, ()>> {
    let mut g = shared.lock();
    let pending = g.live.get_mut(&conn).and_then(|c| c.pairing.take());
    let Some(PendingPair {
        noise_pub,
        identity_pub,
        account: Some(account),
        scanned: Some((dev, _, _)),
        ..
    }) = pending
    else {
        return None;
    };
    let phone_pub = g.dir.accounts.get(account)?.identity.public;
    let check = match verify_pair_device_sign(node, &identity_pub, &phone_pub) {
        Ok(c) => c,
        Err(_) => return Some(Err(())),
    };
    let linked = g.dir.link(
        account,
        noise_pub,
        identity_pub,
        dev,
        check.account_key_stripped,
    );
    if let Some(addr) = linked {
        super::relay::devices_changed(&mut g, addr, "add", (shared.clock)());
    }
    Some(linked.ok_or(()))
}
