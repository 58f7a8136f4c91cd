//! The WhatsApp Web (multi-device) channel: our own client over tokio-tungstenite.
