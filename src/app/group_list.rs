//! `App::list_groups`: the groups a channel account is in, asked from its running driver (the
//! `channels.groups` control method and `openclaw channels groups` use it).

use std::time::Duration;

use crate::channels::registry::{GroupSummary, TargetError};

use super::App;
use super::send::SendOpError;

/// How long the driver may take to ask the server.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(25);

/// The answer of [`App::list_groups`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupList {
    /// Channel id.
    pub channel: String,
    /// The account asked.
    pub account_id: String,
    /// Its groups, by id.
    pub groups: Vec<GroupSummary>,
}

impl App {
    /// Lists the groups `account` (`None`: the channel's default) is in. Needs the account
    /// connected: the list comes from the server.
    pub async fn list_groups(&self, channel: &str, account: Option<&str>) -> Result<GroupList, SendOpError> {
        let (handle, connected, detail) = self.handle_for(channel, account)?;
        let not_connected = |detail: Option<String>| SendOpError::NotRunning {
            channel: channel.to_owned(),
            account: handle.account().to_owned(),
            detail: detail.unwrap_or_else(|| "not connected".into()),
        };
        if !connected {
            return Err(not_connected(detail));
        }
        match handle.list_groups(LIST_TIMEOUT).await {
            Ok(mut groups) => {
                groups.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(GroupList { channel: channel.to_owned(), account_id: handle.account().to_owned(), groups })
            }
            Err(TargetError::NotConnected) => Err(not_connected(Some("the server did not answer the group list".into()))),
            Err(e) => Err(not_connected(Some(e.to_string()))),
        }
    }
}
