//! Hijacked connections (`attach`, `exec start`): docker clients send
//! `Upgrade: tcp`; the daemon answers `101 UPGRADED` and the connection
//! becomes a raw byte pipe — output from the daemon, stdin from the client.
//! A client that does not ask for an upgrade gets the output as an ordinary
//! streamed body (and no stdin).

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio::io::{AsyncWriteExt, ReadHalf};
use tokio::sync::mpsc;

/// The client's side of a hijacked connection, readable.
pub type ClientInput = ReadHalf<TokioIo<Upgraded>>;

/// What a session handler gets.
pub struct Session {
    /// Send output here; dropping it ends the output (the client sees EOF).
    pub output: mpsc::Sender<Bytes>,
    /// The client's stdin, when the connection was hijacked.
    pub input: Option<ClientInput>,
}

/// Whether the client asked for a protocol upgrade.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.is_empty())
}

/// A body that yields what is sent on the channel, until it closes.
pub fn channel_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    Body::from_stream(stream)
}

/// Answers `req` by running `run` on a hijacked connection (101) or, when
/// the client did not ask for an upgrade, on a streamed 200 body.
pub fn hijack_or_stream<F, Fut>(
    mut req: Request<Body>,
    content_type: &'static str,
    run: F,
) -> Response
where
    F: FnOnce(Session) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if wants_upgrade(req.headers()) {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!("connection upgrade failed: {e}");
                    return;
                }
            };
            let (rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
            let (tx, mut rx) = mpsc::channel::<Bytes>(64);
            let pump = tokio::spawn(async move {
                while let Some(b) = rx.recv().await {
                    if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                        break;
                    }
                }
                let _ = wr.shutdown().await;
            });
            run(Session {
                output: tx,
                input: Some(rd),
            })
            .await;
            let _ = pump.await;
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONTENT_TYPE, content_type)
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, "tcp")
            .body(Body::empty())
            .unwrap_or_else(|_| Response::new(Body::empty()))
    } else {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        tokio::spawn(run(Session {
            output: tx,
            input: None,
        }));
        Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, content_type)
            .body(channel_body(rx))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}
