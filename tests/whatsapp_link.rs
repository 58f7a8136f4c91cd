//! Our WhatsApp client against our mock server (issue 4): link by QR, restart, login from saved
//! creds without a QR, every scripted failure ending in the right typed reason, and forged
//! certificate chains / pair-success signatures rejected. Real sockets on 127.0.0.1.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use openclaw::channels::whatsapp::cert::{CertError, TrustedRoot};
use openclaw::channels::whatsapp::client::{
    ClientConfig, ClientError, Event, LinkOutcome, LogoutOutcome, RunMode, link, logout,
    run_connection,
};
use openclaw::channels::whatsapp::creds::CredsStore;
use openclaw::channels::whatsapp::disconnect::DisconnectReason;
use openclaw::channels::whatsapp::mock::{Fault, MockOptions, MockServer};
use openclaw::channels::whatsapp::pairing::PairError;
use openclaw::channels::whatsapp::socket::{Endpoint, SocketError, WA_WEB_ORIGIN};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(20);

async fn mock() -> MockServer {
    MockServer::start("127.0.0.1:0".parse().unwrap(), MockOptions::default())
        .await
        .unwrap()
}

fn config(m: &MockServer, dir: &std::path::Path) -> ClientConfig {
    let mut c = ClientConfig::new(CredsStore::in_dir(dir.join("acct")));
    c.endpoint = Endpoint {
        url: m.url(),
        origin: WA_WEB_ORIGIN.into(),
        root: TrustedRoot::for_testing(m.root_key()),
    };
    c.prekey_upload_count = 20;
    c
}

/// Runs `link`, scanning every QR with the mock phone. Returns the outcome and the events.
async fn link_scanning(
    m: &MockServer,
    cfg: &ClientConfig,
    scan: bool,
) -> (Result<LinkOutcome, ClientError>, Vec<Event>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = link(cfg, &tx);
    tokio::pin!(fut);
    let mut events = Vec::new();
    let out = tokio::time::timeout(LIMIT, async {
        loop {
            tokio::select! {
                out = &mut fut => return out,
                Some(ev) = rx.recv() => {
                    if let (Event::Qr { qr, .. }, true) = (&ev, scan) {
                        m.scan(qr).unwrap();
                    }
                    events.push(ev);
                }
            }
        }
    })
    .await
    .expect("link finished in time");
    while let Ok(ev) = rx.try_recv() {
        events.push(ev);
    }
    (out, events)
}

async fn linked_setup() -> (MockServer, tempfile::TempDir, ClientConfig) {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&m, dir.path());
    let (out, _) = link_scanning(&m, &cfg, true).await;
    assert!(matches!(out.unwrap(), LinkOutcome::Linked { .. }));
    (m, dir, cfg)
}

#[tokio::test]
async fn link_by_qr_then_restart_logs_in_from_saved_creds_without_qr() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&m, dir.path());
    let (out, events) = link_scanning(&m, &cfg, true).await;
    let LinkOutcome::Linked { jid } = out.unwrap() else {
        panic!("not linked")
    };
    assert_eq!(jid, "15550001234:7@s.whatsapp.net");
    assert!(
        matches!(&events[0], Event::Qr { qr, expires_in } if qr.starts_with("https://wa.me/settings/linked_devices#2@") && *expires_in == Duration::from_secs(60))
    );
    assert!(events.contains(&Event::Paired { jid: jid.clone() }));
    assert!(events.contains(&Event::Open { jid: jid.clone() }));
    assert!(events.contains(&Event::PreKeysUploaded { count: 20 }));

    // Credentials on disk, mode 0600, with the LID from pair-success.
    let creds = cfg.store.load().unwrap().unwrap();
    assert_eq!(
        creds.me.as_ref().unwrap().lid.as_deref(),
        Some("123456789012345:7@lid")
    );
    assert_eq!(creds.first_unuploaded_pre_key_id, 21);
    let mode = std::fs::metadata(cfg.store.creds_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let st = m.state();
    assert_eq!(st["lastClientPayload"], "login");
    assert_eq!(st["lastOrigin"], WA_WEB_ORIGIN);
    assert_eq!(st["linkedDevices"][0]["preKeys"], 20);
    assert_eq!(st["linkedDevices"][0]["signedPreKeyValid"], true);
    assert_eq!(st["linkedDevices"][0]["accountSignatureKeyStripped"], true);
    assert_eq!(
        st["totalConnections"], 2,
        "registration, then login after 515"
    );
    assert_eq!(
        st["misaddressedIqs"], 0,
        "every iq is sent to @s.whatsapp.net"
    );

    // "Restart": a fresh config over the same state dir logs in without a QR code.
    let cfg2 = config(&m, dir.path());
    let (out, events) = link_scanning(&m, &cfg2, false).await;
    assert_eq!(out.unwrap(), LinkOutcome::Linked { jid: jid.clone() });
    assert!(
        !events.iter().any(|e| matches!(e, Event::Qr { .. })),
        "{events:?}"
    );
    assert!(events.contains(&Event::Open { jid }));
    assert_eq!(m.state()["totalConnections"], 3);
    assert_eq!(m.state()["lastClientPayload"], "login");
    // The edge routing info from the first login's <ib> came back in the ED pre-intro.
    assert_eq!(
        cfg2.store.load().unwrap().unwrap().routing_info.as_deref(),
        Some(openclaw::channels::whatsapp::mock::MOCK_ROUTING_INFO)
    );
    assert_eq!(
        m.state()["lastRoutingInfo"],
        hex::encode(openclaw::channels::whatsapp::mock::MOCK_ROUTING_INFO)
    );
}

/// Logs in, waits for Open, applies `fault`, and returns how the connection ended.
async fn end_after_fault(cfg: &ClientConfig, m: &MockServer, fault: Fault) -> DisconnectReason {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = run_connection(cfg, &tx, RunMode::UntilDisconnect);
    tokio::pin!(fut);
    let end = tokio::time::timeout(LIMIT, async {
        let mut fault_at: Option<tokio::time::Instant> = None;
        loop {
            let when = fault_at.unwrap_or_else(|| tokio::time::Instant::now() + LIMIT);
            tokio::select! {
                end = &mut fut => return end,
                Some(ev) = rx.recv() => {
                    if matches!(ev, Event::Open { .. }) {
                        // Let the prekey exchange settle (the client keeps running), then break things.
                        fault_at = Some(tokio::time::Instant::now() + Duration::from_millis(50));
                    }
                }
                _ = tokio::time::sleep_until(when), if fault_at.is_some() => {
                    fault_at = None;
                    m.fault(fault.clone());
                }
            }
        }
    })
    .await
    .expect("connection ended in time")
    .unwrap();
    assert!(end.opened);
    end.reason.expect("server-side end")
}

#[tokio::test]
async fn each_scripted_failure_ends_in_the_right_typed_reason() {
    let (m, _dir, mut cfg) = linked_setup().await;
    let cases = [
        (Fault::Drop, DisconnectReason::ConnectionClosed),
        (
            Fault::StreamError { code: 401 },
            DisconnectReason::LoggedOut,
        ),
        (
            Fault::StreamError { code: 403 },
            DisconnectReason::Forbidden,
        ),
        (
            Fault::StreamError { code: 440 },
            DisconnectReason::ConnectionReplaced,
        ),
        (
            Fault::StreamError { code: 500 },
            DisconnectReason::BadSession,
        ),
        (
            Fault::StreamError { code: 503 },
            DisconnectReason::UnavailableService,
        ),
        (
            Fault::StreamError { code: 515 },
            DisconnectReason::RestartRequired,
        ),
        (Fault::Downgrade, DisconnectReason::MultideviceMismatch),
        (Fault::StreamEnd, DisconnectReason::ConnectionClosed),
        (Fault::Garbage, DisconnectReason::BadSession),
    ];
    for (fault, want) in cases {
        let got = end_after_fault(&cfg, &m, fault.clone()).await;
        assert_eq!(got, want, "{fault:?}");
    }
    let codes: Vec<u16> = [401, 403, 440, 500, 503, 515, 411, 428].to_vec();
    assert!(
        codes
            .iter()
            .all(|c| DisconnectReason::from_code(*c).code() == *c)
    );

    // Silence: keepalive pings go unanswered and the liveness timeout fires (408).
    cfg.keepalive = Duration::from_millis(100);
    cfg.liveness = Duration::from_millis(400);
    let got = end_after_fault(&cfg, &m, Fault::Silence { enabled: true }).await;
    assert_eq!(got, DisconnectReason::ConnectionLost);
    assert_eq!(got.code(), 408);
    m.fault(Fault::Silence { enabled: false });

    // <failure reason=403> at login.
    m.fault(Fault::Failure { reason: 403 });
    let (tx, _rx) = mpsc::unbounded_channel();
    let end = run_connection(&cfg, &tx, RunMode::UntilOpen).await.unwrap();
    assert_eq!(end.reason, Some(DisconnectReason::Forbidden));
    assert!(!end.opened);
}

#[tokio::test]
async fn stream_error_401_during_pairing_and_exhausted_qr_refs() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&m, dir.path());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = {
        let fut = link(&cfg, &tx);
        tokio::pin!(fut);
        tokio::time::timeout(LIMIT, async {
            loop {
                tokio::select! {
                    out = &mut fut => return out,
                    Some(Event::Qr { .. }) = rx.recv() => m.fault(Fault::StreamError { code: 401 }),
                }
            }
        })
        .await
        .unwrap()
    };
    assert_eq!(
        out.unwrap(),
        LinkOutcome::Failed(DisconnectReason::LoggedOut)
    );
    assert!(
        cfg.store.load().unwrap().is_none(),
        "nothing saved for an unfinished link"
    );

    // Nobody scans: 6 refs rotate (first longer), then 408 timedOut.
    let mut cfg = cfg;
    cfg.qr_ref_lifetimes = (Duration::from_millis(60), Duration::from_millis(20));
    let (out, events) = link_scanning(&m, &cfg, false).await;
    let qrs: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let Event::Qr { qr, .. } = e {
                Some(qr.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(qrs.len(), 6);
    let refs: std::collections::HashSet<_> = qrs
        .iter()
        .map(|q| q.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(refs.len(), 6, "each QR carries a new ref");
    match out.unwrap() {
        LinkOutcome::Failed(r @ DisconnectReason::TimedOut(_)) => assert_eq!(r.code(), 408),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forged_certificate_chain_is_rejected() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&m, dir.path());
    m.fault(Fault::ForgeCert { enabled: true });
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = run_connection(&cfg, &tx, RunMode::UntilOpen)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Handshake(SocketError::Cert(CertError::IntermediateSignature))
        ),
        "{err}"
    );
    m.fault(Fault::ForgeCert { enabled: false });

    // A production client (WhatsApp's root) refuses the mock's honest chain too.
    let mut prod = cfg.clone();
    prod.endpoint.root = TrustedRoot::whatsapp();
    let err = run_connection(&prod, &tx, RunMode::UntilOpen)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Handshake(SocketError::Cert(CertError::IntermediateSignature))
        ),
        "{err}"
    );
    assert_eq!(
        m.state()["lastClientPayload"],
        serde_json::Value::Null,
        "no payload was ever sent"
    );
}

#[tokio::test]
async fn forged_pair_success_signature_is_rejected_and_nothing_is_saved() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&m, dir.path());
    m.fault(Fault::ForgeAccountSignature { enabled: true });
    let (out, _) = link_scanning(&m, &cfg, true).await;
    assert!(
        matches!(out, Err(ClientError::Pair(PairError::AccountSignature))),
        "{out:?}"
    );
    assert!(cfg.store.load().unwrap().is_none());
    assert!(m.linked_devices().is_empty());
}

#[tokio::test]
async fn logout_tells_the_server_and_removes_creds() {
    let (m, _dir, cfg) = linked_setup().await;
    assert_eq!(m.linked_devices().len(), 1);
    assert_eq!(logout(&cfg).await.unwrap(), LogoutOutcome::Unlinked);
    assert!(m.linked_devices().is_empty());
    // The files go; the directory stays (it holds the session lock logout runs under, issue 14
    // item 22).
    assert_eq!(std::fs::read_dir(cfg.store.dir()).unwrap().count(), 0);
    assert_eq!(logout(&cfg).await.unwrap(), LogoutOutcome::NotLinked);
}

#[tokio::test]
async fn corrupt_creds_are_reported_and_left_untouched() {
    let (m, _dir, cfg) = linked_setup().await;
    let path = cfg.store.creds_path();
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, &good[..good.len() / 3]).unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = run_connection(&cfg, &tx, RunMode::UntilOpen)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Creds(_)), "{err}");
    assert!(
        err.to_string().contains("creds.json.bak"),
        "names the previous good copy: {err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        &good[..good.len() / 3],
        "never silently replaced"
    );
    assert_eq!(
        m.state()["totalConnections"],
        2,
        "no connection attempted with broken creds"
    );
    // Restoring the backup (the operator's choice) gets the account back without a QR.
    std::fs::copy(cfg.store.dir().join("creds.json.bak"), &path).unwrap();
    let (out, events) = link_scanning(&m, &cfg, false).await;
    assert!(matches!(out.unwrap(), LinkOutcome::Linked { .. }));
    assert!(!events.iter().any(|e| matches!(e, Event::Qr { .. })));
}

/// Runs `link` in pairing-code mode; the phone user types `typed(code)`.
async fn link_with_code(
    m: &MockServer,
    cfg: &ClientConfig,
    typed: fn(&str) -> String,
) -> (Result<LinkOutcome, ClientError>, Vec<Event>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = link(cfg, &tx);
    tokio::pin!(fut);
    let mut events = Vec::new();
    let out = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::select! {
                out = &mut fut => return out,
                Some(ev) = rx.recv() => {
                    if let Event::PairingCode { code } = &ev {
                        // The hello may still be in flight to the mock; a human is slower.
                        let mut tries = 0;
                        while let Err(e) = m.enter_pair_code(&typed(code)) {
                            tries += 1;
                            assert!(tries < 200, "{e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    events.push(ev);
                }
            }
        }
    })
    .await
    .expect("link finished in time");
    (out, events)
}

#[tokio::test]
async fn link_by_phone_number_pairing_code_and_wrong_code_fails() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&m, dir.path());
    cfg.pair_phone = Some("15550001234".into());
    let (out, events) = link_with_code(&m, &cfg, |c| format!("{}-{}", &c[..4], &c[4..])).await;
    assert_eq!(
        out.unwrap(),
        LinkOutcome::Linked {
            jid: "15550001234:7@s.whatsapp.net".into()
        }
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Qr { .. })),
        "no QR in pairing-code mode"
    );
    let code = events
        .iter()
        .find_map(|e| {
            if let Event::PairingCode { code } = e {
                Some(code.clone())
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(code.len(), 8);
    assert!(
        code.bytes()
            .all(|b| openclaw::channels::whatsapp::paircode::ALPHABET.contains(&b))
    );
    assert_eq!(m.state()["lastClientPayload"], "login");

    // The user mistypes the code: the phone cannot open the key bundle, the attempt ends (401),
    // and nothing is saved.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&m, dir.path());
    cfg.pair_phone = Some("15550001234".into());
    let (out, _) = link_with_code(&m, &cfg, |c| {
        if c.starts_with('Z') {
            "YYYYYYYY".into()
        } else {
            "ZZZZZZZZ".into()
        }
    })
    .await;
    assert_eq!(
        out.unwrap(),
        LinkOutcome::Failed(DisconnectReason::LoggedOut)
    );
    assert!(cfg.store.load().unwrap().is_none());
}

#[tokio::test]
async fn refused_or_silent_server_ends_in_typed_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock().await;
    let mut cfg = config(&m, dir.path());
    let (tx, _rx) = mpsc::unbounded_channel();

    // Nothing listens: networkUnreachable (408; the server never saw the attempt).
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.endpoint.url = format!("ws://127.0.0.1:{port}/ws/chat");
    let end = run_connection(&cfg, &tx, RunMode::UntilOpen).await.unwrap();
    assert!(
        matches!(&end.reason, Some(DisconnectReason::NetworkUnreachable(why)) if why.contains("refused")),
        "{end:?}"
    );

    // Accepts TCP but never answers: timedOut (408) after the connect timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cfg.endpoint.url = format!("ws://{}/ws/chat", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    cfg.connect_timeout = Duration::from_millis(200);
    let end = run_connection(&cfg, &tx, RunMode::UntilOpen).await.unwrap();
    assert!(
        matches!(&end.reason, Some(r @ DisconnectReason::TimedOut(_)) if r.code() == 408),
        "{end:?}"
    );
    hold.abort();
    assert!(cfg.store.load().unwrap().is_none());
}

#[tokio::test]
async fn keepalive_pings_keep_a_quiet_connection_alive() {
    let (m, _dir, mut cfg) = linked_setup().await;
    cfg.keepalive = Duration::from_millis(50);
    cfg.liveness = Duration::from_millis(200);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let fut = run_connection(&cfg, &tx, RunMode::UntilDisconnect);
    tokio::pin!(fut);
    let end = tokio::time::timeout(LIMIT, async {
        let mut drop_at: Option<tokio::time::Instant> = None;
        loop {
            let when = drop_at.unwrap_or_else(|| tokio::time::Instant::now() + LIMIT);
            tokio::select! {
                end = &mut fut => return end,
                Some(ev) = rx.recv() => {
                    if matches!(ev, Event::Open { .. }) {
                        // Five liveness windows with no server-initiated traffic at all.
                        drop_at = Some(tokio::time::Instant::now() + Duration::from_millis(1000));
                    }
                }
                _ = tokio::time::sleep_until(when), if drop_at.is_some() => {
                    drop_at = None;
                    m.fault(Fault::Drop);
                }
            }
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        end.reason,
        Some(DisconnectReason::ConnectionClosed),
        "pings kept it alive until the drop"
    );
    assert!(
        m.state()["pingsAnswered"].as_u64().unwrap() >= 10,
        "{}",
        m.state()
    );
}
