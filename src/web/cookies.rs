//! Cookies: building `Set-Cookie` headers and reading `Cookie` headers (RFC 6265).
//!
//! These are the pieces behind aiohttp's `response.set_cookie()`, `response.del_cookie()` and
//! `request.cookies`. Formatting is strict, because a cookie name or value that smuggles a `;`
//! or a line break would let one cookie rewrite another cookie's attributes, or inject whole
//! headers; parsing is lenient, because browsers send whatever other sites' scripts stored and a
//! single odd cookie must not hide the rest.
//!
//! ```
//! use kettle::web::cookies::{format_set_cookie, parse_cookie_header, CookieOptions, SameSite};
//!
//! let options = CookieOptions::new().max_age(3600).httponly(true).samesite(SameSite::Lax);
//! let header = format_set_cookie("session", "abc123", &options).unwrap();
//! assert_eq!(header, "session=abc123; HttpOnly; Max-Age=3600; Path=/; SameSite=Lax");
//!
//! let cookies = parse_cookie_header("session=abc123; theme=\"dark mode\"");
//! assert_eq!(cookies[1], ("theme".to_string(), "dark mode".to_string()));
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most pairs [`parse_cookie_header`] returns from one header value.
///
/// Browsers cap cookies per domain at around 180, so 256 keeps every real request whole while
/// stopping a crafted header of tens of thousands of `a=1;` pieces from becoming as many
/// allocations.
pub const MAX_COOKIE_PAIRS: usize = 256;

/// The `expires` attribute aiohttp's `del_cookie` sends: the earliest date every browser
/// accepts, so the cookie is already stale when it arrives.
const EPOCH_EXPIRES: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// IMF-fixdate has four year digits; 253402300800 is 10000-01-01T00:00:00Z.
const MAX_EXPIRES_SECS: u64 = 253_402_300_800;

/// The `SameSite` attribute: whether the browser sends the cookie on cross-site requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// Only on requests that originate from the cookie's own site.
    Strict,
    /// On same-site requests and on top-level cross-site navigations (the browsers' default).
    Lax,
    /// On every request; browsers accept this only together with `Secure`.
    None,
}

impl SameSite {
    /// The attribute value as written in the header (`Strict`, `Lax` or `None`).
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The attributes of a `Set-Cookie` header, as the keyword arguments of aiohttp's
/// `set_cookie`.
///
/// `path` defaults to `Some("/")`, as in aiohttp, so a cookie set while handling `/a/b` is
/// still sent for `/c`; set the field to `None` to leave the attribute out and get the browser's
/// default (the directory of the request path).
///
/// `SameSite::None` without `secure` is written as asked, as aiohttp does, even though
/// browsers drop such cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieOptions {
    /// `Max-Age` in seconds; zero or negative tells the browser to drop the cookie now.
    pub max_age: Option<i64>,
    /// `expires`; browsers prefer `Max-Age` when both are present.
    pub expires: Option<SystemTime>,
    /// `Path`: the URL path prefix the cookie is sent for.
    pub path: Option<String>,
    /// `Domain`: also send the cookie to subdomains of this domain.
    pub domain: Option<String>,
    /// `Secure`: send the cookie over HTTPS only.
    pub secure: bool,
    /// `HttpOnly`: hide the cookie from JavaScript.
    pub httponly: bool,
    /// `SameSite`; absent means the browser's default (`Lax` in current browsers).
    pub samesite: Option<SameSite>,
}

impl Default for CookieOptions {
    fn default() -> Self {
        CookieOptions {
            max_age: None,
            expires: None,
            path: Some("/".to_string()),
            domain: None,
            secure: false,
            httponly: false,
            samesite: None,
        }
    }
}

impl CookieOptions {
    /// The defaults: only `Path=/`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `Max-Age` in seconds.
    #[must_use]
    pub fn max_age(mut self, seconds: i64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// Sets `expires` to a point in time.
    #[must_use]
    pub fn expires(mut self, at: SystemTime) -> Self {
        self.expires = Some(at);
        self
    }

    /// Sets `Path`.
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets `Domain`.
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets or clears `Secure`.
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets or clears `HttpOnly`.
    #[must_use]
    pub fn httponly(mut self, httponly: bool) -> Self {
        self.httponly = httponly;
        self
    }

    /// Sets `SameSite`.
    #[must_use]
    pub fn samesite(mut self, samesite: SameSite) -> Self {
        self.samesite = Some(samesite);
        self
    }
}

/// Why a `Set-Cookie` header could not be built.
///
/// The offending text is shown with Rust's `{:?}` escaping, so a stray CR or LF is visible in
/// logs instead of breaking them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    /// The name is empty or has a character outside an RFC 7230 token.
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The value has a character that cannot appear in a cookie even inside double quotes.
    InvalidValue {
        /// The cookie the value belongs to.
        name: String,
        /// The first character that cannot be sent.
        character: char,
    },
    /// The `Path` or `Domain` attribute has a character that would end or corrupt the header.
    InvalidAttribute {
        /// `"Path"` or `"Domain"`.
        attribute: &'static str,
        /// The rejected attribute value.
        value: String,
    },
    /// `expires` lies beyond 9999-12-31, which an HTTP date cannot express.
    ExpiresOutOfRange,
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieError::InvalidName { name } if name.is_empty() => {
                f.write_str("invalid cookie name: the name is empty")
            }
            CookieError::InvalidName { name } => write!(
                f,
                "invalid cookie name {name:?}: names may only contain letters, digits and \
                 !#$%&'*+-.^_`|~"
            ),
            CookieError::InvalidValue { name, character } => write!(
                f,
                "invalid value for cookie {name:?}: {character:?} cannot be sent in a cookie \
                 (control characters, ';', '\"', '\\\\' and non-ASCII are not allowed; \
                 percent-encode or base64 the value)"
            ),
            CookieError::InvalidAttribute { attribute, value } => write!(
                f,
                "invalid cookie {attribute} {value:?}: control characters, ';' and non-ASCII \
                 are not allowed"
            ),
            CookieError::ExpiresOutOfRange => {
                f.write_str("cookie expires date is after the year 9999")
            }
        }
    }
}

impl std::error::Error for CookieError {}

/// Whether `b` is an RFC 7230 `tchar`, the alphabet of cookie names.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 `cookie-octet`: visible ASCII except `"` `,` `;` `\`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// What may stand between double quotes: browsers and Python's `http.cookies` take spaces and
/// commas there. `"` and `\` stay out because RFC 6265 has no escapes and browsers keep
/// backslashes literally, so an escaped value would not come back as it was set.
fn is_quotable(b: u8) -> bool {
    is_cookie_octet(b) || b == b' ' || b == b','
}

fn check_name(name: &str) -> Result<(), CookieError> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(CookieError::InvalidName {
            name: name.to_string(),
        });
    }
    Ok(())
}

fn check_attribute(attribute: &'static str, value: &str) -> Result<(), CookieError> {
    // RFC 6265 allows any CHAR except CTLs and ';' in Path; Domain is held to the same rule
    // plus no whitespace or commas, which no hostname contains and which would confuse parsers
    // that split combined headers.
    let ok = value.bytes().all(|b| {
        (0x20..0x7F).contains(&b) && b != b';' && (attribute != "Domain" || !b" ,".contains(&b))
    });
    if !ok || (attribute == "Domain" && value.is_empty()) {
        return Err(CookieError::InvalidAttribute {
            attribute,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Appends the value, double-quoted when it has spaces or commas, the way Python's
/// `http.cookies` does.
fn push_value(out: &mut String, name: &str, value: &str) -> Result<(), CookieError> {
    if value.bytes().all(is_cookie_octet) {
        out.push_str(value);
        return Ok(());
    }
    if let Some(character) = value
        .chars()
        .find(|&c| !(c.is_ascii() && is_quotable(c as u8)))
    {
        return Err(CookieError::InvalidValue {
            name: name.to_string(),
            character,
        });
    }
    out.push('"');
    out.push_str(value);
    out.push('"');
    Ok(())
}

fn format_expires(at: SystemTime) -> Result<String, CookieError> {
    // Any instant before 1970 already lies in the past, exactly like the epoch, so clamping
    // keeps the meaning (the httpdate crate panics on pre-epoch times).
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    if since_epoch.as_secs() >= MAX_EXPIRES_SECS {
        return Err(CookieError::ExpiresOutOfRange);
    }
    Ok(httpdate::fmt_http_date(UNIX_EPOCH + since_epoch))
}

/// Builds the value of a `Set-Cookie` header, like aiohttp's `response.set_cookie()`.
///
/// The name must be an RFC 7230 token. A value made of RFC 6265 cookie-octets is written as is;
/// one that also has spaces or commas is wrapped in double quotes (as Python's `http.cookies`
/// does, and [`parse_cookie_header`] strips them again); any other character (control
/// characters including CR, LF and NUL, `;`, `"`, `\`, non-ASCII) is an error rather than an
/// escape, since browsers have no escapes. An empty value is written as `name=`, where Python
/// writes `name=""`.
///
/// Attributes follow the order Python's `Morsel` uses (alphabetical): `Domain`, `expires`,
/// `HttpOnly`, `Max-Age`, `Path`, `SameSite`, `Secure`. `expires` is an IMF-fixdate; a time
/// before 1970 is written as the epoch.
///
/// ```
/// use kettle::web::cookies::{format_set_cookie, CookieOptions};
///
/// let header = format_set_cookie("greeting", "hello world", &CookieOptions::new()).unwrap();
/// assert_eq!(header, "greeting=\"hello world\"; Path=/");
/// assert!(format_set_cookie("x", "1\r\nSet-Cookie: admin=1", &CookieOptions::new()).is_err());
/// ```
pub fn format_set_cookie(
    name: &str,
    value: &str,
    options: &CookieOptions,
) -> Result<String, CookieError> {
    check_name(name)?;
    let mut out = String::with_capacity(name.len() + value.len() + 64);
    out.push_str(name);
    out.push('=');
    push_value(&mut out, name, value)?;
    if let Some(domain) = &options.domain {
        check_attribute("Domain", domain)?;
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    if let Some(at) = options.expires {
        out.push_str("; expires=");
        out.push_str(&format_expires(at)?);
    }
    if options.httponly {
        out.push_str("; HttpOnly");
    }
    if let Some(max_age) = options.max_age {
        out.push_str("; Max-Age=");
        out.push_str(&max_age.to_string());
    }
    if let Some(path) = &options.path {
        check_attribute("Path", path)?;
        out.push_str("; Path=");
        out.push_str(path);
    }
    if let Some(samesite) = options.samesite {
        out.push_str("; SameSite=");
        out.push_str(samesite.as_str());
    }
    if options.secure {
        out.push_str("; Secure");
    }
    Ok(out)
}

/// Builds the `Set-Cookie` value that deletes a cookie, like aiohttp's
/// `response.del_cookie()`: an empty value, `Max-Age=0` and an `expires` in 1970 (for clients
/// that predate `Max-Age`).
///
/// Browsers delete only the cookie whose name, path and domain all match, so pass the `path`
/// and `domain` the cookie was set with; `path` defaults to `/` like in
/// [`CookieOptions`].
///
/// ```
/// use kettle::web::cookies::format_del_cookie;
///
/// assert_eq!(
///     format_del_cookie("session", None, None).unwrap(),
///     "session=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
/// );
/// ```
pub fn format_del_cookie(
    name: &str,
    path: Option<&str>,
    domain: Option<&str>,
) -> Result<String, CookieError> {
    check_name(name)?;
    let path = path.unwrap_or("/");
    check_attribute("Path", path)?;
    let mut out = String::with_capacity(name.len() + 80);
    out.push_str(name);
    out.push('=');
    if let Some(domain) = domain {
        check_attribute("Domain", domain)?;
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out.push_str("; expires=");
    out.push_str(EPOCH_EXPIRES);
    out.push_str("; Max-Age=0; Path=");
    out.push_str(path);
    Ok(out)
}

/// Reads a request's `Cookie` header into `(name, value)` pairs, in header order.
///
/// The format is `a=1; b=2`. Parsing never fails: a piece without `=`, with an empty name, with
/// a name that is not a token, or with control characters is skipped and the rest is still
/// read, since one malformed cookie (often set by some other application on the same domain)
/// must not hide the others. Spaces and tabs around names and values are ignored; one pair of
/// double quotes around a value is removed. Values may hold any other text, including
/// non-ASCII. Names are case-sensitive and duplicates are all kept: browsers send the cookie
/// with the longest matching path first.
///
/// At most [`MAX_COOKIE_PAIRS`] pairs are returned; later ones are dropped.
///
/// ```
/// use kettle::web::cookies::parse_cookie_header;
///
/// let pairs = parse_cookie_header(" a=1;;junk; b = \"two\" ;c=");
/// let expected = [("a", "1"), ("b", "two"), ("c", "")];
/// assert!(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).eq(expected));
/// ```
pub fn parse_cookie_header(value: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for piece in value.split(';') {
        if pairs.len() >= MAX_COOKIE_PAIRS {
            break;
        }
        let Some((name, val)) = piece.split_once('=') else {
            continue;
        };
        let name = name.trim_matches([' ', '\t']);
        let mut val = val.trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            continue;
        }
        if val.len() >= 2 && val.starts_with('"') && val.ends_with('"') {
            val = &val[1..val.len() - 1];
        }
        if val.chars().any(char::is_control) {
            continue;
        }
        pairs.push((name.to_string(), val.to_string()));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(header: &str) -> Vec<(&'static str, String)> {
        // Leaked names keep the assertions short; test-only.
        parse_cookie_header(header)
            .into_iter()
            .map(|(n, v)| (&*Box::leak(n.into_boxed_str()), v))
            .collect()
    }

    fn set(name: &str, value: &str) -> Result<String, CookieError> {
        format_set_cookie(name, value, &CookieOptions::new())
    }

    #[test]
    fn defaults_match_aiohttp() {
        let options = CookieOptions::default();
        assert_eq!(options.path.as_deref(), Some("/"));
        assert_eq!(options, CookieOptions::new());
        assert!(!options.secure && !options.httponly);
        assert_eq!(set("a", "1").unwrap(), "a=1; Path=/");
    }

    #[test]
    fn every_attribute_in_morsel_order() {
        let options = CookieOptions::new()
            .max_age(3600)
            .expires(UNIX_EPOCH + Duration::from_secs(1_445_412_480))
            .path("/app")
            .domain("example.com")
            .secure(true)
            .httponly(true)
            .samesite(SameSite::Strict);
        assert_eq!(
            format_set_cookie("id", "a3fWa", &options).unwrap(),
            "id=a3fWa; Domain=example.com; expires=Wed, 21 Oct 2015 07:28:00 GMT; HttpOnly; \
             Max-Age=3600; Path=/app; SameSite=Strict; Secure"
        );
    }

    #[test]
    fn no_path_when_cleared() {
        let mut options = CookieOptions::new();
        options.path = None;
        assert_eq!(format_set_cookie("a", "b", &options).unwrap(), "a=b");
    }

    #[test]
    fn samesite_values() {
        for (samesite, text) in [
            (SameSite::Strict, "Strict"),
            (SameSite::Lax, "Lax"),
            (SameSite::None, "None"),
        ] {
            let options = CookieOptions::new().samesite(samesite).secure(true);
            assert_eq!(
                format_set_cookie("a", "b", &options).unwrap(),
                format!("a=b; Path=/; SameSite={text}; Secure")
            );
            assert_eq!(samesite.to_string(), text);
        }
    }

    #[test]
    fn max_age_zero_and_negative() {
        let zero = CookieOptions::new().max_age(0);
        assert_eq!(
            format_set_cookie("a", "b", &zero).unwrap(),
            "a=b; Max-Age=0; Path=/"
        );
        let negative = CookieOptions::new().max_age(-1);
        assert_eq!(
            format_set_cookie("a", "b", &negative).unwrap(),
            "a=b; Max-Age=-1; Path=/"
        );
    }

    #[test]
    fn expires_formatting_and_range() {
        let epoch = CookieOptions::new().expires(UNIX_EPOCH);
        assert_eq!(
            format_set_cookie("a", "b", &epoch).unwrap(),
            "a=b; expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"
        );
        let before_epoch = CookieOptions::new().expires(UNIX_EPOCH - Duration::from_secs(86_400));
        assert_eq!(
            format_set_cookie("a", "b", &before_epoch).unwrap(),
            format_set_cookie("a", "b", &epoch).unwrap()
        );
        let last = UNIX_EPOCH + Duration::from_secs(MAX_EXPIRES_SECS - 1);
        assert_eq!(
            format_set_cookie("a", "b", &CookieOptions::new().expires(last)).unwrap(),
            "a=b; expires=Fri, 31 Dec 9999 23:59:59 GMT; Path=/"
        );
        let too_far = UNIX_EPOCH + Duration::from_secs(MAX_EXPIRES_SECS);
        let err = format_set_cookie("a", "b", &CookieOptions::new().expires(too_far)).unwrap_err();
        assert_eq!(err, CookieError::ExpiresOutOfRange);
        assert!(err.to_string().contains("9999"));
    }

    #[test]
    fn values_needing_quotes() {
        assert_eq!(
            set("a", "hello world").unwrap(),
            "a=\"hello world\"; Path=/"
        );
        assert_eq!(set("a", "x,y").unwrap(), "a=\"x,y\"; Path=/");
        assert_eq!(set("a", "").unwrap(), "a=; Path=/");
        // Characters Python's http.cookies quotes but RFC 6265 allows bare.
        assert_eq!(
            set("a", "k=v/(x)?@[]{}<>:").unwrap(),
            "a=k=v/(x)?@[]{}<>:; Path=/"
        );
    }

    #[test]
    fn injection_attempts_rejected() {
        for value in [
            "1; Path=/admin",
            "1\r\nSet-Cookie: admin=1",
            "1\nX: y",
            "1\r",
            "nul\0",
            "tab\t",
            "quote\"",
            "back\\slash",
            "caf\u{e9}",
            "\u{7f}",
        ] {
            let err = set("a", value).unwrap_err();
            assert!(
                matches!(err, CookieError::InvalidValue { .. }),
                "{value:?}: {err}"
            );
        }
        let err = set("a", "x\r\ny").unwrap_err();
        assert_eq!(
            err,
            CookieError::InvalidValue {
                name: "a".into(),
                character: '\r'
            }
        );
        // The message escapes the CR so a log line stays one line.
        assert!(err.to_string().contains("'\\r'"), "{err}");
        assert!(!err.to_string().contains('\r'));

        for name in [
            "",
            "a b",
            "a;b",
            "a=b",
            "a\r\nb",
            "a\0",
            "caf\u{e9}",
            "a:b",
            "(a)",
        ] {
            let err = set(name, "v").unwrap_err();
            assert!(matches!(err, CookieError::InvalidName { .. }), "{name:?}");
            assert!(!err.to_string().contains('\n'));
        }
        assert!(set("", "v").unwrap_err().to_string().contains("empty"));
        assert_eq!(
            set("Weird!#$%&'*+-.^_`|~9", "v").unwrap(),
            "Weird!#$%&'*+-.^_`|~9=v; Path=/"
        );

        for path in ["/a;Secure", "/a\r\nX: y", "/\0", "/caf\u{e9}"] {
            let options = CookieOptions::new().path(path);
            let err = format_set_cookie("a", "b", &options).unwrap_err();
            assert!(matches!(
                err,
                CookieError::InvalidAttribute {
                    attribute: "Path",
                    ..
                }
            ));
        }
        for domain in ["", "a.com; Secure", "a.com\r\n", "a .com", "a,b"] {
            let options = CookieOptions::new().domain(domain);
            let err = format_set_cookie("a", "b", &options).unwrap_err();
            assert!(matches!(
                err,
                CookieError::InvalidAttribute {
                    attribute: "Domain",
                    ..
                }
            ));
        }
        assert_eq!(
            format_set_cookie("a", "b", &CookieOptions::new().path("/with space")).unwrap(),
            "a=b; Path=/with space"
        );
    }

    #[test]
    fn del_cookie_matches_aiohttp() {
        assert_eq!(
            format_del_cookie("a", None, None).unwrap(),
            "a=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        );
        assert_eq!(
            format_del_cookie("a", Some("/app"), Some("example.com")).unwrap(),
            "a=; Domain=example.com; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/app"
        );
        assert!(format_del_cookie("a b", None, None).is_err());
        assert!(format_del_cookie("a", Some("/;x"), None).is_err());
        assert!(format_del_cookie("a", None, Some("x\n")).is_err());
        // Same bytes as set_cookie with the equivalent options.
        let options = CookieOptions::new().max_age(0).expires(UNIX_EPOCH);
        assert_eq!(
            format_set_cookie("a", "", &options).unwrap(),
            format_del_cookie("a", None, None).unwrap()
        );
    }

    #[test]
    fn parse_basic_and_spacing() {
        assert_eq!(pairs("a=1; b=2"), [("a", "1".into()), ("b", "2".into())]);
        assert_eq!(pairs("a=1;b=2"), [("a", "1".into()), ("b", "2".into())]);
        assert_eq!(
            pairs("  a = 1 ;\tb\t=\t2\t;  "),
            [("a", "1".into()), ("b", "2".into())]
        );
        assert!(pairs("").is_empty());
        assert!(pairs(";;; ;").is_empty());
    }

    #[test]
    fn parse_quotes() {
        assert_eq!(pairs("a=\"x y\""), [("a", "x y".into())]);
        assert_eq!(pairs("a=\"\""), [("a", String::new())]);
        // Unbalanced or lone quotes are kept as sent.
        assert_eq!(pairs("a=\"x"), [("a", "\"x".into())]);
        assert_eq!(pairs("a=\""), [("a", "\"".into())]);
        // Only one pair of quotes is removed.
        assert_eq!(pairs("a=\"\"x\"\""), [("a", "\"x\"".into())]);
    }

    #[test]
    fn parse_oddities() {
        // Without '=', empty names and non-token names are skipped, the rest still read.
        assert_eq!(
            pairs("flag; =v; a b=1; x=1; (y)=2; z=3"),
            [("x", "1".into()), ("z", "3".into())]
        );
        // Only the first '=' splits.
        assert_eq!(pairs("a=b=c"), [("a", "b=c".into())]);
        assert_eq!(pairs("a="), [("a", String::new())]);
        // Duplicates are kept in order; names are case-sensitive.
        assert_eq!(
            pairs("a=1; A=2; a=3"),
            [("a", "1".into()), ("A", "2".into()), ("a", "3".into())]
        );
        // Control characters drop the piece; non-ASCII and commas are tolerated.
        assert_eq!(
            pairs("a=x\u{1}y; b=caf\u{e9}; c=1,2"),
            [("b", "caf\u{e9}".into()), ("c", "1,2".into())]
        );
        assert_eq!(pairs("a=1\r\nb=2"), []);
    }

    #[test]
    fn parse_is_bounded() {
        let header = "k=v; ".repeat(MAX_COOKIE_PAIRS * 4);
        assert_eq!(parse_cookie_header(&header).len(), MAX_COOKIE_PAIRS);
        let header: String = (0..MAX_COOKIE_PAIRS + 1)
            .map(|i| format!("c{i}={i};"))
            .collect();
        let parsed = parse_cookie_header(&header);
        assert_eq!(parsed.len(), MAX_COOKIE_PAIRS);
        assert_eq!(
            parsed.last().unwrap().0,
            format!("c{}", MAX_COOKIE_PAIRS - 1)
        );
    }

    #[test]
    fn set_then_parse_round_trip() {
        for value in ["", "plain", "with space", "a,b", "=/?@"] {
            let header = set("k", value).unwrap();
            let cookie = header.split("; Path").next().unwrap();
            assert_eq!(
                parse_cookie_header(cookie),
                [("k".to_string(), value.to_string())]
            );
        }
    }

    /// Random and garbage input: formatting either fails or yields a single header line whose
    /// first `;` ends the value; parsing never panics.
    #[test]
    fn fuzz_no_panic_no_injection() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: Vec<char> = "a=; \"\\\r\n\t\0,\u{e9}\u{7f}xyZ09!$%/".chars().collect();
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let split = (next() % (len as u64 + 1)) as usize;
            let cut = text
                .char_indices()
                .nth(split)
                .map_or(text.len(), |(i, _)| i);
            let (name, value) = text.split_at(cut);

            let options = CookieOptions::new().path(value).domain(name);
            let results = [
                set(name, value),
                format_set_cookie("n", "v", &options),
                format_del_cookie(name, Some(value), None),
            ];
            for header in results.into_iter().flatten() {
                assert!(!header.contains(['\r', '\n', '\0']), "{header:?}");
            }
            if let Ok(header) = set("n", value) {
                assert_eq!(header.matches(';').count(), 1, "{header:?}");
            }
            for (n, v) in parse_cookie_header(&text) {
                assert!(!n.is_empty() && !v.contains(['\r', '\n', ';']));
            }
        }
    }
}
