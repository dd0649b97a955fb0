//! The accept loop: optional TLS (rustls), a connection cap, header limits and timeouts, and
//! graceful shutdown that drains in-flight requests.

use crate::StartError;
use crate::state::{Limits, SharedApp};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds a TLS acceptor from PEM certificate chain and key files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let cert_path = || cert.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| StartError::TlsCertRead {
            path: cert_path(),
            message: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::TlsCertParse {
            path: cert_path(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(StartError::TlsNoCert { path: cert_path() });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| StartError::TlsKey {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(StartError::TlsSetup)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(StartError::TlsMismatch)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: SharedApp,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Every request goes to the one dispatcher, called directly: no router, no boxed
        // future and no extension map per request (`http::router` is the same dispatcher for
        // callers that want a tower service).
        let app = app.clone();
        let client = Arc::new(crate::http::Peer::new(peer));
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (app, peer) = (app.clone(), client.clone());
            async move {
                let response =
                    crate::http::serve(&app, Some(&peer), req.map(axum::body::Body::new));
                Ok::<_, std::convert::Infallible>(response.await)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192));
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out; closing remaining connections");
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_that_do_not_serve_give_typed_errors_naming_the_file() {
        let missing = Path::new("/nonexistent/vaultd-cert.pem");
        let error = tls_acceptor(missing, missing).err().expect("refused");
        assert!(matches!(error, StartError::TlsCertRead { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("reading TLS certificate /nonexistent/vaultd-cert.pem: "),
            "{error}"
        );
        let empty = std::env::temp_dir().join(format!("vaultd-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "no PEM here\n").expect("write");
        let error = tls_acceptor(&empty, &empty).err().expect("refused");
        let _ = std::fs::remove_file(&empty);
        assert!(matches!(error, StartError::TlsNoCert { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("no certificate found in {}", empty.display())
        );
    }
}
