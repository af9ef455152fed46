//! Sends the panel's mails through the shared `mail` crate: SMTP when configured, else a file
//! in `state_dir/outbox/`.

use jsonapi::{ApiError, ApiResult};

use crate::state::AppState;

/// Sends one plain-text mail; 503 `mail_failed` when it could not be handed over.
pub async fn send(state: &AppState, to: &str, subject: &str, body: &str) -> ApiResult<()> {
    let message = mail::Mail { from: &state.config.mail.from, to, subject, body };
    let now = state.now_ms();
    let date = wire::rfc2822_date(now);
    let sent = match &state.config.mail.smtp {
        Some(server) => mail::send_smtp(server, &message, &date).await,
        None => {
            mail::write_outbox(&state.config.state_dir.join("outbox"), &message, now, &date).map_err(|e| e.to_string())
        }
    };
    sent.map_err(|e| {
        crate::DAEMON.log(format_args!("a mail could not be sent: {e}"));
        ApiError::unavailable("mail_failed", "the mail could not be sent; try again later", 300)
    })
}
