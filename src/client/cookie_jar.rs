//! The session's cookie jar (aiohttp's `CookieJar` and `DummyCookieJar`), with RFC 6265's
//! storage and retrieval rules: host-only and domain cookies, path matching, `Secure`,
//! `Max-Age` and `Expires`.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use url::Url;

/// Cookies kept in all; the oldest go first beyond it (RFC 6265 §6.1 asks for at least 3000).
const MAX_COOKIES: usize = 3000;
/// Cookies kept per domain (RFC 6265 §6.1 asks for at least 50).
const MAX_PER_DOMAIN: usize = 50;
/// The longest `name=value` we store (RFC 6265 §6.1 asks for at least 4096 bytes).
const MAX_COOKIE_BYTES: usize = 4096;

/// One stored cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// The cookie's name.
    pub name: String,
    /// Its value, as the server sent it (quotes included).
    pub value: String,
    /// The domain it belongs to, lower-case, without a leading dot.
    pub domain: String,
    /// Whether it goes only to exactly `domain` (no `Domain` attribute was given).
    pub host_only: bool,
    /// The path it is limited to.
    pub path: String,
    /// Whether it is sent only over https.
    pub secure: bool,
    /// Whether the server marked it `HttpOnly` (kept for inspection; a client sends it anyway).
    pub http_only: bool,
    /// When it expires; `None` for a session cookie.
    pub expires: Option<SystemTime>,
    /// Insertion order, to keep RFC 6265's ordering among equal paths.
    created: u64,
}

struct Jar {
    cookies: Vec<Cookie>,
    enabled: bool,
    counter: u64,
}

/// The cookies a session remembers and sends back.
///
/// A [`ClientSession`](super::ClientSession) has one (see
/// [`cookie_jar`](super::ClientSession::cookie_jar)); it stores every `Set-Cookie` of every
/// response, including those of redirects, and adds the matching cookies to every request.
/// Handles are cheap clones of one jar. Unlike aiohttp's default (`unsafe=False`), cookies
/// from IP-address hosts are kept, as RFC 6265 allows (they only ever match that same host).
/// Domains are not checked against the public suffix list; a `Domain` attribute must at least
/// contain a dot or equal the host.
///
/// ```
/// use kettle::client::CookieJar;
/// use url::Url;
///
/// let jar = CookieJar::new();
/// let url = Url::parse("http://example.com/shop/cart").unwrap();
/// jar.update_from_set_cookie(&["id=7; Path=/shop", "lang=en"], &url);
/// let sent = jar.filter_cookies(&Url::parse("http://example.com/shop/x").unwrap());
/// assert_eq!(sent, vec![("id".to_string(), "7".to_string()), ("lang".to_string(), "en".to_string())]);
/// assert!(jar.filter_cookies(&Url::parse("http://example.com/").unwrap()).iter().all(|(n, _)| n != "id"));
/// ```
#[derive(Clone)]
pub struct CookieJar {
    jar: Rc<RefCell<Jar>>,
}

impl Default for CookieJar {
    fn default() -> CookieJar {
        CookieJar::new()
    }
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let jar = self.jar.borrow();
        f.debug_struct("CookieJar")
            .field("enabled", &jar.enabled)
            .field("cookies", &jar.cookies.len())
            .finish()
    }
}

impl CookieJar {
    /// An empty jar that follows RFC 6265.
    pub fn new() -> CookieJar {
        CookieJar::with_enabled(true)
    }

    /// A jar that stores nothing and sends nothing (aiohttp's `DummyCookieJar`).
    pub fn dummy() -> CookieJar {
        CookieJar::with_enabled(false)
    }

    fn with_enabled(enabled: bool) -> CookieJar {
        CookieJar {
            jar: Rc::new(RefCell::new(Jar {
                cookies: Vec::new(),
                enabled,
                counter: 0,
            })),
        }
    }

    /// Whether this jar stores anything at all.
    pub fn is_dummy(&self) -> bool {
        !self.jar.borrow().enabled
    }

    /// Stores the cookies of `Set-Cookie` header values received from `url`.
    pub fn update_from_set_cookie<S: AsRef<str>>(&self, values: &[S], url: &Url) {
        for v in values {
            self.store(v.as_ref(), url);
        }
    }

    /// Stores plain `name=value` cookies as if `url` had set them without attributes
    /// (aiohttp's `update_cookies(cookies, response_url)`).
    pub fn update_cookies(&self, cookies: &[(&str, &str)], url: &Url) {
        for (name, value) in cookies {
            self.store(&format!("{name}={value}"), url);
        }
    }

    /// The `(name, value)` pairs to send with a request to `url`, in RFC 6265 order: longer
    /// paths first, then older cookies first.
    pub fn filter_cookies(&self, url: &Url) -> Vec<(String, String)> {
        let mut jar = self.jar.borrow_mut();
        if !jar.enabled || jar.cookies.is_empty() {
            return Vec::new();
        }
        let now = SystemTime::now();
        jar.cookies.retain(|c| c.expires.is_none_or(|t| t > now));
        let Some(host) = host_of(url) else {
            return Vec::new();
        };
        let secure = url.scheme() == "https";
        let path = url.path();
        let mut matched: Vec<&Cookie> = jar
            .cookies
            .iter()
            .filter(|c| {
                let host_ok = if c.host_only {
                    c.domain == host
                } else {
                    domain_match(&host, &c.domain)
                };
                host_ok && path_match(path, &c.path) && (!c.secure || secure)
            })
            .collect();
        matched.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(a.created.cmp(&b.created))
        });
        matched
            .into_iter()
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }

    /// A snapshot of every stored, unexpired cookie.
    pub fn cookies(&self) -> Vec<Cookie> {
        let now = SystemTime::now();
        self.jar
            .borrow()
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|t| t > now))
            .cloned()
            .collect()
    }

    /// How many cookies are stored.
    pub fn len(&self) -> usize {
        self.jar.borrow().cookies.len()
    }

    /// Whether no cookie is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.jar.borrow_mut().cookies.clear();
    }

    /// Forgets the cookies of `domain` and its subdomains (aiohttp's `clear_domain`).
    pub fn clear_domain(&self, domain: &str) {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        self.jar
            .borrow_mut()
            .cookies
            .retain(|c| !domain_match(&c.domain, &domain));
    }

    /// RFC 6265 §5.2 and §5.3: parse one `Set-Cookie` value and store (or delete) it.
    fn store(&self, header: &str, url: &Url) {
        let mut jar = self.jar.borrow_mut();
        if !jar.enabled {
            return;
        }
        let Some(host) = host_of(url) else { return };
        let Some(parsed) = parse_set_cookie(header) else {
            return;
        };
        if parsed.name.len() + parsed.value.len() > MAX_COOKIE_BYTES {
            return;
        }
        let (domain, host_only) = match parsed.domain {
            Some(d) if !d.is_empty() => {
                // A domain attribute must cover the host, and may not be a bare top-level
                // domain such as `com` (a crude stand-in for the public suffix list).
                if !domain_match(&host, &d) || (!d.contains('.') && d != host) {
                    return;
                }
                (d, false)
            }
            _ => (host.clone(), true),
        };
        let secure_origin = url.scheme() == "https";
        if parsed.secure && !secure_origin {
            // RFC 6265bis: only a secure origin may set a Secure cookie.
            return;
        }
        let path = match parsed.path {
            Some(p) if p.starts_with('/') => p,
            _ => default_path(url.path()),
        };
        let now = SystemTime::now();
        let expires = match (parsed.max_age, parsed.expires) {
            (Some(secs), _) if secs <= 0 => Some(SystemTime::UNIX_EPOCH),
            (Some(secs), _) => now.checked_add(Duration::from_secs(secs as u64)),
            (None, Some(at)) => Some(at),
            (None, None) => None,
        };
        let old = jar
            .cookies
            .iter()
            .position(|c| c.name == parsed.name && c.domain == domain && c.path == path);
        let created = match old {
            Some(i) => jar.cookies.remove(i).created,
            None => {
                jar.counter += 1;
                jar.counter
            }
        };
        if expires.is_some_and(|t| t <= now) {
            return; // an expiry in the past deletes the cookie
        }
        jar.cookies.push(Cookie {
            name: parsed.name,
            value: parsed.value,
            domain: domain.clone(),
            host_only,
            path,
            secure: parsed.secure,
            http_only: parsed.http_only,
            expires,
            created,
        });
        evict(&mut jar.cookies, &domain);
    }
}

/// Drops the oldest cookies beyond the per-domain and total limits.
fn evict(cookies: &mut Vec<Cookie>, domain: &str) {
    while cookies.iter().filter(|c| c.domain == domain).count() > MAX_PER_DOMAIN {
        let oldest = cookies
            .iter()
            .enumerate()
            .filter(|(_, c)| c.domain == domain)
            .min_by_key(|(_, c)| c.created)
            .map(|(i, _)| i)
            .expect("over the limit, so not empty");
        cookies.remove(oldest);
    }
    while cookies.len() > MAX_COOKIES {
        let oldest = cookies
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.created)
            .map(|(i, _)| i)
            .expect("over the limit, so not empty");
        cookies.remove(oldest);
    }
}

struct SetCookie {
    name: String,
    value: String,
    domain: Option<String>,
    path: Option<String>,
    secure: bool,
    http_only: bool,
    max_age: Option<i64>,
    expires: Option<SystemTime>,
}

/// RFC 6265 §5.2; `None` for a value without a name.
fn parse_set_cookie(header: &str) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let pair = parts.next()?;
    let (name, value) = pair.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || name.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    let value = value.trim();
    if value.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    let mut cookie = SetCookie {
        name: name.to_string(),
        value: value.to_string(),
        domain: None,
        path: None,
        secure: false,
        http_only: false,
        max_age: None,
        expires: None,
    };
    for attr in parts {
        let (key, val) = match attr.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (attr.trim(), ""),
        };
        if key.eq_ignore_ascii_case("domain") {
            cookie.domain = Some(val.trim_start_matches('.').to_ascii_lowercase());
        } else if key.eq_ignore_ascii_case("path") {
            cookie.path = Some(val.to_string());
        } else if key.eq_ignore_ascii_case("secure") {
            cookie.secure = true;
        } else if key.eq_ignore_ascii_case("httponly") {
            cookie.http_only = true;
        } else if key.eq_ignore_ascii_case("max-age") {
            let digits = val.strip_prefix('-').unwrap_or(val);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                // Saturate absurd values rather than ignore them.
                let n: i64 = digits.parse().unwrap_or(i64::MAX / 2);
                cookie.max_age = Some(if val.starts_with('-') { -n } else { n });
            }
        } else if key.eq_ignore_ascii_case("expires") {
            if let Ok(t) = httpdate::parse_http_date(val) {
                cookie.expires = Some(t);
            }
        }
    }
    Some(cookie)
}

/// The request host, lower-case, without IPv6 brackets.
fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

/// RFC 6265 §5.1.3: `host` equals `domain`, or ends with `.domain` and is not an IP address.
fn domain_match(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    host.len() > domain.len()
        && host.ends_with(domain)
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        && host.parse::<IpAddr>().is_err()
}

/// RFC 6265 §5.1.4.
fn path_match(request_path: &str, cookie_path: &str) -> bool {
    if request_path == cookie_path {
        return true;
    }
    request_path.starts_with(cookie_path)
        && (cookie_path.ends_with('/') || request_path.as_bytes()[cookie_path.len()] == b'/')
}

/// RFC 6265 §5.1.4's default-path: the request path up to, not including, its last `/`.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn names(jar: &CookieJar, u: &str) -> Vec<String> {
        jar.filter_cookies(&url(u))
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn host_only_and_domain_cookies() {
        let jar = CookieJar::new();
        let from = url("http://www.example.com/");
        jar.update_from_set_cookie(
            &["a=1", "b=2; Domain=.example.com", "c=3; Domain=other.org"],
            &from,
        );
        assert_eq!(names(&jar, "http://www.example.com/"), ["a", "b"]);
        assert_eq!(names(&jar, "http://shop.example.com/"), ["b"]);
        assert_eq!(names(&jar, "http://example.com/"), ["b"]);
        assert!(names(&jar, "http://other.org/").is_empty());
        assert!(names(&jar, "http://notexample.com/").is_empty());
    }

    #[test]
    fn top_level_domains_are_refused() {
        let jar = CookieJar::new();
        jar.update_from_set_cookie(&["a=1; Domain=com"], &url("http://example.com/"));
        assert!(jar.is_empty());
    }

    #[test]
    fn paths_match_on_segment_boundaries_longest_first() {
        let jar = CookieJar::new();
        let from = url("http://h.test/docs/page");
        jar.update_from_set_cookie(
            &["root=1; Path=/", "docs=2", "deep=3; Path=/docs/api"],
            &from,
        );
        assert_eq!(
            names(&jar, "http://h.test/docs/api/x"),
            ["deep", "docs", "root"]
        );
        assert_eq!(names(&jar, "http://h.test/docs"), ["docs", "root"]);
        assert_eq!(names(&jar, "http://h.test/docsets"), ["root"]);
    }

    #[test]
    fn secure_cookies_need_https_both_ways() {
        let jar = CookieJar::new();
        jar.update_from_set_cookie(&["s=1; Secure"], &url("http://h.test/"));
        assert!(jar.is_empty(), "an http origin cannot set a Secure cookie");
        jar.update_from_set_cookie(&["s=1; Secure"], &url("https://h.test/"));
        assert_eq!(names(&jar, "https://h.test/"), ["s"]);
        assert!(names(&jar, "http://h.test/").is_empty());
    }

    #[test]
    fn expiry_max_age_and_replacement() {
        let jar = CookieJar::new();
        let from = url("http://h.test/");
        jar.update_from_set_cookie(
            &[
                "a=1",
                "b=2; Max-Age=100",
                "c=3; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            ],
            &from,
        );
        assert_eq!(names(&jar, "http://h.test/"), ["a", "b"]);
        jar.update_from_set_cookie(&["a=9"], &from);
        assert_eq!(
            jar.filter_cookies(&from)[0],
            ("a".to_string(), "9".to_string())
        );
        jar.update_from_set_cookie(&["a=; Max-Age=0"], &from);
        assert_eq!(names(&jar, "http://h.test/"), ["b"]);
        assert!(jar.cookies()[0].expires.is_some());
    }

    #[test]
    fn ip_hosts_match_only_themselves() {
        let jar = CookieJar::new();
        jar.update_from_set_cookie(&["a=1"], &url("http://127.0.0.1:8080/"));
        assert_eq!(names(&jar, "http://127.0.0.1:9000/"), ["a"]);
        assert!(names(&jar, "http://127.0.0.2/").is_empty());
        jar.update_from_set_cookie(&["b=1; Domain=0.0.1"], &url("http://127.0.0.1/"));
        assert_eq!(jar.len(), 1);
    }

    #[test]
    fn junk_is_ignored_and_limits_hold() {
        let jar = CookieJar::new();
        let from = url("http://h.test/");
        jar.update_from_set_cookie(&["novalue", "=x", "a\u{1}b=1", "ok=1; Max-Age=abc"], &from);
        assert_eq!(names(&jar, "http://h.test/"), ["ok"]);
        let many: Vec<String> = (0..200).map(|i| format!("c{i}=v")).collect();
        jar.update_from_set_cookie(&many, &from);
        assert_eq!(jar.len(), MAX_PER_DOMAIN);
        assert!(names(&jar, "http://h.test/").contains(&"c199".to_string()));
    }

    #[test]
    fn the_dummy_jar_keeps_nothing() {
        let jar = CookieJar::dummy();
        jar.update_from_set_cookie(&["a=1"], &url("http://h.test/"));
        assert!(jar.is_empty() && jar.is_dummy());
    }
}
