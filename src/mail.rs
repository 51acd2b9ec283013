//! Outgoing e-mail through lettre. Messages are never sent from a request handler: they
//! are enqueued as `email` jobs (see `store::jobs`) and delivered by the worker.
//!
//! Default transport: one `.eml` file per message under `<data-dir>/outbox/`.
//! With `--smtp-url smtp://user:pass@host:587` they go to an SMTP server (STARTTLS).

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
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
    File {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::File { dir, .. } => write!(f, "Mailer::File({})", dir.display()),
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
        Ok(Mailer::File {
            transport: AsyncFileTransport::<Tokio1Executor>::new(&dir),
            dir,
        })
    }

    /// An SMTP mailer from `smtp://` or `smtps://` URL (lettre's URL format).
    pub fn smtp(url: &str) -> Result<Self, MailError> {
        let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .build();
        Ok(Mailer::Smtp(t))
    }

    /// Sends one message from `from`.
    #[tracing::instrument(skip_all, fields(to = %msg.to))]
    pub async fn send(&self, from: &str, msg: &EmailMessage) -> Result<(), MailError> {
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
        let email = Message::builder()
            .from(from)
            .to(to)
            .subject(&msg.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text.clone())
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self {
            Mailer::File { transport, .. } => transport
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Delivery(e.to_string())),
            Mailer::Smtp(t) => t
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Delivery(e.to_string())),
        }
    }
}
