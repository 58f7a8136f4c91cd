//! `openclaw channels groups [--channel whatsapp] [--account ID] [--json]`: the groups an account
//! is in — JID, subject, member count — what a user copies into `groups` of the config. Asked
//! from the running gateway (control method `channels.groups`, which asks WhatsApp through the
//! account's live connection); without a running gateway it says so and exits 1.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use serde_json::{Value, json};

use crate::cli::status_cmd::{ClientArgs, block_on, open, target};
use crate::gateway::client::ClientError;

/// Arguments of `channels groups`.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// The channel (default: the only configured one).
    #[arg(long)]
    pub channel: Option<String>,
    /// The account (default: the channel's default account).
    #[arg(long)]
    pub account: Option<String>,
    /// Where the gateway is, the token, state dir, config, timeout and `--json`.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The table printed for a `channels.groups` answer.
pub fn render(v: &Value) -> String {
    let groups = v["groups"].as_array().cloned().unwrap_or_default();
    let account = v["accountId"].as_str().unwrap_or("default");
    if groups.is_empty() {
        return format!("Account {account} is in no groups.");
    }
    let w = groups.iter().filter_map(|g| g["id"].as_str()).map(str::len).max().unwrap_or(0).max(3);
    let mut out = format!("{:<w$}  {:>7}  SUBJECT\n", "JID", "MEMBERS");
    for g in &groups {
        out.push_str(&format!(
            "{:<w$}  {:>7}  {}\n",
            g["id"].as_str().unwrap_or(""),
            g["participants"].as_u64().unwrap_or(0),
            g["subject"].as_str().unwrap_or("").replace(['\n', '\r'], " ")
        ));
    }
    out.push_str(&format!("{} group(s). Put a JID under channels.whatsapp.groups to configure that group.", groups.len()));
    out
}

async fn ask(a: &GroupsArgs) -> anyhow::Result<Value> {
    let t = target(&a.client)?;
    let (mut c, _) = open(&t, a.client.timeout).await?;
    let mut params = json!({});
    if let Some(ch) = &a.channel {
        params["channel"] = json!(ch);
    }
    if let Some(acc) = &a.account {
        params["accountId"] = json!(acc);
    }
    let r = c.request("channels.groups", params).await;
    c.close().await;
    match r {
        Ok(v) => Ok(v),
        Err(ClientError::Rejected { message, .. }) => Err(anyhow!("{message}")),
        Err(e) => Err(anyhow!("{e}")),
    }
}

/// Runs `channels groups`.
pub fn run(a: &GroupsArgs) -> ExitCode {
    match block_on(ask(a)).and_then(|r| r) {
        Ok(v) => {
            if a.client.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("{}", render(&v));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if a.client.json {
                println!("{}", json!({"ok": false, "error": format!("{e:#}")}));
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_jid_members_and_subject() {
        let v = json!({"accountId": "default", "groups": [{"id": "120363001@g.us", "subject": "Trip\nplans", "participants": 3}]});
        let t = render(&v);
        assert!(t.contains("120363001@g.us        3  Trip plans"), "{t}");
        assert!(render(&json!({"accountId": "work", "groups": []})).contains("Account work is in no groups"));
    }
}
