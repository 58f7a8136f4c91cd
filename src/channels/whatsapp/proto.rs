//! Protobuf messages (the subset in `proto/whatsapp.proto`), generated at build time by prost.

#![allow(missing_docs, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/whatsapp.rs"));

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = HandshakeMessage::decode(data.as_slice());
            let _ = CertChain::decode(data.as_slice());
            let _ = cert_chain::NoiseCertificate::decode(data.as_slice());
            let _ = cert_chain::noise_certificate::Details::decode(data.as_slice());
            let _ = ClientPayload::decode(data.as_slice());
            let _ = AdvSignedDeviceIdentityHmac::decode(data.as_slice());
            let _ = AdvSignedDeviceIdentity::decode(data.as_slice());
            let _ = AdvDeviceIdentity::decode(data.as_slice());
        }
    }

    #[test]
    fn field_numbers_match_the_protocol() {
        // HandshakeMessage{clientHello=2{ephemeral=1}}: tag 0x12, inner tag 0x0a.
        let m = HandshakeMessage {
            client_hello: Some(handshake_message::ClientHello {
                ephemeral: Some(vec![1, 2]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(m.encode_to_vec(), vec![0x12, 0x04, 0x0a, 0x02, 1, 2]);
        let p = ClientPayload {
            pull: Some(true),
            username: Some(5),
            ..Default::default()
        };
        assert_eq!(p.encode_to_vec(), vec![0x08, 0x05, 0x88, 0x02, 0x01]);
    }
}
