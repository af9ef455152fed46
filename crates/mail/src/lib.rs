//! Outgoing mail of paramant's services (the relay's trial keys, the admin panel's setup links
//! and notices): plain SMTP to a configured local MTA (which does TLS and delivery), or, without
//! one, an RFC 5322 file in an outbox directory for the operator.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A message to send.
pub struct Mail<'a> {
    /// Sender, `"Name <addr>"` or a bare address.
    pub from: &'a str,
    /// Recipient address.
    pub to: &'a str,
    /// Subject line (one line).
    pub subject: &'a str,
    /// Plain-text body.
    pub body: &'a str,
}

impl Mail<'_> {
    /// RFC 5322 text with CRLF line ends and dot-stuffing for SMTP DATA.
    fn rfc5322(&self, date: &str) -> String {
        let mut out = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
            self.from, self.to, self.subject
        );
        for line in self.body.lines() {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out
    }
}

/// Writes the mail into `outbox` as `<unix ms>-<n>.eml` (mode 0600: it carries a key).
pub fn write_outbox(outbox: &Path, mail: &Mail<'_>, unix_ms: u64, date: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(outbox)?;
    // A random suffix: two mails in one millisecond must not collide (create_new would fail).
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(std::io::Error::other)?;
    let name = format!("{unix_ms}-{}.eml", hex::encode(suffix));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(outbox.join(name))?;
    std::io::Write::write_all(&mut file, mail.rfc5322(date).as_bytes())?;
    file.sync_all()
}

/// Sends over SMTP (no AUTH, no TLS: the MTA is local) with a 20 s budget.
pub async fn send_smtp(server: &str, mail: &Mail<'_>, date: &str) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(20), smtp(server, mail, date))
        .await
        .map_err(|_| "SMTP timed out".to_string())?
}

async fn smtp(server: &str, mail: &Mail<'_>, date: &str) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(server).await.map_err(|e| e.to_string())?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    expect(&mut reader, "220").await?;
    let address =
        |s: &str| s.rsplit_once('<').map(|(_, a)| a.trim_end_matches('>').to_owned()).unwrap_or_else(|| s.to_owned());
    let steps = [
        ("EHLO paramant\r\n".to_owned(), "250"),
        (format!("MAIL FROM:<{}>\r\n", address(mail.from)), "250"),
        (format!("RCPT TO:<{}>\r\n", address(mail.to)), "250"),
        ("DATA\r\n".to_owned(), "354"),
        (format!("{}.\r\n", mail.rfc5322(date)), "250"),
        ("QUIT\r\n".to_owned(), "221"),
    ];
    for (command, code) in steps {
        write.write_all(command.as_bytes()).await.map_err(|e| e.to_string())?;
        expect(&mut reader, code).await?;
    }
    Ok(())
}

/// Reads one (possibly multi-line) reply and checks its code.
async fn expect(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) -> Result<(), String> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("SMTP server closed the connection".into());
        }
        if !line.starts_with(code) {
            return Err(format!("SMTP: expected {code}, got {}", line.trim_end()));
        }
        // "250-..." continues, "250 ..." ends the reply.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}
