//! The gateway: HTTP (Control UI, `/health`, hooks) and the WebSocket control protocol on one
//! loopback port, started from a validated snapshot.

pub mod identity;
pub mod lock;
pub mod portinfo;
pub mod settings;
pub mod token;

pub use settings::GatewaySettings;
