//! Route patterns in aiohttp's syntax: [`PathPattern`], the [`Params`] a match yields, and
//! reverse routing with [`PathPattern::url_for`].
//!
//! # Syntax
//!
//! - `/users/list`: plain text, matched exactly (a *static* pattern);
//! - `{name}`: one or more characters other than `/`, `{` and `}` (aiohttp's `[^{}/]+`);
//! - `{name:regex}`: a custom regex, such as `{id:\d+}` or `{tail:.*}` (which may span
//!   slashes); the regex may contain braces (`{year:\d{4}}`), escaped characters and classes;
//! - text and parameters mix freely inside a segment: `/files/{name}.{ext}`.
//!
//! A pattern starts with `/`, or is empty: the empty pattern matches only the empty path,
//! which is what a sub-application's route needs to answer its bare prefix (`""` under
//! `/admin` serves `/admin`, as aiohttp's `add_get('', ...)` does). Names are identifiers (`[_A-Za-z][_A-Za-z0-9]*`) and unique within
//! a pattern. Groups inside a custom regex, capturing or not, are allowed: parameters are found
//! by their position among the regex's groups, never by a user's group, so `{v:(a|b)c}` is
//! fine. A custom regex must be a complete regex on its own (`a)(b` is rejected), and two
//! parameters must not use the same named group.
//!
//! # How a request path is compared
//!
//! Patterns are written in decoded form (`/café`, `/a b`), and a request path arrives
//! percent-encoded (`/caf%C3%A9`). Like aiohttp (which matches against yarl's `path_safe`),
//! the router first *normalizes* the request path: every escape is decoded except `%2F` and
//! `%25`, which stay encoded (in upper case) so that an encoded slash never splits segments
//! and a decoded `%` can never be decoded a second time. A lone `%` that starts no valid escape
//! is read as a literal percent sign (`%25`), and escapes whose bytes are not UTF-8 stay
//! encoded. The pattern is matched, anchored at both ends, against that normalized text:
//!
//! - static text in the pattern compares with decoded request text, so `/caf%C3%A9` and
//!   `/café` both match the pattern `/café`; a `%` in the pattern is a literal percent sign,
//!   which a client sends as `%25`;
//! - a custom regex sees the same normalized text: `{name:[a-z ]+}` matches `a%20b`, and a
//!   slash or percent sign inside a value reaches the regex as `%2F` or `%25`;
//! - each captured value is then fully decoded: `%2F` becomes `/`, `%20` a space, and `+`
//!   stays `+` (paths have no form encoding);
//! - a value whose escapes do not decode to UTF-8 (`/users/%FF`) makes the pattern not match,
//!   so such a request ends in 404 rather than reaching a handler with altered text. Decoding
//!   lossily would map different paths onto the same value, which is a trap for handlers that
//!   use the value as a key or a file name.
//!
//! ```
//! use kettle::web::router::pattern::PathPattern;
//!
//! let pattern = PathPattern::parse(r"/users/{id:\d+}/files/{name}").unwrap();
//! let params = pattern.match_path("/users/42/files/a%20b%2Fc").unwrap();
//! assert_eq!(params.get("id"), Some("42"));
//! assert_eq!(params.get("name"), Some("a b/c"));
//!
//! let url = pattern.url_for(&[("id", "7"), ("name", "x/y")]).unwrap();
//! assert_eq!(url, "/users/7/files/x%2Fy");
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::Arc;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use regex::Regex;

use crate::web::urlencoded::percent_decode_path_segment;

/// aiohttp's regex for a parameter without one of its own.
const DEFAULT_PARAM_REGEX: &str = "[^{}/]+";

/// Bytes a parameter value may carry unencoded in a path: RFC 3986's `pchar` minus `/`
/// (unreserved, sub-delims, `:` and `@`), the same set yarl leaves alone.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// [`PATH_VALUE`] plus `/`: for static text and for values whose regex accepts a slash.
const PATH_TEXT: &AsciiSet = &PATH_VALUE.remove(b'/');

/// A parsed, compiled route pattern such as `/users/{id:\d+}`.
///
/// See the [module documentation](self) for the syntax and for how request paths are
/// decoded before matching. Parsing compiles the regex once, so keep the pattern rather than
/// parsing per request; cloning is cheap (the compiled regex is shared).
#[derive(Clone)]
pub struct PathPattern {
    source: Box<str>,
    pieces: Vec<Piece>,
    params: Vec<ParamSpec>,
    /// `None` for a static pattern, which compares strings instead of running a regex.
    matcher: Option<Regex>,
    /// The normalized form of the whole path for a static pattern, or of the text before the
    /// first parameter: a cheap `starts_with` rejects most non-matching paths without the regex.
    prefix: Box<str>,
}

#[derive(Clone, Debug)]
enum Piece {
    /// Literal text, decoded, exactly as written in the pattern.
    Text(Box<str>),
    /// Index into `PathPattern::params`.
    Param(usize),
}

#[derive(Clone, Debug)]
struct ParamSpec {
    /// Shared with every [`Params`] produced, so a match does not allocate names.
    name: Arc<str>,
    check: ParamCheck,
    /// This parameter's group number in the combined regex.
    group: usize,
}

#[derive(Clone, Debug)]
enum ParamCheck {
    /// `[^{}/]+`, checked without a regex.
    Default,
    /// The user's regex anchored at both ends, for validating `url_for` values.
    Custom { source: Box<str>, anchored: Regex },
}

impl ParamCheck {
    /// Whether a value in normalized form (see the module docs) is one this parameter matches.
    fn accepts(&self, normalized: &str) -> bool {
        match self {
            ParamCheck::Default => !normalized.is_empty() && !normalized.contains(['{', '}', '/']),
            ParamCheck::Custom { anchored, .. } => anchored.is_match(normalized),
        }
    }

    fn source(&self) -> &str {
        match self {
            ParamCheck::Default => DEFAULT_PARAM_REGEX,
            ParamCheck::Custom { source, .. } => source,
        }
    }
}

impl PathPattern {
    /// Parses and compiles a pattern, or explains what is wrong with it.
    ///
    /// ```
    /// use kettle::web::router::pattern::PathPattern;
    ///
    /// assert!(PathPattern::parse("/archive/{year:\\d{4}}/{slug}").is_ok());
    ///
    /// let err = PathPattern::parse("/users/{id").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid route pattern \"/users/{id\": the '{' at byte 7 is never closed"
    /// );
    /// ```
    pub fn parse(pattern: &str) -> Result<PathPattern, PatternError> {
        let fail = |kind| PatternError {
            pattern: pattern.to_owned(),
            kind,
        };
        // The empty pattern is aiohttp's `add_get('', ...)`: in a sub-application it becomes
        // the prefix itself (`/admin`); at the top level no request path is empty.
        if !pattern.is_empty() && !pattern.starts_with('/') {
            return Err(fail(PatternErrorKind::MissingLeadingSlash));
        }
        // A raw control character cannot occur in a request path, and a newline could end a
        // `(?x)` comment inside a custom regex, letting it reach past its group.
        if let Some((at, _)) = pattern.char_indices().find(|(_, c)| c.is_control()) {
            return Err(fail(PatternErrorKind::ControlCharacter { at }));
        }

        let mut pieces = Vec::new();
        let mut raw_params: Vec<(&str, Option<&str>)> = Vec::new();
        let mut rest_start = 0;
        while let Some(offset) = pattern[rest_start..].find(['{', '}']) {
            let at = rest_start + offset;
            if at > rest_start {
                pieces.push(Piece::Text(pattern[rest_start..at].into()));
            }
            if pattern.as_bytes()[at] == b'}' {
                return Err(fail(PatternErrorKind::UnmatchedCloseBrace { at }));
            }
            let (name, regex, end) = split_param(pattern, at).map_err(fail)?;
            if raw_params.iter().any(|(seen, _)| *seen == name) {
                return Err(fail(PatternErrorKind::DuplicateName { name: name.into() }));
            }
            pieces.push(Piece::Param(raw_params.len()));
            raw_params.push((name, regex));
            rest_start = end;
        }
        if rest_start < pattern.len() {
            pieces.push(Piece::Text(pattern[rest_start..].into()));
        }

        let prefix: Box<str> = match pieces.first() {
            Some(Piece::Text(text)) => normalize_static(text).into(),
            _ => "".into(),
        };
        if raw_params.is_empty() {
            return Ok(PathPattern {
                source: pattern.into(),
                pieces,
                params: Vec::new(),
                matcher: None,
                prefix,
            });
        }

        let mut params = Vec::with_capacity(raw_params.len());
        for (name, regex) in &raw_params {
            let (check, user_groups) = match regex {
                None => (ParamCheck::Default, 0),
                Some(source) => compile_param_regex(name, source).map_err(fail)?,
            };
            params.push((
                ParamSpec {
                    name: Arc::from(*name),
                    check,
                    group: 0,
                },
                user_groups,
            ));
        }

        // Each parameter becomes one capturing group; its number is one past every group
        // opened before it, the user's own included.
        let mut combined = String::from("^");
        let mut next_group = 1;
        for piece in &pieces {
            match piece {
                Piece::Text(text) => combined.push_str(&regex::escape(&normalize_static(text))),
                Piece::Param(index) => {
                    let (spec, user_groups) = &mut params[*index];
                    combined.push('(');
                    combined.push_str(spec.check.source());
                    combined.push(')');
                    spec.group = next_group;
                    next_group += 1 + *user_groups;
                }
            }
        }
        combined.push('$');
        let matcher = Regex::new(&combined).map_err(|err| {
            fail(PatternErrorKind::CombinedRegex {
                message: err.to_string(),
            })
        })?;
        if matcher.captures_len() != next_group {
            return Err(fail(PatternErrorKind::CombinedRegex {
                message: "a parameter's regex changed the group layout".into(),
            }));
        }

        Ok(PathPattern {
            source: pattern.into(),
            pieces,
            params: params.into_iter().map(|(spec, _)| spec).collect(),
            matcher: Some(matcher),
            prefix,
        })
    }

    /// The pattern exactly as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern has no parameters, so that it matches one path only.
    pub fn is_static(&self) -> bool {
        self.matcher.is_none()
    }

    /// For a static pattern, the one (decoded) path it matches; `None` for a dynamic one.
    pub fn static_path(&self) -> Option<&str> {
        self.is_static().then_some(&*self.source)
    }

    /// The parameter names, in the order they appear.
    pub fn param_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.params.iter().map(|p| &*p.name)
    }

    /// Matches a request path as received (percent-encoded, without the query string).
    ///
    /// Returns the decoded parameters, empty for a static pattern, or `None` when the path does
    /// not match (including when a value does not decode to UTF-8).
    pub fn match_path(&self, raw_path: &str) -> Option<Params> {
        self.match_normalized(&normalize_path(raw_path))
    }

    /// [`match_path`](Self::match_path) on a path already passed through [`normalize_path`],
    /// so that a table trying many patterns normalizes once.
    pub(crate) fn match_normalized(&self, path: &str) -> Option<Params> {
        let Some(matcher) = &self.matcher else {
            return (path == &*self.prefix).then(Params::new);
        };
        if !path.starts_with(&*self.prefix) {
            return None;
        }
        let captures = matcher.captures(path)?;
        let mut entries = Vec::with_capacity(self.params.len());
        for spec in &self.params {
            let raw = captures.get(spec.group)?.as_str();
            let value = percent_decode_path_segment(raw).ok()?.into_owned();
            entries.push((Arc::clone(&spec.name), value));
        }
        Some(Params { entries })
    }

    /// The normalized text a static pattern matches, for hashing; meaningless for a dynamic one.
    pub(crate) fn static_key(&self) -> &str {
        &self.prefix
    }

    /// Builds the (percent-encoded) path this pattern matches for the given parameter values.
    ///
    /// Values are given decoded. A `/` in a value is kept as a separator when the parameter's
    /// regex accepts it there (as `{tail:.*}` does) and sent as `%2F` otherwise; other
    /// characters are encoded as a path needs. Each value must be one its parameter's regex
    /// matches, so the URL leads back to this route: an empty value for `{name}`, or `x` for
    /// `{id:\d+}`, is an error. Only each value is checked; a pattern whose parameters are
    /// ambiguous together (`/{a:.*}/{b:.*}`) may still route the result differently.
    ///
    /// The order of `params` does not matter; every parameter needs exactly one value, and a
    /// name the pattern does not have is an error rather than being ignored, because it is
    /// usually a typo.
    pub fn url_for(&self, params: &[(&str, &str)]) -> Result<String, UrlForError> {
        for (i, (name, _)) in params.iter().enumerate() {
            if !self.params.iter().any(|spec| &*spec.name == *name) {
                return Err(UrlForError::UnknownParam {
                    name: (*name).into(),
                });
            }
            if params[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(UrlForError::DuplicateParam {
                    name: (*name).into(),
                });
            }
        }

        let mut url = String::with_capacity(self.source.len() + 16);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => push_encoded(&mut url, text, PATH_TEXT),
                Piece::Param(index) => {
                    let spec = &self.params[*index];
                    let value = params
                        .iter()
                        .find(|(name, _)| *name == &*spec.name)
                        .map(|(_, value)| *value)
                        .ok_or_else(|| UrlForError::MissingParam {
                            name: spec.name.to_string(),
                        })?;
                    let keep_slash =
                        value.contains('/') && spec.check.accepts(&normalize_value(value, true));
                    if !keep_slash && !spec.check.accepts(&normalize_value(value, false)) {
                        return Err(UrlForError::InvalidValue {
                            name: spec.name.to_string(),
                            value: value.into(),
                            regex: spec.check.source().into(),
                        });
                    }
                    push_encoded(
                        &mut url,
                        value,
                        if keep_slash { PATH_TEXT } else { PATH_VALUE },
                    );
                }
            }
        }
        Ok(url)
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PathPattern").field(&self.source).finish()
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Two patterns are equal when written identically, which is when they route identically.
impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for PathPattern {}

impl FromStr for PathPattern {
    type Err = PatternError;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        PathPattern::parse(pattern)
    }
}

/// Splits the parameter whose `{` is at `open` into its name, its regex (if any) and the index
/// just past its closing `}`.
fn split_param(
    pattern: &str,
    open: usize,
) -> Result<(&str, Option<&str>, usize), PatternErrorKind> {
    let bytes = pattern.as_bytes();
    let name_start = open + 1;
    let name_end = match bytes[name_start..]
        .iter()
        .position(|&b| b == b':' || b == b'}')
    {
        Some(offset) => name_start + offset,
        None => return Err(PatternErrorKind::UnclosedBrace { at: open }),
    };
    let name = &pattern[name_start..name_end];
    if name.is_empty() {
        return Err(PatternErrorKind::EmptyName { at: open });
    }
    if !is_identifier(name) {
        return Err(PatternErrorKind::InvalidName { name: name.into() });
    }
    if bytes[name_end] == b'}' {
        return Ok((name, None, name_end + 1));
    }

    // Find the `}` that closes the parameter: braces inside the regex nest (`\d{2,4}`), but
    // not when escaped (`\{`) or inside a character class (`[{}]`).
    let regex_start = name_end + 1;
    let mut depth = 0usize;
    let mut class_depth = 0usize;
    let mut i = regex_start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'[' => {
                class_depth += 1;
                i += 1;
                // `]` right after `[` or `[^` is a literal, not the end of the class.
                if bytes.get(i) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i) == Some(&b']') {
                    i += 1;
                }
                continue;
            }
            b']' if class_depth > 0 => class_depth -= 1,
            b'{' if class_depth == 0 => depth += 1,
            b'}' if class_depth == 0 => {
                if depth == 0 {
                    let regex = &pattern[regex_start..i];
                    if regex.is_empty() {
                        return Err(PatternErrorKind::EmptyRegex { name: name.into() });
                    }
                    return Ok((name, Some(regex), i + 1));
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    Err(PatternErrorKind::UnclosedBrace { at: open })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Validates a parameter's regex and returns its `url_for` check and how many groups it opens.
fn compile_param_regex(name: &str, source: &str) -> Result<(ParamCheck, usize), PatternErrorKind> {
    let invalid = |err: regex::Error| PatternErrorKind::InvalidRegex {
        name: name.into(),
        message: err.to_string(),
    };
    // Compiled bare first: only a regex that is complete by itself cannot close the group the
    // router wraps it in (`a)(b` would compile once wrapped, with a different meaning).
    let bare = Regex::new(source).map_err(invalid)?;
    let anchored = Regex::new(&format!("^(?:{source})$")).map_err(invalid)?;
    Ok((
        ParamCheck::Custom {
            source: source.into(),
            anchored,
        },
        bare.captures_len() - 1,
    ))
}

/// Static pattern text in normalized form: a literal `%` is what a request sends as `%25`.
fn normalize_static(text: &str) -> Cow<'_, str> {
    if text.contains('%') {
        Cow::Owned(text.replace('%', "%25"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A decoded `url_for` value in normalized form, with `/` either kept or encoded.
fn normalize_value(value: &str, keep_slash: bool) -> Cow<'_, str> {
    if !value.contains('%') && (keep_slash || !value.contains('/')) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' if !keep_slash => out.push_str("%2F"),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn push_encoded(out: &mut String, text: &str, set: &'static AsciiSet) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{}", utf8_percent_encode(text, set));
}

/// Brings a request path into the form patterns are matched against (see the module docs):
/// every escape decoded except `%2F` and `%25`, a stray `%` read as `%25`, and bytes that are
/// not UTF-8 left as upper-case escapes. Borrows when the path has no `%`, the common case.
pub(crate) fn normalize_path(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            decoded.push(bytes[i]);
            i += 1;
            continue;
        }
        let escaped = match (hex_value(bytes.get(i + 1)), hex_value(bytes.get(i + 2))) {
            (Some(high), Some(low)) => Some((high << 4) | low),
            _ => None,
        };
        match escaped {
            Some(b'/') => decoded.extend_from_slice(b"%2F"),
            Some(b'%') => decoded.extend_from_slice(b"%25"),
            Some(byte) => decoded.push(byte),
            None => {
                decoded.extend_from_slice(b"%25");
                i += 1;
                continue;
            }
        }
        i += 3;
    }
    match String::from_utf8(decoded) {
        Ok(text) => Cow::Owned(text),
        Err(err) => {
            // Raw input is UTF-8, so the bad bytes all came from escapes: put them back.
            let bytes = err.into_bytes();
            let mut text = String::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                for byte in chunk.invalid() {
                    let _ = write!(text, "%{byte:02X}");
                }
            }
            Cow::Owned(text)
        }
    }
}

fn hex_value(byte: Option<&u8>) -> Option<u8> {
    match *byte? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The parameters a matched path yielded, in pattern order (aiohttp's `match_info`).
///
/// Values are percent-decoded. An empty `Params` (every static route) allocates nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    entries: Vec<(Arc<str>, String)>,
}

impl Params {
    /// No parameters; does not allocate.
    pub fn new() -> Params {
        Params {
            entries: Vec::new(),
        }
    }

    /// The value of parameter `name`, if the pattern has one by that name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(name, value)` pairs in the order the parameters appear in the pattern.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none, as for a static route.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Why a route pattern was rejected; its `Display` names the pattern and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pattern: String,
    kind: PatternErrorKind,
}

impl PatternError {
    /// The pattern as it was given.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// What is wrong with it, for callers that branch on the cause.
    pub fn kind(&self) -> &PatternErrorKind {
        &self.kind
    }
}

/// The specific problem behind a [`PatternError`]. Positions are byte offsets in the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatternErrorKind {
    /// The pattern is neither empty nor starts with `/`.
    MissingLeadingSlash,
    /// A control character (newline, tab, ...), which no request path can contain.
    ControlCharacter {
        /// Where it is.
        at: usize,
    },
    /// A `{` with no matching `}`.
    UnclosedBrace {
        /// Where the `{` is.
        at: usize,
    },
    /// A `}` outside any parameter.
    UnmatchedCloseBrace {
        /// Where the `}` is.
        at: usize,
    },
    /// `{}` or `{:regex}`: a parameter without a name.
    EmptyName {
        /// Where the `{` is.
        at: usize,
    },
    /// A name that is not an identifier (`[_A-Za-z][_A-Za-z0-9]*`).
    InvalidName {
        /// The name as written.
        name: String,
    },
    /// Two parameters with the same name.
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// `{name:}`: a colon with no regex after it.
    EmptyRegex {
        /// The parameter.
        name: String,
    },
    /// A parameter's regex does not compile on its own.
    InvalidRegex {
        /// The parameter.
        name: String,
        /// The regex engine's explanation.
        message: String,
    },
    /// The parameters' regexes compile alone but not together, e.g. two of them use the same
    /// named group.
    CombinedRegex {
        /// The regex engine's explanation.
        message: String,
    },
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid route pattern {:?}: ", self.pattern)?;
        match &self.kind {
            PatternErrorKind::MissingLeadingSlash => f.write_str("it must start with '/'"),
            PatternErrorKind::ControlCharacter { at } => {
                write!(f, "control character at byte {at}")
            }
            PatternErrorKind::UnclosedBrace { at } => {
                write!(f, "the '{{' at byte {at} is never closed")
            }
            PatternErrorKind::UnmatchedCloseBrace { at } => {
                write!(f, "the '}}' at byte {at} closes no parameter")
            }
            PatternErrorKind::EmptyName { at } => {
                write!(f, "the parameter at byte {at} has no name")
            }
            PatternErrorKind::InvalidName { name } => write!(
                f,
                "parameter name {name:?} is not an identifier ([_A-Za-z][_A-Za-z0-9]*)"
            ),
            PatternErrorKind::DuplicateName { name } => {
                write!(f, "parameter {name:?} appears more than once")
            }
            PatternErrorKind::EmptyRegex { name } => {
                write!(f, "parameter {name:?} has an empty regex after ':'")
            }
            PatternErrorKind::InvalidRegex { name, message } => {
                write!(f, "the regex of parameter {name:?} is invalid: {message}")
            }
            PatternErrorKind::CombinedRegex { message } => {
                write!(f, "the parameters' regexes do not combine: {message}")
            }
        }
    }
}

impl std::error::Error for PatternError {}

/// Why a URL could not be built from a route and parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlForError {
    /// No route has this name (from [`RouteTable::url_for`](super::table::RouteTable::url_for)).
    UnknownRoute {
        /// The name asked for.
        name: String,
    },
    /// The pattern has a parameter no value was given for.
    MissingParam {
        /// The parameter.
        name: String,
    },
    /// A value was given for a parameter the pattern does not have.
    UnknownParam {
        /// The name given.
        name: String,
    },
    /// Two values were given for one parameter.
    DuplicateParam {
        /// The parameter.
        name: String,
    },
    /// The value would not match the parameter's regex, so the URL would not route back here.
    InvalidValue {
        /// The parameter.
        name: String,
        /// The value given.
        value: String,
        /// The regex it had to match.
        regex: String,
    },
}

impl fmt::Display for UrlForError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlForError::UnknownRoute { name } => write!(f, "no route is named {name:?}"),
            UrlForError::MissingParam { name } => {
                write!(f, "no value given for parameter {name:?}")
            }
            UrlForError::UnknownParam { name } => {
                write!(f, "the route has no parameter {name:?}")
            }
            UrlForError::DuplicateParam { name } => {
                write!(f, "more than one value given for parameter {name:?}")
            }
            UrlForError::InvalidValue { name, value, regex } => write!(
                f,
                "value {value:?} for parameter {name:?} does not match its regex {regex:?}"
            ),
        }
    }
}

impl std::error::Error for UrlForError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(source: &str) -> PathPattern {
        PathPattern::parse(source).unwrap_or_else(|err| panic!("{err}"))
    }

    fn matched(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        pat(pattern).match_path(path).map(|params| {
            params
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        })
    }

    fn one(pattern: &str, path: &str) -> Option<String> {
        pat(pattern)
            .match_path(path)
            .map(|params| params.iter().next().unwrap().1.to_owned())
    }

    fn error(pattern: &str) -> PatternError {
        PathPattern::parse(pattern).expect_err(pattern)
    }

    #[test]
    fn static_patterns_match_exactly() {
        let p = pat("/users/list");
        assert!(p.is_static());
        assert_eq!(p.static_path(), Some("/users/list"));
        assert_eq!(p.param_names().len(), 0);
        assert_eq!(p.match_path("/users/list"), Some(Params::new()));
        assert_eq!(p.match_path("/users/list/"), None);
        assert_eq!(p.match_path("/users"), None);
        assert_eq!(p.match_path("/users/lists"), None);
        assert_eq!(
            p.match_path("/users%2Flist"),
            None,
            "%2F is not a separator"
        );
        assert!(pat("/").match_path("/").is_some());
        assert!(pat("/").match_path("").is_none());
    }

    #[test]
    fn trailing_slash_is_significant() {
        assert!(pat("/a").match_path("/a/").is_none());
        assert!(pat("/a/").match_path("/a").is_none());
        assert!(pat("/a/").match_path("/a/").is_some());
        assert!(pat("/a/{b}").match_path("/a/x/").is_none());
        assert!(pat("/a/{b}/").match_path("/a/x/").is_some());
    }

    #[test]
    fn plain_parameter_is_one_nonempty_segment() {
        assert_eq!(one("/users/{name}", "/users/lao"), Some("lao".into()));
        assert_eq!(one("/users/{name}", "/users/"), None);
        assert_eq!(one("/users/{name}", "/users/a/b"), None);
        assert_eq!(
            one("/users/{name}", "/users/a{b"),
            None,
            "aiohttp excludes braces"
        );
        assert!(!pat("/users/{name}").is_static());
        assert_eq!(pat("/users/{name}").static_path(), None);
    }

    #[test]
    fn custom_regexes() {
        assert_eq!(one(r"/n/{id:\d+}", "/n/123"), Some("123".into()));
        assert_eq!(one(r"/n/{id:\d+}", "/n/12a"), None);
        assert_eq!(
            one("/static/{tail:.*}", "/static/css/site.css"),
            Some("css/site.css".into())
        );
        assert_eq!(one("/static/{tail:.*}", "/static/"), Some("".into()));
        assert_eq!(
            one("/{v:(a|b)c}", "/bc"),
            Some("bc".into()),
            "user groups are fine"
        );
        assert_eq!(
            matched("/{x:(?:a)(b)}/{y:(?P<inner>z+)}/{w}", "/ab/zz/q"),
            Some(vec![
                ("x".into(), "ab".into()),
                ("y".into(), "zz".into()),
                ("w".into(), "q".into())
            ])
        );
        // Alternation inside a parameter stays inside it.
        assert_eq!(one("/{v:a|b}/end", "/b/end"), Some("b".into()));
        assert_eq!(one("/{v:a|b}/end", "/b"), None);
    }

    #[test]
    fn regexes_with_braces_escapes_and_classes() {
        assert_eq!(one(r"/y/{year:\d{4}}", "/y/2026"), Some("2026".into()));
        assert_eq!(one(r"/y/{year:\d{4}}", "/y/202"), None);
        assert_eq!(one(r"/c/{code:[A-Z]{2,3}}", "/c/ABC"), Some("ABC".into()));
        assert_eq!(one(r"/b/{v:\{[a-z]+\}}", "/b/{ok}"), Some("{ok}".into()));
        assert_eq!(one(r"/b/{v:[{}]+}", "/b/}{"), Some("}{".into()));
        assert_eq!(one(r"/b/{v:[]x]+}", "/b/]x]"), Some("]x]".into()));
        assert_eq!(
            matched(r"/{a:x{1,2}}-{b:[^}]+}", "/xx-yy"),
            Some(vec![("a".into(), "xx".into()), ("b".into(), "yy".into())])
        );
    }

    #[test]
    fn mixed_text_and_parameters_in_a_segment() {
        assert_eq!(
            matched("/files/{name}.{ext}", "/files/report.pdf"),
            Some(vec![
                ("name".into(), "report".into()),
                ("ext".into(), "pdf".into())
            ])
        );
        assert_eq!(
            matched(r"/v{major:\d+}.{minor:\d+}/api", "/v2.10/api"),
            Some(vec![
                ("major".into(), "2".into()),
                ("minor".into(), "10".into())
            ])
        );
        assert_eq!(matched("/files/{name}.{ext}", "/files/report"), None);
    }

    #[test]
    fn parameter_values_are_percent_decoded() {
        assert_eq!(one("/u/{name}", "/u/a%20b"), Some("a b".into()));
        assert_eq!(
            one("/u/{name}", "/u/a+b"),
            Some("a+b".into()),
            "+ is not a space"
        );
        assert_eq!(one("/u/{name}", "/u/a%2Bb"), Some("a+b".into()));
        assert_eq!(one("/u/{name}", "/u/a%2Fb"), Some("a/b".into()));
        assert_eq!(one("/u/{name}", "/u/a%2fb"), Some("a/b".into()));
        assert_eq!(one("/u/{name}", "/u/%E8%8C%B6"), Some("茶".into()));
        assert_eq!(one("/u/{name}", "/u/100%25"), Some("100%".into()));
        assert_eq!(
            one("/u/{name}", "/u/%252F"),
            Some("%2F".into()),
            "decoded exactly once"
        );
        assert_eq!(
            one("/u/{name}", "/u/50%"),
            Some("50%".into()),
            "stray % is literal"
        );
        assert_eq!(one("/u/{name}", "/u/%zz"), Some("%zz".into()));
        assert_eq!(one("/t/{tail:.*}", "/t/a%2Fb/c"), Some("a/b/c".into()));
        // Regexes see decoded text, with / and % still encoded.
        assert_eq!(one("/r/{v:[a-z ]+}", "/r/a%20b"), Some("a b".into()));
        assert_eq!(one("/r/{v:[^/]+}", "/r/a%2Fb"), Some("a/b".into()));
    }

    #[test]
    fn values_that_are_not_utf8_do_not_match() {
        assert_eq!(one("/u/{name}", "/u/%FF"), None);
        assert_eq!(one("/u/{name}", "/u/caf%C3"), None);
        assert_eq!(one("/t/{tail:.*}", "/t/ok/%C3%28"), None);
        assert_eq!(pat("/u/x").match_path("/u/%FF"), None);
    }

    #[test]
    fn static_text_compares_decoded() {
        let p = pat("/café/menu");
        assert!(p.match_path("/caf%C3%A9/menu").is_some());
        assert!(p.match_path("/caf%c3%a9/menu").is_some());
        assert!(p.match_path("/café/menu").is_some());
        assert!(p.match_path("/caf%C3%A9%2Fmenu").is_none());
        assert!(pat("/a b").match_path("/a%20b").is_some());
        assert!(pat("/a+b").match_path("/a+b").is_some());
        assert!(pat("/a+b").match_path("/a%20b").is_none());
        assert_eq!(
            one("/café/{item}", "/caf%C3%A9/th%C3%A9"),
            Some("thé".into())
        );
        // A literal percent sign in a pattern is sent as %25 (or as a stray %).
        let p = pat("/100%/{x}");
        assert!(p.match_path("/100%25/y").is_some());
        assert!(p.match_path("/100%/y").is_some());
        assert!(p.match_path("/100/y").is_none());
        assert!(pat("/100%").match_path("/100%25").is_some());
    }

    #[test]
    fn normalization() {
        assert!(matches!(normalize_path("/plain/path"), Cow::Borrowed(_)));
        assert_eq!(normalize_path("/a%20b%2f%2Fc%25%41"), "/a b%2F%2Fc%25A");
        assert_eq!(normalize_path("/%E8%8C%B6%ff"), "/茶%FF");
        assert_eq!(normalize_path("/%"), "/%25");
        assert_eq!(normalize_path("/%4"), "/%254");
        assert_eq!(normalize_path("/%C3é"), "/%C3é");
    }

    #[test]
    fn empty_pattern_matches_only_the_empty_path() {
        let empty = pat("");
        assert!(empty.is_static());
        assert_eq!(empty.match_path(""), Some(Params::new()));
        assert!(empty.match_path("/").is_none());
        assert_eq!(empty.url_for(&[]).unwrap(), "");
    }

    #[test]
    fn bad_patterns_are_explained() {
        let cases: &[(&str, PatternErrorKind, &str)] = &[
            (
                "users",
                PatternErrorKind::MissingLeadingSlash,
                "it must start with '/'",
            ),
            (
                "/a/{b",
                PatternErrorKind::UnclosedBrace { at: 3 },
                "the '{' at byte 3 is never closed",
            ),
            (
                r"/a/{b:\d{2}",
                PatternErrorKind::UnclosedBrace { at: 3 },
                "never closed",
            ),
            (
                "/a}",
                PatternErrorKind::UnmatchedCloseBrace { at: 2 },
                "the '}' at byte 2 closes no parameter",
            ),
            ("/{}", PatternErrorKind::EmptyName { at: 1 }, "has no name"),
            (
                "/{:x}",
                PatternErrorKind::EmptyName { at: 1 },
                "has no name",
            ),
            (
                "/{1abc}",
                PatternErrorKind::InvalidName {
                    name: "1abc".into(),
                },
                "\"1abc\" is not an identifier",
            ),
            (
                "/{a-b}",
                PatternErrorKind::InvalidName { name: "a-b".into() },
                "not an identifier",
            ),
            (
                "/{a{b}}",
                PatternErrorKind::InvalidName { name: "a{b".into() },
                "not an identifier",
            ),
            (
                "/{id}/{id}",
                PatternErrorKind::DuplicateName { name: "id".into() },
                "parameter \"id\" appears more than once",
            ),
            (
                "/{id:}",
                PatternErrorKind::EmptyRegex { name: "id".into() },
                "empty regex",
            ),
            (
                "/a\nb",
                PatternErrorKind::ControlCharacter { at: 2 },
                "control character at byte 2",
            ),
        ];
        for (pattern, kind, message) in cases {
            let err = error(pattern);
            assert_eq!(err.kind(), kind, "{pattern:?}");
            assert_eq!(err.pattern(), *pattern);
            let text = err.to_string();
            assert!(text.contains(message), "{pattern:?}: {text}");
            assert!(text.starts_with("invalid route pattern"), "{text}");
        }
    }

    #[test]
    fn bad_regexes_are_explained() {
        let err = error("/{id:(}");
        assert!(
            matches!(err.kind(), PatternErrorKind::InvalidRegex { name, .. } if name == "id"),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .contains("the regex of parameter \"id\" is invalid"));

        // Would compile once wrapped in a group, but is not a regex by itself.
        let err = error("/{x:a)(b}");
        assert!(
            matches!(err.kind(), PatternErrorKind::InvalidRegex { .. }),
            "{err:?}"
        );

        let err = error("/{a:(?P<g>x)}/{b:(?P<g>y)}");
        assert!(
            matches!(err.kind(), PatternErrorKind::CombinedRegex { .. }),
            "{err:?}"
        );

        // A verbose-mode comment would swallow whatever the router puts after the regex.
        let err = error("/{a:(?x)x#}/end");
        assert!(
            matches!(err.kind(), PatternErrorKind::InvalidRegex { name, .. } if name == "a"),
            "{err:?}"
        );
    }

    #[test]
    fn regex_flags_stay_inside_their_parameter() {
        // If `(?x)` leaked out of the group, the space in " c" would be ignored.
        let p = pat("/{a:(?x) a b } c");
        assert_eq!(p.match_path("/ab%20c").unwrap().get("a"), Some("ab"));
        assert!(p.match_path("/abc").is_none());
    }

    #[test]
    fn url_for_builds_encoded_paths() {
        let p = pat(r"/users/{id:\d+}/files/{name}");
        assert_eq!(
            p.url_for(&[("name", "a b/c?"), ("id", "7")]).unwrap(),
            "/users/7/files/a%20b%2Fc%3F"
        );
        assert_eq!(
            pat("/café/{x}").url_for(&[("x", "thé")]).unwrap(),
            "/caf%C3%A9/th%C3%A9"
        );
        assert_eq!(
            pat("/s/{tail:.*}").url_for(&[("tail", "a/b c")]).unwrap(),
            "/s/a/b%20c"
        );
        assert_eq!(pat("/s/{tail:.*}").url_for(&[("tail", "")]).unwrap(), "/s/");
        assert_eq!(
            pat("/p/{x}").url_for(&[("x", "a+b%")]).unwrap(),
            "/p/a+b%25"
        );
        assert_eq!(pat("/100%").url_for(&[]).unwrap(), "/100%25");
        assert_eq!(pat("/list").url_for(&[]).unwrap(), "/list");
    }

    #[test]
    fn url_for_errors() {
        let p = pat(r"/users/{id:\d+}");
        assert_eq!(
            p.url_for(&[]),
            Err(UrlForError::MissingParam { name: "id".into() })
        );
        assert_eq!(
            p.url_for(&[("id", "1"), ("page", "2")]),
            Err(UrlForError::UnknownParam {
                name: "page".into()
            })
        );
        assert_eq!(
            p.url_for(&[("id", "1"), ("id", "2")]),
            Err(UrlForError::DuplicateParam { name: "id".into() })
        );
        let err = p.url_for(&[("id", "x")]).unwrap_err();
        assert_eq!(
            err,
            UrlForError::InvalidValue {
                name: "id".into(),
                value: "x".into(),
                regex: r"\d+".into()
            }
        );
        assert_eq!(
            err.to_string(),
            r#"value "x" for parameter "id" does not match its regex "\\d+""#
        );
        assert!(matches!(
            pat("/{x}").url_for(&[("x", "")]),
            Err(UrlForError::InvalidValue { .. })
        ));
        assert!(matches!(
            pat("/{x}").url_for(&[("x", "{")]),
            Err(UrlForError::InvalidValue { .. })
        ));
        assert!(matches!(
            pat("/list").url_for(&[("x", "1")]),
            Err(UrlForError::UnknownParam { .. })
        ));
    }

    #[test]
    fn url_for_round_trips_through_match_path() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("/u/{name}", &[("name", "plain")]),
            ("/u/{name}", &[("name", "a b/c%d+e?f#g")]),
            ("/u/{name}", &[("name", "水开了 ☕")]),
            ("/u/{name}", &[("name", "%2F")]),
            ("/t/{tail:.*}", &[("tail", "dir/sub dir/file.txt")]),
            ("/f/{name}.{ext}", &[("name", "re port"), ("ext", "tar")]),
            (
                r"/y/{year:\d{4}}/{slug:[a-z-]+}",
                &[("year", "2026"), ("slug", "hello-world")],
            ),
            ("/r/{v:[a-z ]+}", &[("v", "a b")]),
            ("/café/{x}", &[("x", "thé")]),
        ];
        for (pattern, params) in cases {
            let p = pat(pattern);
            let url = p.url_for(params).unwrap();
            let back = p
                .match_path(&url)
                .unwrap_or_else(|| panic!("{pattern} {url}"));
            let back: Vec<(&str, &str)> = back.iter().collect();
            assert_eq!(&back, params, "{pattern} via {url}");
        }
    }

    #[test]
    fn params_accessors() {
        let params = pat("/{a}/{b}").match_path("/x/y").unwrap();
        assert_eq!(params.len(), 2);
        assert!(!params.is_empty());
        assert_eq!(params.get("b"), Some("y"));
        assert_eq!(params.get("c"), None);
        assert_eq!(format!("{params:?}"), r#"{"a": "x", "b": "y"}"#);
        assert!(Params::new().is_empty());
    }

    #[test]
    fn pattern_traits() {
        let p: PathPattern = "/a/{b}".parse().unwrap();
        assert_eq!(p.as_str(), "/a/{b}");
        assert_eq!(p.to_string(), "/a/{b}");
        assert_eq!(format!("{p:?}"), r#"PathPattern("/a/{b}")"#);
        assert_eq!(p, p.clone());
        assert_eq!(p.param_names().collect::<Vec<_>>(), ["b"]);
        assert_eq!(pat("/100%").static_key(), "/100%25");
    }
}
