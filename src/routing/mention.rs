//! Whether a group message mentions the assistant, pure (upstream's group mention gating,
//! reference `agent.md` §1 "Groups").
//!
//! A group message counts as a mention when any of these holds, checked in this order:
//!
//! 1. its mentions (WhatsApp `contextInfo.mentionedJid`) name the account itself: its phone
//!    number JID, its LID, or its E.164 number; users are compared without the device suffix
//!    (`1555…:3@s.whatsapp.net` is `1555…@s.whatsapp.net`);
//! 2. it replies to one of the account's own messages (the quoted message's sender is us);
//! 3. a mention pattern matches the text (case-insensitive): the agent's
//!    `agents.entries.<id>.groupChat.mentionPatterns` if that key is set, else
//!    `messages.groupChat.mentionPatterns` if set, else patterns derived from the agent's
//!    `identity` (its name as a whole word, optionally after `@`; its emoji as a literal);
//!    the channel's `mentionPatterns` policy (`mode`, `allowIn`, `denyIn`) turns patterns off
//!    per group;
//! 4. the text contains the account's phone number digits.
//!
//! Patterns are compiled once ([`MentionPatterns::compile`]); a pattern the regex engine does
//! not support (look-around, back-references) is reported and skipped, as upstream skips
//! patterns it cannot compile.

use crate::config::model::whatsapp::{MentionMode, MentionPatterns as MentionPolicy};

/// Who the linked account is, as far as known (all optional until the account is linked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnIdentity {
    /// The account's number in E.164 (`+15551234567`).
    pub e164: Option<String>,
    /// The account's phone-number JID (`15551234567:12@s.whatsapp.net` or without device).
    pub jid: Option<String>,
    /// The account's LID (`1234567890@lid`).
    pub lid: Option<String>,
}

impl OwnIdentity {
    /// The account's phone number digits (from `e164`, else the PN JID's user).
    pub fn phone_digits(&self) -> Option<String> {
        let from_e164 = self.e164.as_deref().map(|e| e.chars().filter(char::is_ascii_digit).collect::<String>());
        let from_jid = self.jid.as_deref().and_then(|j| match address(j) {
            Some((user, Kind::Phone)) => Some(user.to_string()),
            _ => None,
        });
        from_e164.or(from_jid).filter(|d| !d.is_empty())
    }

    /// Whether `addr` (a JID with or without device, or an E.164 number) is the account.
    pub fn is_us(&self, addr: &str) -> bool {
        let Some(them) = address(addr) else { return false };
        let phone = self.phone_digits();
        let ours = [
            phone.as_deref().map(|d| (d, Kind::Phone)),
            self.jid.as_deref().and_then(address),
            self.lid.as_deref().and_then(address),
        ];
        ours.iter().flatten().any(|o| *o == them)
    }
}

/// The kind of user an address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A phone-number user (`@s.whatsapp.net`, `@c.us` or an E.164 number).
    Phone,
    /// A LID user (`@lid`).
    Lid,
}

/// The user part and kind of an address, device and agent suffixes removed; `None` for groups,
/// broadcast lists and anything unrecognised.
fn address(addr: &str) -> Option<(&str, Kind)> {
    let addr = addr.trim();
    let (user, kind) = match addr.split_once('@') {
        Some((u, "s.whatsapp.net" | "c.us")) => (u, Kind::Phone),
        Some((u, "lid")) => (u, Kind::Lid),
        Some(_) => return None,
        None => (addr.strip_prefix('+').unwrap_or(addr), Kind::Phone),
    };
    // `user[.agent][:device]` (WhatsApp's AD-JID form; Baileys writes the agent as `_agent`).
    let user = user.split(':').next().unwrap_or(user);
    let user = user.split(['.', '_']).next().unwrap_or(user);
    (!user.is_empty() && user.bytes().all(|b| b.is_ascii_digit())).then_some((user, kind))
}

/// Why a message counts as a mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MentionReason {
    /// The message's mentions name the account (JID, LID or number).
    Mentioned,
    /// It replies to one of the account's messages.
    ReplyToUs,
    /// A mention pattern matched the text.
    Pattern,
    /// The text contains the account's phone number digits.
    PhoneDigits,
}

/// The mention-relevant parts of one group message.
#[derive(Debug, Clone, Copy)]
pub struct MentionInput<'a> {
    /// The group's address (for the `mentionPatterns` allow/deny policy).
    pub chat_id: &'a str,
    /// The text.
    pub text: &'a str,
    /// The addresses it mentions.
    pub mentions: &'a [String],
    /// Who wrote the message it quotes, if it quotes one.
    pub reply_to_sender: Option<&'a str>,
}

/// Where the mention patterns come from, in upstream's order of precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternSource {
    /// `agents.entries.<agent>.groupChat.mentionPatterns`, when that key is set (even empty).
    pub agent: Option<Vec<String>>,
    /// `messages.groupChat.mentionPatterns`, when that key is set (even empty).
    pub global: Option<Vec<String>>,
    /// The agent's `identity.name`, for derived patterns.
    pub identity_name: Option<String>,
    /// The agent's `identity.emoji`, for derived patterns.
    pub identity_emoji: Option<String>,
}

/// Compiled mention patterns.
#[derive(Debug, Clone, Default)]
pub struct MentionPatterns {
    regexes: Vec<regex::Regex>,
}

/// A configured pattern the regex engine refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedPattern {
    /// The pattern as configured.
    pub pattern: String,
    /// Why it was refused.
    pub reason: String,
}

/// Longest compiled program of one pattern (bytes); bigger ones are refused.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl MentionPatterns {
    /// Compiles the patterns of `source` (configured patterns first, else derived ones); returns
    /// the compiled set and the patterns that were refused.
    pub fn compile(source: &PatternSource) -> (Self, Vec<RejectedPattern>) {
        let configured = source.agent.as_ref().or(source.global.as_ref());
        let patterns: Vec<String> = match configured {
            Some(list) => list.clone(),
            None => derive_patterns(source.identity_name.as_deref(), source.identity_emoji.as_deref()),
        };
        let mut regexes = Vec::new();
        let mut rejected = Vec::new();
        for p in patterns.iter().filter(|p| !p.is_empty()) {
            match regex::RegexBuilder::new(p).case_insensitive(true).size_limit(PATTERN_SIZE_LIMIT).build() {
                Ok(r) => regexes.push(r),
                Err(e) => rejected.push(RejectedPattern { pattern: p.clone(), reason: e.to_string() }),
            }
        }
        (Self { regexes }, rejected)
    }

    /// How many patterns are in use.
    pub fn len(&self) -> usize {
        self.regexes.len()
    }

    /// Whether there is no pattern.
    pub fn is_empty(&self) -> bool {
        self.regexes.is_empty()
    }

    /// Whether a pattern matches `text` (invisible formatting characters removed first).
    pub fn matches(&self, text: &str) -> bool {
        if self.regexes.is_empty() {
            return false;
        }
        let cleaned: String = text.chars().filter(|c| !is_invisible(*c)).collect();
        self.regexes.iter().any(|r| r.is_match(&cleaned))
    }
}

/// Zero-width and bidi control characters upstream removes before matching.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}')
}

/// Patterns derived from the agent's identity: the name as a whole word (words separated by
/// any whitespace, optionally after `@`), the emoji as a literal. A simplified form of
/// upstream's derivation (which also tolerates decorations around the name).
pub fn derive_patterns(name: Option<&str>, emoji: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) {
        let core = name.split_whitespace().map(regex::escape).collect::<Vec<_>>().join(r"\s+");
        out.push(format!(r"(?:^|[^\p{{L}}\p{{N}}_])@?{core}(?:$|[^\p{{L}}\p{{N}}_])"));
    }
    if let Some(emoji) = emoji.map(str::trim).filter(|e| !e.is_empty()) {
        out.push(regex::escape(emoji));
    }
    out
}

/// Whether the channel's `mentionPatterns` policy lets patterns apply in `chat_id` (upstream:
/// mode `allow` (default) applies everywhere but `denyIn`; `deny` only in `allowIn` minus
/// `denyIn`).
pub fn patterns_enabled(policy: Option<&MentionPolicy>, chat_id: &str) -> bool {
    let Some(p) = policy else { return true };
    let has = |list: &Option<Vec<String>>| list.iter().flatten().any(|x| x.trim() == chat_id);
    let (allowed, denied) = (has(&p.allow_in), has(&p.deny_in));
    match p.mode.unwrap_or(MentionMode::Allow) {
        MentionMode::Allow => !denied,
        MentionMode::Deny => allowed && !denied,
    }
}

/// Whether `msg` mentions the account, and why.
pub fn detect(
    own: &OwnIdentity,
    patterns: &MentionPatterns,
    policy: Option<&MentionPolicy>,
    msg: &MentionInput<'_>,
) -> Option<MentionReason> {
    if msg.mentions.iter().any(|m| own.is_us(m)) {
        return Some(MentionReason::Mentioned);
    }
    if msg.reply_to_sender.is_some_and(|s| own.is_us(s)) {
        return Some(MentionReason::ReplyToUs);
    }
    if patterns_enabled(policy, msg.chat_id) && patterns.matches(msg.text) {
        return Some(MentionReason::Pattern);
    }
    if let Some(digits) = own.phone_digits() {
        let text_digits: String = msg.text.chars().filter(char::is_ascii_digit).collect();
        if text_digits.contains(&digits) {
            return Some(MentionReason::PhoneDigits);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> OwnIdentity {
        OwnIdentity {
            e164: Some("+15550000000".into()),
            jid: Some("15550000000:7@s.whatsapp.net".into()),
            lid: Some("987654321012345:7@lid".into()),
        }
    }

    fn input<'a>(text: &'a str, mentions: &'a [String], reply: Option<&'a str>) -> MentionInput<'a> {
        MentionInput { chat_id: "1203@g.us", text, mentions, reply_to_sender: reply }
    }

    fn none() -> MentionPatterns {
        MentionPatterns::default()
    }

    #[test]
    fn mentions_of_our_jid_lid_or_number_ignoring_devices() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        for hit in [
            s(&["15550000000@s.whatsapp.net"]),
            s(&["15550000000:3@s.whatsapp.net"]),
            s(&["15551111111@s.whatsapp.net", "987654321012345@lid"]),
            s(&["987654321012345:2@lid"]),
            s(&["+15550000000"]),
            s(&["15550000000@c.us"]),
        ] {
            assert_eq!(detect(&me(), &none(), None, &input("hi", &hit, None)), Some(MentionReason::Mentioned), "{hit:?}");
        }
        for miss in [
            s(&[]),
            s(&["15551111111@s.whatsapp.net"]),
            // Same digits, other server: a LID user is not the phone number user.
            s(&["15550000000@lid"]),
            s(&["987654321012345@s.whatsapp.net"]),
            s(&["1203@g.us"]),
            s(&["155500000001@s.whatsapp.net"]),
        ] {
            assert_eq!(detect(&me(), &none(), None, &input("hi", &miss, None)), None, "{miss:?}");
        }
        // Nothing known about us: nothing is a mention of us.
        let unknown = OwnIdentity::default();
        let m = s(&["15550000000@s.whatsapp.net"]);
        assert_eq!(detect(&unknown, &none(), None, &input("hi 15550000000", &m, None)), None);
    }

    #[test]
    fn a_reply_to_our_message_is_a_mention() {
        let d = detect(&me(), &none(), None, &input("sure", &[], Some("15550000000:9@s.whatsapp.net")));
        assert_eq!(d, Some(MentionReason::ReplyToUs));
        assert_eq!(detect(&me(), &none(), None, &input("sure", &[], Some("987654321012345@lid"))), Some(MentionReason::ReplyToUs));
        assert_eq!(detect(&me(), &none(), None, &input("sure", &[], Some("15551111111@s.whatsapp.net"))), None);
    }

    #[test]
    fn our_phone_digits_in_the_text_are_a_mention() {
        assert_eq!(detect(&me(), &none(), None, &input("ask @15550000000 please", &[], None)), Some(MentionReason::PhoneDigits));
        assert_eq!(detect(&me(), &none(), None, &input("call +1 555 000 0000", &[], None)), Some(MentionReason::PhoneDigits));
        assert_eq!(detect(&me(), &none(), None, &input("call 1555000", &[], None)), None);
    }

    #[test]
    fn configured_patterns_take_precedence_agent_then_global_then_derived() {
        let src = PatternSource {
            agent: Some(vec![r"\bjarvis\b".into()]),
            global: Some(vec!["computer".into()]),
            identity_name: Some("Claw".into()),
            identity_emoji: None,
        };
        let (p, rej) = MentionPatterns::compile(&src);
        assert!(rej.is_empty());
        assert!(p.matches("hey JARVIS, lights"));
        assert!(!p.matches("computer, lights"), "the agent's list replaces the global one");
        assert!(!p.matches("claw?"), "configured patterns replace derived ones");
        // An agent list that is set but empty still wins (no patterns at all).
        let (p, _) = MentionPatterns::compile(&PatternSource { agent: Some(vec![]), ..src.clone() });
        assert!(p.is_empty());
        let (p, _) = MentionPatterns::compile(&PatternSource { agent: None, ..src.clone() });
        assert!(p.matches("Computer: status") && !p.matches("jarvis"));
        let (p, _) = MentionPatterns::compile(&PatternSource { agent: None, global: None, ..src });
        assert!(p.matches("@claw what's up") && p.matches("hi Claw") && p.matches("claw, hi"));
        assert!(!p.matches("clawing back") && !p.matches("myclaw"), "whole words only");
    }

    #[test]
    fn derived_patterns_from_a_multi_word_name_and_an_emoji() {
        let (p, _) = MentionPatterns::compile(&PatternSource {
            identity_name: Some("Open  Claw".into()),
            identity_emoji: Some("🦞".into()),
            ..PatternSource::default()
        });
        assert_eq!(p.len(), 2);
        assert!(p.matches("ok open claw do it") && p.matches("OPEN\nCLAW") && p.matches("look 🦞"));
        assert!(!p.matches("openclaw") && !p.matches("open the claw"));
        assert!(p.matches("open\u{200b} claw"), "zero-width characters are ignored");
        assert!(derive_patterns(Some("  "), Some("")).is_empty());
    }

    #[test]
    fn unsupported_patterns_are_reported_and_skipped() {
        let src = PatternSource { global: Some(vec!["(?<=x)bot".into(), "bot".into(), "(".into()]), ..Default::default() };
        let (p, rej) = MentionPatterns::compile(&src);
        assert_eq!(p.len(), 1);
        assert_eq!(rej.iter().map(|r| r.pattern.as_str()).collect::<Vec<_>>(), ["(?<=x)bot", "("]);
        assert!(p.matches("Bot?"));
    }

    proptest::proptest! {
        /// Any device and agent suffix of our users is still us; other users never are; no
        /// input panics.
        #[test]
        fn device_suffixes_never_change_who_is_us(device in 0u32..100, agent in 0u32..3, other in 10_000_000u64..99_999_999_999, junk in "\\PC{0,40}") {
            let me = me();
            let dev = |user: &str, server: &str| format!("{user}.{agent}:{device}@{server}");
            proptest::prop_assert!(me.is_us(&dev("15550000000", "s.whatsapp.net")));
            proptest::prop_assert!(me.is_us(&dev("987654321012345", "lid")));
            let underscore = format!("15550000000_{agent}:{device}@s.whatsapp.net");
            proptest::prop_assert!(me.is_us(&underscore));
            proptest::prop_assert!(!me.is_us(&dev(&other.to_string(), "s.whatsapp.net")) || other == 15_550_000_000);
            let mentions = vec![junk.clone()];
            let _ = detect(&me, &none(), None, &input(&junk, &mentions, Some(junk.as_str())));
        }
    }

    #[test]
    fn the_mention_patterns_policy_switches_patterns_per_group() {
        use crate::config::model::whatsapp::MentionMode;
        let (p, _) = MentionPatterns::compile(&PatternSource { global: Some(vec!["bot".into()]), ..Default::default() });
        let pol = |mode, allow: &[&str], deny: &[&str]| MentionPolicy {
            mode,
            allow_in: Some(allow.iter().map(|s| s.to_string()).collect()),
            deny_in: Some(deny.iter().map(|s| s.to_string()).collect()),
        };
        let hit = |policy: Option<&MentionPolicy>| detect(&me(), &p, policy, &input("bot?", &[], None)).is_some();
        assert!(hit(None));
        assert!(hit(Some(&pol(None, &[], &[]))));
        assert!(!hit(Some(&pol(Some(MentionMode::Allow), &[], &["1203@g.us"]))));
        assert!(!hit(Some(&pol(Some(MentionMode::Deny), &[], &[]))));
        assert!(hit(Some(&pol(Some(MentionMode::Deny), &["1203@g.us"], &[]))));
        assert!(!hit(Some(&pol(Some(MentionMode::Deny), &["1203@g.us"], &["1203@g.us"]))));
        // The policy never turns off real mentions.
        let m = vec!["15550000000@s.whatsapp.net".to_string()];
        let off = pol(Some(MentionMode::Deny), &[], &[]);
        assert!(detect(&me(), &p, Some(&off), &input("x", &m, None)).is_some());
    }
}
