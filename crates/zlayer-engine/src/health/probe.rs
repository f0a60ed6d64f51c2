//! One health probe: tcp connect, http GET, or a command run with exec.
//!
//! Where the probe connects: the container's own IP when its runtime gives
//! it one (bridge networking), else 127.0.0.1 (host network, sandboxes).

use crate::engine::Engine;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zlayer_runtime::ContainerRecord;
use zlayer_runtime::ExecOptions;
use zlayer_spec::HealthCheck;

/// At most this much probe output is kept.
const MAX_OUTPUT: usize = 4096;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// 0 when the probe passed; the command's code or 1 otherwise.
    pub exit_code: i32,
    /// What it printed, or why it failed.
    pub output: String,
}

impl ProbeOutcome {
    fn pass(output: impl Into<String>) -> Self {
        ProbeOutcome {
            exit_code: 0,
            output: truncate(output.into()),
        }
    }

    fn fail(output: impl Into<String>) -> Self {
        ProbeOutcome {
            exit_code: 1,
            output: truncate(output.into()),
        }
    }

    /// Whether the probe passed.
    pub fn passed(&self) -> bool {
        self.exit_code == 0
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_OUTPUT {
        let mut cut = MAX_OUTPUT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Runs `check` once against `record`, giving up after `timeout`.
pub async fn probe_once(
    engine: &Engine,
    record: &ContainerRecord,
    check: &HealthCheck,
    timeout: Duration,
) -> ProbeOutcome {
    let fut = async {
        match check {
            HealthCheck::Tcp { port } => {
                let ip = container_ip(engine, record).await;
                match TcpStream::connect((ip, *port)).await {
                    Ok(_) => ProbeOutcome::pass(format!("connected to {ip}:{port}")),
                    Err(e) => ProbeOutcome::fail(format!("connecting to {ip}:{port}: {e}")),
                }
            }
            HealthCheck::Http { url, expect_status } => {
                http_probe(engine, record, url, *expect_status).await
            }
            HealthCheck::Command { command } => {
                let opts = ExecOptions::command(command.iter().cloned());
                match engine.exec(record, &opts).await {
                    Ok(out) => {
                        let text = format!("{}{}", out.stdout, out.stderr);
                        ProbeOutcome {
                            exit_code: out.exit_code,
                            output: truncate(text),
                        }
                    }
                    Err(e) => ProbeOutcome::fail(format!("running {command:?}: {e}")),
                }
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::fail(format!(
            "health check timed out after {}",
            zlayer_spec::DurationSpec::from_duration(timeout)
        )),
    }
}

async fn container_ip(engine: &Engine, record: &ContainerRecord) -> IpAddr {
    engine
        .ip(record)
        .await
        .ok()
        .flatten()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The parts of an `http://host[:port]/path` URL.
#[derive(Debug, PartialEq, Eq)]
struct HttpTarget {
    host: String,
    port: u16,
    path: String,
}

fn parse_http_url(url: &str) -> Result<HttpTarget, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("health check url {url:?}: only http:// URLs are supported, e.g. http://localhost:8080/health")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("health check url {url:?}: unclosed '[' in the host"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("health check url {url:?}: bad port {p:?}"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("health check url {url:?}: the host is empty"));
    }
    Ok(HttpTarget { host, port, path })
}

async fn http_probe(
    engine: &Engine,
    record: &ContainerRecord,
    url: &str,
    expect: Option<u16>,
) -> ProbeOutcome {
    let target = match parse_http_url(url) {
        Ok(t) => t,
        Err(e) => return ProbeOutcome::fail(e),
    };
    // `localhost` in a service's own health URL means the service itself.
    let local = matches!(
        target.host.as_str(),
        "localhost" | "127.0.0.1" | "::1" | "0.0.0.0"
    );
    let stream = if local {
        let ip = container_ip(engine, record).await;
        TcpStream::connect((ip, target.port)).await
    } else {
        TcpStream::connect((target.host.as_str(), target.port)).await
    };
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("connecting for GET {url}: {e}")),
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: zlayer-health\r\nConnection: close\r\n\r\n",
        target.path, target.host, target.port
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return ProbeOutcome::fail(format!("sending GET {url}: {e}"));
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return ProbeOutcome::fail(format!("reading the answer to GET {url}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default().to_string();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(code) if expect.map_or((200..300).contains(&code), |e| e == code) => {
            ProbeOutcome::pass(format!("GET {url}: {line}"))
        }
        Some(code) => ProbeOutcome::fail(format!(
            "GET {url} answered {code}, expected {}",
            expect.map_or("2xx".to_string(), |e| e.to_string())
        )),
        None => ProbeOutcome::fail(format!("GET {url}: not an HTTP answer: {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_urls() {
        assert_eq!(
            parse_http_url("http://localhost:8080/health").unwrap(),
            HttpTarget {
                host: "localhost".into(),
                port: 8080,
                path: "/health".into()
            }
        );
        assert_eq!(parse_http_url("http://a").unwrap().port, 80);
        assert_eq!(parse_http_url("http://a").unwrap().path, "/");
        assert_eq!(parse_http_url("http://[::1]:9/x").unwrap().host, "::1");
        for bad in ["https://a/", "http://:80/", "http://a:x/", "ftp://a"] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn output_is_truncated_on_a_char_boundary() {
        let s = "é".repeat(MAX_OUTPUT);
        let t = truncate(s);
        assert!(t.len() <= MAX_OUTPUT);
        assert!(t.chars().all(|c| c == 'é'));
    }
}
