//! The process's log lines as `tracing` events on stderr (journald adds time and unit).
//! `PARAMANT_LOG_FORMAT=json` writes one JSON object per line for log shippers; the default is
//! text, `service: message key=value`.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `service: message key=value`.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`).
    Json,
}

impl LogFormat {
    /// `PARAMANT_LOG_FORMAT=json` → [`LogFormat::Json`], anything else → [`LogFormat::Text`].
    pub fn from_env() -> Self {
        match std::env::var("PARAMANT_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// Sends `tracing` events to stderr in `format`. A second call (two services in one process,
/// in tests) keeps the first subscriber.
pub fn init_logging(service: &'static str, format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.event_format(Text { service }).try_init(),
    };
}

/// `service: message key=value …` (the shape these services always printed).
struct Text {
    service: &'static str,
}

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let level = *event.metadata().level();
        let prefix = if level <= tracing::Level::WARN { format!(" {level}") } else { String::new() };
        write!(writer, "{}{prefix}: ", self.service)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, " {fields}")?;
                }
            }
        }
        writeln!(writer)
    }
}
