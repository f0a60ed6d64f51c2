//! Where a registry named in an image reference is actually reached.

/// The API host for `registry` (as written in a reference): Docker Hub's
/// names map to `registry-1.docker.io`; anything else is used as is.
pub fn api_host(registry: &str) -> String {
    match registry.to_ascii_lowercase().as_str() {
        "docker.io" | "index.docker.io" | "registry.hub.docker.com" => {
            "registry-1.docker.io".to_string()
        }
        _ => registry.to_string(),
    }
}

/// Whether `registry` (`host[:port]`) is on this machine's loopback: such
/// registries are spoken to over plain HTTP without asking for `--insecure`.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_part(registry).to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// Whether to use plain HTTP for `registry`.
pub fn use_plain_http(registry: &str, insecure: bool) -> bool {
    insecure || is_loopback(registry)
}

/// The host of `host[:port]`, with IPv6 brackets removed.
fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_maps_to_registry_1() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("index.docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn loopback_detection() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "docker.io",
            "10.0.0.1:5000",
            "myregistry:5000",
            "[fe80::1]:80",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
        assert!(use_plain_http("myregistry:5000", true));
        assert!(!use_plain_http("ghcr.io", false));
    }
}
