//! The gateway: HTTP (Control UI, `/health`, hooks) and the WebSocket control protocol on one
//! loopback port, started from a validated snapshot.
