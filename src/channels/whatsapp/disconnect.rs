//! Why a connection ended, as a typed reason with Baileys' status codes (reference §4).

use super::binary::Node;

/// A classified disconnect. `code()` gives the Baileys `DisconnectReason` status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// 401: logged out / device removed; credentials are no longer valid.
    LoggedOut,
    /// 403: forbidden (main device gone, locked).
    Forbidden,
    /// 408: nothing received within the liveness window.
    ConnectionLost,
    /// 408: a timeout (QR refs exhausted, connect/handshake timeout).
    TimedOut(String),
    /// 411: the server wants a multi-device client (`<ib><downgrade_webclient/>`).
    MultideviceMismatch,
    /// 428: the socket closed (or `xmlstreamend`).
    ConnectionClosed,
    /// 440: another session with these credentials replaced this one.
    ConnectionReplaced,
    /// 500: bad session (stream error without code or conflict).
    BadSession,
    /// 503: service unavailable.
    UnavailableService,
    /// 515: restart required (after pairing); reconnect with the login payload.
    RestartRequired,
    /// 408: the WebSocket could not be opened (DNS, TCP, TLS): the server never saw this
    /// attempt, so probing again soon costs nothing at WhatsApp.
    NetworkUnreachable(String),
    /// Any other server-supplied code.
    Other(u16),
}

impl DisconnectReason {
    /// The numeric status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::LoggedOut => 401,
            Self::Forbidden => 403,
            Self::ConnectionLost | Self::TimedOut(_) | Self::NetworkUnreachable(_) => 408,
            Self::MultideviceMismatch => 411,
            Self::ConnectionClosed => 428,
            Self::ConnectionReplaced => 440,
            Self::BadSession => 500,
            Self::UnavailableService => 503,
            Self::RestartRequired => 515,
            Self::Other(c) => *c,
        }
    }

    /// Maps a numeric code (from `<failure reason>` or `<stream:error code>`).
    pub fn from_code(code: u16) -> Self {
        match code {
            401 => Self::LoggedOut,
            403 => Self::Forbidden,
            408 => Self::ConnectionLost,
            411 => Self::MultideviceMismatch,
            428 => Self::ConnectionClosed,
            440 => Self::ConnectionReplaced,
            500 => Self::BadSession,
            503 => Self::UnavailableService,
            515 => Self::RestartRequired,
            c => Self::Other(c),
        }
    }

    /// Classifies a `<stream:error>` node: `code` attribute if present, else `<conflict>` → 440,
    /// else 500 (Baileys' rules).
    pub fn from_stream_error(node: &Node) -> Self {
        if let Some(code) = node.get_attr("code").and_then(|c| c.parse().ok()) {
            return Self::from_code(code);
        }
        match node.child_nodes().first() {
            Some(c) if c.tag == "conflict" => Self::ConnectionReplaced,
            _ => Self::BadSession,
        }
    }

    /// Classifies a `<failure reason=N>` node.
    pub fn from_failure(node: &Node) -> Self {
        node.get_attr("reason")
            .and_then(|c| c.parse().ok())
            .map_or(Self::BadSession, Self::from_code)
    }

    /// A short machine name (`connectionClosed`, ...), without the code.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LoggedOut => "loggedOut",
            Self::Forbidden => "forbidden",
            Self::ConnectionLost => "connectionLost",
            Self::TimedOut(_) => "timedOut",
            Self::NetworkUnreachable(_) => "networkUnreachable",
            Self::MultideviceMismatch => "multideviceMismatch",
            Self::ConnectionClosed => "connectionClosed",
            Self::ConnectionReplaced => "connectionReplaced",
            Self::BadSession => "badSession",
            Self::UnavailableService => "unavailableService",
            Self::RestartRequired => "restartRequired",
            Self::Other(429) => "rateLimited",
            Self::Other(_) => "other",
        }
    }

    /// Whether WhatsApp refused the credentials or the link (401, 403). What follows depends on
    /// when: see `supervisor::policy::react`, which decides every reaction to a reason.
    pub fn is_logged_out(&self) -> bool {
        matches!(self, Self::LoggedOut | Self::Forbidden)
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut(what) | Self::NetworkUnreachable(what) => {
                write!(f, "{} ({what}) [{}]", self.name(), self.code())
            }
            _ => write!(f, "{} [{}]", self.name(), self.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_stream_errors_classify() {
        for c in [401, 403, 408, 411, 428, 440, 500, 503, 515] {
            assert_eq!(DisconnectReason::from_code(c).code(), c);
        }
        let conflict = Node::new("stream:error")
            .children(vec![Node::new("conflict").attr("type", "replaced")]);
        assert_eq!(
            DisconnectReason::from_stream_error(&conflict),
            DisconnectReason::ConnectionReplaced
        );
        assert_eq!(
            DisconnectReason::from_stream_error(&Node::new("stream:error")),
            DisconnectReason::BadSession
        );
        assert_eq!(
            DisconnectReason::from_stream_error(&Node::new("stream:error").attr("code", "515")),
            DisconnectReason::RestartRequired
        );
        assert_eq!(
            DisconnectReason::from_failure(&Node::new("failure").attr("reason", "403")),
            DisconnectReason::Forbidden
        );
    }
}
