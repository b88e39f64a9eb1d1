//! TLS with HTTP/2 for [`App::serve`](crate::app::App::serve), behind the `tls` feature:
//! rustls on the `ring` provider, ALPN `h2` then `http/1.1`.
//!
//! A browser that negotiates `h2` sends every request of every tab of the origin over one
//! connection (live streams, events and navigations are streams of it), instead of one
//! connection per request in flight, and is no longer held to six connections per origin.
//! Clients without `h2` get HTTP/1.1 over TLS, with the same deadlines.
//!
//! The handshake reads through the connection's deadline reads, so it counts against
//! [`header_timeout`](super::ServeConfig::header_timeout): a client has that long from the
//! accept to finish the handshake and its first request head. The other deadlines apply as
//! over plain TCP; on HTTP/2 a connection is "serving" while any of its streams is open, so a
//! live stream keeps it open and its events and navigations never wait on a deadline.

use std::error::Error as StdError;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use super::phases::DeadlineIo;
use super::service::Service;

/// The environment variable [`Tls::from_env`] reads the certificate chain from: a PEM file's
/// path, or the PEM text itself.
pub const CERT_ENV: &str = "DSTAR_TLS_CERT";
/// The environment variable [`Tls::from_env`] reads the private key from: a PEM file's path,
/// or the PEM text itself.
pub const KEY_ENV: &str = "DSTAR_TLS_KEY";

/// A certificate chain and its private key, ready to serve TLS with HTTP/2: give it to
/// `App::builder().tls(..)`, or set [`CERT_ENV`] and [`KEY_ENV`] for
/// [`App::serve`](crate::app::App::serve).
///
/// ```no_run
/// # fn build() -> Result<(), Box<dyn std::error::Error>> {
/// use dstar_runtime::serve::Tls;
///
/// let tls = Tls::from_pem_files("/etc/dstar/cert.pem", "/etc/dstar/key.pem")?;
/// let app = dstar_runtime::app::App::builder().tls(tls).build()?;
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("alpn", &["h2", "http/1.1"])
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// From PEM text: `cert_chain` holds the server's certificate first, then any
    /// intermediates; `key` one private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// When either holds no PEM item of its kind, or the key does not fit the certificate.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Tls, TlsError> {
        Tls::parse(cert_chain, "the certificate chain", key, "the private key")
    }

    /// From PEM files (see [`from_pem`](Self::from_pem)).
    ///
    /// # Errors
    ///
    /// When a file cannot be read (the error names it), or as [`from_pem`](Self::from_pem).
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Tls, TlsError> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|err| {
                TlsError::new(format!("could not read {what} from `{}`", path.display()))
                    .with_source(err)
            })
        };
        Tls::parse(
            &read(cert_chain, "the certificate chain")?,
            &format!("`{}`", cert_chain.display()),
            &read(key, "the private key")?,
            &format!("`{}`", key.display()),
        )
    }

    /// From [`CERT_ENV`] and [`KEY_ENV`], each a PEM file's path or the PEM text itself
    /// (a value that starts with `-----BEGIN`). `Ok(None)` when neither is set.
    ///
    /// # Errors
    ///
    /// When only one is set, or as [`from_pem_files`](Self::from_pem_files).
    pub fn from_env() -> Result<Option<Tls>, TlsError> {
        let cert = std::env::var_os(CERT_ENV);
        let key = std::env::var_os(KEY_ENV);
        let (cert, key) = match (cert, key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) | (None, Some(_)) => {
                return Err(TlsError::new(format!(
                    "set both `{CERT_ENV}` and `{KEY_ENV}` to serve TLS, or neither"
                )));
            }
        };
        let (cert_text, key_text) = (cert.to_string_lossy(), key.to_string_lossy());
        match (is_pem(&cert_text), is_pem(&key_text)) {
            (true, true) => Tls::parse(
                cert_text.as_bytes(),
                &format!("`{CERT_ENV}`"),
                key_text.as_bytes(),
                &format!("`{KEY_ENV}`"),
            ),
            (false, false) => Tls::from_pem_files(&cert, &key),
            _ => Err(TlsError::new(format!(
                "`{CERT_ENV}` and `{KEY_ENV}` must both be file paths or both PEM text"
            ))),
        }
        .map(Some)
    }

    fn parse(
        cert_chain: &[u8],
        cert_from: &str,
        key: &[u8],
        key_from: &str,
    ) -> Result<Tls, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                TlsError::new(format!("{cert_from} is not a PEM certificate chain"))
                    .with_source(err)
            })?;
        if certs.is_empty() {
            return Err(TlsError::new(format!(
                "{cert_from} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
            )));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|err| {
            TlsError::new(format!("{key_from} holds no PEM private key")).with_source(err)
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::new("no TLS protocol version available").with_source(err))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|err| {
                TlsError::new(format!(
                    "{key_from} does not fit {cert_from}, or is of an unsupported kind"
                ))
                .with_source(err)
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
        })
    }
}

fn is_pem(text: &str) -> bool {
    text.trim_start().starts_with("-----BEGIN")
}

/// A certificate or key that cannot be served: the message names the file or variable and
/// what is wrong; [`source`](StdError::source) is the underlying error.
#[derive(Debug)]
pub struct TlsError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl TlsError {
    fn new(message: impl Into<String>) -> Self {
        TlsError {
            message: message.into(),
            source: None,
        }
    }

    fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for TlsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|err| err as &(dyn StdError + 'static))
    }
}

/// Serves one TLS connection: the handshake (under the header deadline), then HTTP/2 or
/// HTTP/1.1 as ALPN chose.
pub(super) async fn connection(
    io: DeadlineIo,
    tls: Tls,
    service: Service,
    mut stopped: watch::Receiver<()>,
) {
    let handshake = tokio_rustls::TlsAcceptor::from(tls.config).accept(io);
    let stream = tokio::select! {
        stream = handshake => match stream {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(error = %err, "TLS handshake failed");
                return;
            }
        },
        _ = stopped.changed() => return,
    };
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return super::http1(TokioIo::new(stream), service, stopped).await;
    }
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped.changed() => {}
    }
    // GOAWAY: the streams in flight finish, no new ones start.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
