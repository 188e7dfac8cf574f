//! [`SocketAddress`]: the address of either end of a stream connection, TCP or Unix-domain.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::net as std_unix;
use std::path::{Path, PathBuf};

/// The address of a stream socket: an IP address and port for TCP, a filesystem path for a
/// Unix-domain socket.
///
/// This is what the streams layer reports where asyncio returns `peername` or `sockname`:
/// [`StreamWriter::get_extra_info`](super::StreamWriter::get_extra_info),
/// [`StreamReader::peer_addr`](super::StreamReader::peer_addr) and
/// [`Server::sockets`](super::Server::sockets).
///
/// Its [`Display`](fmt::Display) form is what asyncio would print: `ip:port` (`[ip6]:port`)
/// for [`Inet`](Self::Inet), the path for [`Unix`](Self::Unix), and the empty string for an
/// unnamed Unix socket (asyncio's `''`, e.g. the `peername` of a client as the server sees it).
///
/// ```
/// use std::path::PathBuf;
/// use kettle::net::SocketAddress;
///
/// let tcp = SocketAddress::from("127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(tcp.to_string(), "127.0.0.1:8080");
/// assert_eq!(tcp.port(), Some(8080));
///
/// let unix = SocketAddress::Unix(Some(PathBuf::from("/run/app.sock")));
/// assert_eq!(unix.to_string(), "/run/app.sock");
/// assert_eq!(unix.as_pathname(), Some(std::path::Path::new("/run/app.sock")));
/// assert_eq!(unix.port(), None);
///
/// let unnamed = SocketAddress::Unix(None);
/// assert_eq!(unnamed.to_string(), "");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketAddress {
    /// A TCP (IPv4 or IPv6) address.
    Inet(SocketAddr),
    /// A Unix-domain address: the socket's path, or `None` for a socket bound to no path
    /// (a connecting client usually is; Linux abstract names are reported as `None` too).
    Unix(Option<PathBuf>),
}

impl SocketAddress {
    /// The IP address and port, if this is a TCP address.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            SocketAddress::Inet(a) => Some(*a),
            SocketAddress::Unix(_) => None,
        }
    }

    /// The port, if this is a TCP address (a shortcut for `as_inet().map(|a| a.port())`).
    pub fn port(&self) -> Option<u16> {
        self.as_inet().map(|a| a.port())
    }

    /// The path, if this is a Unix-domain address bound to one.
    pub fn as_pathname(&self) -> Option<&Path> {
        match self {
            SocketAddress::Unix(Some(p)) => Some(p),
            _ => None,
        }
    }

    /// True for a TCP address.
    pub fn is_inet(&self) -> bool {
        matches!(self, SocketAddress::Inet(_))
    }

    /// True for a Unix-domain address, named or not.
    pub fn is_unix(&self) -> bool {
        matches!(self, SocketAddress::Unix(_))
    }
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddress::Inet(a) => fmt::Display::fmt(a, f),
            SocketAddress::Unix(Some(p)) => fmt::Display::fmt(&p.display(), f),
            SocketAddress::Unix(None) => Ok(()),
        }
    }
}

impl From<SocketAddr> for SocketAddress {
    fn from(addr: SocketAddr) -> SocketAddress {
        SocketAddress::Inet(addr)
    }
}

impl From<&std_unix::SocketAddr> for SocketAddress {
    fn from(addr: &std_unix::SocketAddr) -> SocketAddress {
        SocketAddress::Unix(addr.as_pathname().map(Path::to_path_buf))
    }
}

impl From<std_unix::SocketAddr> for SocketAddress {
    fn from(addr: std_unix::SocketAddr) -> SocketAddress {
        SocketAddress::from(&addr)
    }
}

impl PartialEq<SocketAddr> for SocketAddress {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.as_inet() == Some(*other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_asyncio() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!(SocketAddress::from(v4).to_string(), "10.0.0.1:80");
        assert_eq!(SocketAddress::from(v6).to_string(), "[::1]:443");
        let path = SocketAddress::Unix(Some("/tmp/a b.sock".into()));
        assert_eq!(path.to_string(), "/tmp/a b.sock");
        assert_eq!(SocketAddress::Unix(None).to_string(), "");
        // Width and alignment flags reach the inner formatter.
        assert_eq!(format!("{:>12}", SocketAddress::from(v4)), " 10.0.0.1:80");
    }

    #[test]
    fn accessors() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let a = SocketAddress::from(v4);
        assert!(a.is_inet() && !a.is_unix());
        assert_eq!(a.as_inet(), Some(v4));
        assert_eq!(a.as_pathname(), None);
        assert_eq!(a, v4);
        let u = SocketAddress::Unix(Some("/x".into()));
        assert!(u.is_unix() && !u.is_inet());
        assert_eq!(u.as_inet(), None);
        assert_eq!(u.port(), None);
        assert_ne!(u, v4);
        assert_eq!(SocketAddress::Unix(None).as_pathname(), None);
    }

    #[test]
    fn from_std_unix_addresses() {
        let (a, _b) = std_unix::UnixStream::pair().unwrap();
        let unnamed = a.local_addr().unwrap();
        assert_eq!(SocketAddress::from(&unnamed), SocketAddress::Unix(None));
    }
}
