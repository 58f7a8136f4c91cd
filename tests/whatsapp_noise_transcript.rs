//! Noise known-answer transcript (issue 4): `tests/peers/noise-transcript.json` records a handshake
//! in which the client was the real Baileys noise handler with fixed keys
//! (`tests/peers/gen-noise-transcript.mjs`). Our initiator must produce the same ClientFinish and
//! transport bytes, and our responder the same ServerHello that Baileys accepted. Runs without node.

use openclaw::channels::whatsapp::crypto::KeyPair;
use openclaw::channels::whatsapp::noise::{Initiator, Responder};
use serde_json::Value;

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn key(v: &Value) -> KeyPair {
    KeyPair::from_private(h(v).try_into().expect("32 bytes"))
}

#[test]
fn our_noise_reproduces_the_baileys_transcript() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/noise-transcript.json"
    );
    let t: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let keys = &t["keys"];
    let (client_eph, noise, server_eph, server_static) = (
        key(&keys["clientEphemeral"]),
        key(&keys["noiseKey"]),
        key(&keys["serverEphemeral"]),
        key(&keys["serverStatic"]),
    );
    let sh = &t["serverHello"];

    // Initiator side, against Baileys' bytes.
    let (mut init, e_pub) = Initiator::new(client_eph.clone());
    assert_eq!(e_pub.to_vec(), h(&t["clientHelloEphemeral"]));
    let opened = init
        .read_server_hello(&h(&sh["ephemeral"]), &h(&sh["static"]), &h(&sh["payload"]))
        .unwrap();
    assert_eq!(opened.server_static, server_static.public);
    assert_eq!(opened.cert_chain, h(&t["certChain"]));
    let (c_static, c_payload, client) = init
        .write_client_finish(&opened, &noise, &h(&t["clientPayload"]))
        .unwrap();
    assert_eq!(
        c_static,
        h(&t["clientFinish"]["static"]),
        "ClientFinish.static differs from Baileys'"
    );
    assert_eq!(
        c_payload,
        h(&t["clientFinish"]["payload"]),
        "ClientFinish.payload differs from Baileys'"
    );
    let (mut w, mut r) = client.into_halves();
    for (i, pt) in t["plaintexts"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            w.encrypt(&h(pt)).unwrap(),
            h(&t["clientFrames"][i]),
            "client frame {i}"
        );
        assert_eq!(
            r.decrypt(&h(&t["serverFrames"][i])).unwrap(),
            h(pt),
            "server frame {i}"
        );
    }

    // Responder side: the same ServerHello that Baileys accepted, then the client's finish.
    let (resp, se, enc_s, enc_p) = Responder::respond(
        &client_eph.public,
        server_eph,
        &server_static,
        &h(&t["certChain"]),
    )
    .unwrap();
    assert_eq!(
        (se.to_vec(), enc_s, enc_p),
        (h(&sh["ephemeral"]), h(&sh["static"]), h(&sh["payload"]))
    );
    let fin = resp
        .read_client_finish(
            &h(&t["clientFinish"]["static"]),
            &h(&t["clientFinish"]["payload"]),
        )
        .unwrap();
    assert_eq!(fin.client_static, noise.public);
    assert_eq!(fin.payload, h(&t["clientPayload"]));
    let (mut sw, mut sr) = fin.transport.into_halves();
    for (i, pt) in t["plaintexts"].as_array().unwrap().iter().enumerate() {
        assert_eq!(sr.decrypt(&h(&t["clientFrames"][i])).unwrap(), h(pt));
        assert_eq!(sw.encrypt(&h(pt)).unwrap(), h(&t["serverFrames"][i]));
    }
}
