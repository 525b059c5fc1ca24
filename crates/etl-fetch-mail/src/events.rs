//! What etl-fetch-mail logs: one place, fields first, message last.

use tracing::{info, warn};

pub fn connected(source: &str, mailbox: &str, uidvalidity: u32, from_uid: u32, found: usize) {
    info!(
        source,
        mailbox,
        uidvalidity,
        from_uid,
        found,
        "{source} {mailbox}: {found} new messages (UID {from_uid}:*, UIDVALIDITY {uidvalidity})"
    );
}

pub fn uidvalidity_changed(mailbox: &str, old: u32, new: u32) {
    warn!(mailbox, old, new,
        "{mailbox}: UIDVALIDITY changed from {old} to {new}: the mailbox was rebuilt; fetching it again (files already stored are recognised by sha256)");
}

pub fn skipped_large(mailbox: &str, uid: &str, size: u64, max: u64) {
    warn!(
        mailbox,
        uid,
        size,
        max,
        "{mailbox} message {uid}: {size} bytes, over --max-message-bytes {max}: skipped"
    );
}

pub fn malformed(mailbox: &str, uid: &str, error: &str) {
    warn!(
        mailbox,
        uid, error, "{mailbox} message {uid}: not readable as MIME: {error}"
    );
}

pub fn reconnecting(error: &str, attempt: u32, delay_ms: u64) {
    warn!(
        error,
        attempt,
        delay_ms,
        "connection lost ({error}); reconnecting, attempt {attempt} in {delay_ms} ms"
    );
}

pub fn pending(key: &str, uid: u32) {
    info!(
        key,
        uid, "pending watermark {key} = UID {uid}; `etl-checkpoint commit` makes it stick"
    );
}

pub fn local_pending(key: &str) {
    info!(
        key,
        "pending watermark for {key} recorded; `etl-checkpoint commit` makes it stick"
    );
}

pub fn actions_pending(key: &str, messages: usize) {
    info!(
        key,
        messages, "{messages} message(s) to mark or move once this run is committed ({key})"
    );
}

pub fn actions_applied(mailbox: &str, messages: usize, action: &str) {
    info!(
        mailbox,
        messages,
        action,
        "applied the committed mailbox actions: {messages} message(s) of {mailbox}: {action}"
    );
}

pub fn actions_dropped(mailbox: &str, stored: u32, now: u32, messages: usize) {
    warn!(
        mailbox,
        stored,
        now,
        messages,
        "{mailbox}: UIDVALIDITY changed from {stored} to {now} since the run was committed; its {messages} mailbox action(s) cannot be applied (UIDs no longer name the same messages) and were dropped"
    );
}
