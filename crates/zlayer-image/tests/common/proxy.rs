//! Test helper: a loopback HTTP proxy in front of a registry that injects
//! faults — `503` answers and connections cut in the middle of a blob body.
//!
//! Every forwarded request is rewritten to `Connection: close`, so each
//! request gets its own connection and can be judged on its own.
//!
//! Include with `#[path = "common/proxy.rs"] mod proxy;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What to break.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Answer this many blob GETs with `503 Service Unavailable` first.
    pub blob_503s: u32,
    /// Cut the first this-many blob GETs after `cut_after` body+header bytes.
    pub blob_cuts: u32,
    /// Bytes of the upstream response passed on before a cut.
    pub cut_after: u64,
    /// Require bearer tokens, issued at `/token` to this user/password
    /// (registry token-auth flow, like Docker Hub's).
    pub bearer: Option<(String, String)>,
}

/// The token the proxy's `/token` endpoint issues.
pub const TOKEN: &str = "zlayer-test-token";

#[derive(Default)]
struct State {
    faults: Faults,
    blob_requests: u32,
    range_headers: Vec<String>,
    token_requests: Vec<String>,
}

/// A running fault-injecting proxy; stops accepting when dropped.
pub struct FlakyProxy {
    /// `127.0.0.1:PORT` to use as the registry address.
    pub addr: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    /// Total response bytes passed to clients.
    pub bytes_out: Arc<AtomicU64>,
}

impl FlakyProxy {
    /// Starts a proxy forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str, faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(Mutex::new(State {
            faults,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let bytes_out = Arc::new(AtomicU64::new(0));
        let (st, sp, bo, up) = (
            state.clone(),
            stop.clone(),
            bytes_out.clone(),
            upstream.to_string(),
        );
        thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (st, bo, up) = (st.clone(), bo.clone(), up.clone());
                        thread::spawn(move || {
                            let _ = handle(client, &up, &st, &bo);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FlakyProxy {
            addr,
            state,
            stop,
            bytes_out,
        }
    }

    /// How many blob GETs arrived.
    pub fn blob_requests(&self) -> u32 {
        self.state.lock().unwrap().blob_requests
    }

    /// The request lines of the token endpoint calls.
    pub fn token_requests(&self) -> Vec<String> {
        self.state.lock().unwrap().token_requests.clone()
    }

    /// The `Range` headers of the blob GETs, in arrival order ("" when absent).
    pub fn range_headers(&self) -> Vec<String> {
        self.state.lock().unwrap().range_headers.clone()
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

enum Action {
    Forward { cut_after: Option<u64> },
    Fail503,
    Respond(String),
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn response(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// The token-auth part: `/token` issues [`TOKEN`] for the right basic
/// credentials; everything else needs `Authorization: Bearer TOKEN`.
fn bearer_action(text: &str, first: &str, creds: &(String, String), me: &str) -> Option<Action> {
    use base64::Engine as _;
    let path = first.split_whitespace().nth(1).unwrap_or_default();
    if path.starts_with("/token") {
        let ok = header(text, "authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|raw| raw == format!("{}:{}", creds.0, creds.1).as_bytes());
        return Some(Action::Respond(if ok {
            response(
                "200 OK",
                "",
                &format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#),
            )
        } else {
            response("401 Unauthorized", "", r#"{"details":"bad credentials"}"#)
        }));
    }
    if header(text, "authorization") == Some(&format!("Bearer {TOKEN}")) {
        return None;
    }
    Some(Action::Respond(response(
        "401 Unauthorized",
        &format!(
            "WWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"zlayer-test\"\r\n"
        ),
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#,
    )))
}

fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
        if head.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    Ok(head)
}

fn handle(
    mut client: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    bytes_out: &AtomicU64,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let head = read_head(&mut client)?;
    let text = String::from_utf8_lossy(&head).to_string();
    let first = text.lines().next().unwrap_or_default().to_string();
    let is_blob_get = first.starts_with("GET ") && first.contains("/blobs/sha256:");
    let me = client.local_addr()?.to_string();
    let action = {
        let mut s = state.lock().unwrap();
        let bearer = s.faults.bearer.clone();
        if first.contains(" /token") {
            s.token_requests.push(first.clone());
        }
        if let Some(a) = bearer.and_then(|c| bearer_action(&text, &first, &c, &me)) {
            a
        } else if is_blob_get {
            s.blob_requests += 1;
            let range = text
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("range:"))
                .map(|l| l[6..].trim().to_string())
                .unwrap_or_default();
            s.range_headers.push(range);
            if s.faults.blob_503s > 0 {
                s.faults.blob_503s -= 1;
                Action::Fail503
            } else if s.faults.blob_cuts > 0 {
                s.faults.blob_cuts -= 1;
                Action::Forward {
                    cut_after: Some(s.faults.cut_after),
                }
            } else {
                Action::Forward { cut_after: None }
            }
        } else {
            Action::Forward { cut_after: None }
        }
    };
    match action {
        Action::Respond(r) => {
            client.write_all(r.as_bytes())?;
            client.shutdown(Shutdown::Both)
        }
        Action::Fail503 => {
            client.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            client.shutdown(Shutdown::Both)
        }
        Action::Forward { cut_after } => {
            // Rewrite to one request per connection.
            let mut out = String::new();
            for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                if line.to_ascii_lowercase().starts_with("connection:") {
                    continue;
                }
                out.push_str(line);
                out.push_str("\r\n");
            }
            out.push_str("Connection: close\r\n\r\n");
            let mut up = TcpStream::connect(upstream)?;
            up.write_all(out.as_bytes())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            loop {
                let n = up.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                let mut n = n as u64;
                if let Some(limit) = cut_after {
                    n = n.min(limit.saturating_sub(sent));
                }
                client.write_all(&buf[..n as usize])?;
                sent += n;
                bytes_out.fetch_add(n, Ordering::SeqCst);
                if cut_after.is_some_and(|l| sent >= l) {
                    break;
                }
            }
            client.shutdown(Shutdown::Both)
        }
    }
}
