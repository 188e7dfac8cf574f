//! Name resolution that never blocks the loop.
//!
//! `getaddrinfo` is a blocking call that can take seconds when a DNS server is slow, so names
//! are resolved on the executor's threads (as asyncio's `loop.getaddrinfo` does); IP literals
//! need no resolver and are answered at once.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Resolves `host` to the socket addresses it names, with `port` filled in (asyncio's
/// `loop.getaddrinfo`, reduced to what a TCP client or server needs).
///
/// An IP literal (`"127.0.0.1"`, `"::1"`, or bracketed `"[::1]"`) is answered without a lookup.
/// Any other name is resolved with the system resolver (`getaddrinfo`, through
/// [`std::net::ToSocketAddrs`]) on [`run_in_executor`](crate::run_in_executor)'s pool, so a
/// slow DNS server delays only the task that asked. Duplicate addresses are dropped; the
/// resolver's order (its preference) is kept.
///
/// An empty result is reported as an error of kind `NotFound`, so `Ok` always holds at least
/// one address.
///
/// ```
/// kettle::run(async {
///     let addrs = kettle::net::lookup_host("127.0.0.1", 8080).await.unwrap();
///     assert_eq!(addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
///
///     let local = kettle::net::lookup_host("localhost", 80).await.unwrap();
///     assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// });
/// ```
///
/// Cancellation-safe: dropping the future leaves the lookup running on its thread; its answer
/// is discarded.
pub async fn lookup_host(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_string();
    let resolved = crate::run_in_executor(move || {
        (name.as_str(), port)
            .to_socket_addrs()
            .map(|it| it.collect::<Vec<_>>())
    })
    .await
    // The executor only fails when it cannot start a thread or the resolver panicked.
    .map_err(io::Error::other)??;
    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(resolved.len());
    for a in resolved {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no addresses found for host {host:?}"),
        ));
    }
    Ok(addrs)
}

/// `host` as an IP address if it is written as one (IPv6 optionally in brackets).
fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::ip_literal;

    #[test]
    fn literals_are_recognised_without_a_resolver() {
        assert_eq!(ip_literal("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(ip_literal("::1"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("[fe80::1]"), Some("fe80::1".parse().unwrap()));
        assert_eq!(ip_literal("localhost"), None);
        assert_eq!(ip_literal("[localhost]"), None);
        assert_eq!(ip_literal(""), None);
    }
}
