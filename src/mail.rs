//! Outgoing e-mail through lettre. Messages are never sent from a request handler: they
//! are enqueued as `email` jobs (see `store::jobs`) and delivered by the worker.
//!
//! Default transport: one `.eml` file per message under `<data-dir>/outbox/`.
//! With `--smtp-url smtp://user:pass@host:587` they go to an SMTP server (STARTTLS).

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The payload of an `email` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailMessage {
    pub to: String,
    pub to_name: Option<String>,
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// Where messages go.
#[derive(Clone)]
pub enum Mailer {
    /// `<dir>/<job id>.eml`, written to a temporary file and renamed into place.
    File {
        dir: PathBuf,
    },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::File { dir } => write!(f, "Mailer::File({})", dir.display()),
            Mailer::Smtp(_) => f.write_str("Mailer::Smtp(***)"),
        }
    }
}

/// Mail errors (configuration or delivery).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid e-mail address: {0}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("delivery failed: {0}")]
    Delivery(String),
    #[error("invalid SMTP URL: {0}")]
    Config(String),
}

impl Mailer {
    /// A file mailer writing into `dir` (created if missing).
    pub fn file(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Mailer::File { dir })
    }

    /// An SMTP mailer from `smtp://` or `smtps://` URL (lettre's URL format).
    pub fn smtp(url: &str) -> Result<Self, MailError> {
        let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .build();
        Ok(Mailer::Smtp(t))
    }

    /// Sends one message from `from`; `id` is the `email` job's id.
    ///
    /// The message carries `Message-ID: <id@domain of from>` (RFC 5322 §3.6.4), so a job
    /// retried after a crash between sending and recording its completion sends the same
    /// message again, which receivers recognise as a duplicate. The file transport writes
    /// `<id>.eml.tmp` and renames it to `<id>.eml`: a retry replaces the file instead of
    /// adding a second one, and a failed write (full disk) never leaves a partial `.eml`.
    #[tracing::instrument(skip_all, fields(to = %msg.to, job = %id))]
    pub async fn send(
        &self,
        from: &str,
        msg: &EmailMessage,
        id: uuid::Uuid,
    ) -> Result<(), MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::Address(from.to_string()))?;
        let to: Mailbox = match &msg.to_name {
            Some(n) => format!("{n} <{}>", msg.to)
                .parse()
                .or_else(|_| msg.to.parse()),
            None => msg.to.parse(),
        }
        .map_err(|_| MailError::Address(msg.to.clone()))?;
        let domain = from.email.domain().to_string();
        let email = Message::builder()
            .message_id(Some(format!("<{id}@{domain}>")))
            .from(from)
            .to(to)
            .subject(&msg.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self {
            Mailer::File { dir } => {
                let tmp = dir.join(format!("{id}.eml.tmp"));
                let path = dir.join(format!("{id}.eml"));
                let written = async {
                    tokio::fs::write(&tmp, email.formatted()).await?;
                    tokio::fs::rename(&tmp, &path).await
                }
                .await;
                if let Err(e) = written {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(MailError::Delivery(format!("{}: {e}", path.display())));
                }
                Ok(())
            }
            Mailer::Smtp(t) => t
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Delivery(e.to_string())),
        }
    }
}
