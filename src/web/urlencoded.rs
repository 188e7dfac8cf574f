//! `application/x-www-form-urlencoded`: query strings, form bodies, and path-parameter decoding.
//!
//! Query strings and urlencoded form bodies share one format: `&`-separated `key=value` pairs,
//! percent-encoded, with `+` standing for a space. [`parse`] reads it into a [`MultiDict`] the
//! way aiohttp (through yarl and `urllib.parse.parse_qsl(keep_blank_values=True)`) does, and
//! [`encode`] writes it the way aiohttp's client encodes a form (Python's `urlencode`).
//!
//! Path segments are percent-encoded too, but there `+` is an ordinary character, so the router
//! decodes its parameters with [`percent_decode_path_segment`] instead.

use std::borrow::Cow;
use std::str::Utf8Error;

use percent_encoding::{percent_decode, percent_decode_str, utf8_percent_encode, AsciiSet};

use super::multidict::MultiDict;

/// Bytes [`encode`] leaves as they are: ASCII letters and digits plus `-._~`, Python's
/// `quote_plus` set, so a form encoded here is byte-identical to one aiohttp's client sends.
/// Space is in the set only so that [`encode`] can turn it into `+` itself.
const FORM_COMPONENT: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Parses a query string or urlencoded form body into its pairs, in order.
///
/// - pairs are separated by `&` only; `;` is data, as in yarl and Python 3.10+;
/// - empty pieces (`a=1&&b=2`, a trailing `&`) are skipped;
/// - a piece without `=` is a key with an empty value; the first `=` splits, later ones are
///   part of the value;
/// - `+` decodes to a space, then `%XX` escapes are decoded; a malformed escape such as `%zz`
///   stays literally;
/// - bytes that are not valid UTF-8 after decoding become U+FFFD rather than failing the whole
///   request, because one mangled field should not make the others unreadable.
///
/// The input is the part after `?` (without the `?`), or the whole body.
///
/// ```
/// use kettle::web::urlencoded::parse;
///
/// let form = parse("name=Lao+Zhang&tag=tea&tag=%E8%8C%B6&flag");
/// assert_eq!(form.get("name"), Some("Lao Zhang"));
/// assert_eq!(form.get_all("tag").collect::<Vec<_>>(), ["tea", "茶"]);
/// assert_eq!(form.get("flag"), Some(""));
/// ```
pub fn parse(input: impl AsRef<[u8]>) -> MultiDict {
    let input = input.as_ref();
    let mut pairs = MultiDict::new();
    for piece in input.split(|&b| b == b'&') {
        if piece.is_empty() {
            continue;
        }
        let (key, value) = match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &[][..]),
        };
        pairs.add(decode_form_component(key), decode_form_component(value));
    }
    pairs
}

/// Decodes one key or value of a form: `+` first, so that an encoded `%2B` stays a plus.
fn decode_form_component(raw: &[u8]) -> String {
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_decode(&spaced).decode_utf8_lossy().into_owned()
    } else {
        percent_decode(raw).decode_utf8_lossy().into_owned()
    }
}

/// Percent-decodes one path parameter value; `+` stays a plus, as paths have no form encoding.
///
/// Returns the input borrowed when it holds no escape. Fails when the decoded bytes are not
/// UTF-8: the router treats that as "this route does not match" rather than guessing, so
/// handlers only ever see text that is exactly what the client encoded.
///
/// ```
/// use kettle::web::urlencoded::percent_decode_path_segment;
///
/// assert_eq!(percent_decode_path_segment("a%20b+c%2Fd").unwrap(), "a b+c/d");
/// assert!(percent_decode_path_segment("%FF").is_err());
/// ```
pub fn percent_decode_path_segment(segment: &str) -> Result<Cow<'_, str>, Utf8Error> {
    percent_decode_str(segment).decode_utf8()
}

/// Encodes pairs as `application/x-www-form-urlencoded` (also fine as a query string).
///
/// Spaces become `+`; everything but ASCII letters, digits and `-._~` is percent-encoded as
/// UTF-8, matching what Python's `urlencode` (and so aiohttp's client) produces. [`parse`]
/// reverses it exactly.
///
/// ```
/// use kettle::web::urlencoded::{encode, parse};
///
/// let body = encode([("q", "tea & cake"), ("lang", "zh-Hans")]);
/// assert_eq!(body, "q=tea+%26+cake&lang=zh-Hans");
/// assert_eq!(parse(&body).get("q"), Some("tea & cake"));
/// ```
pub fn encode<I, K, V>(pairs: I) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        encode_component_into(key.as_ref(), &mut out);
        out.push('=');
        encode_component_into(value.as_ref(), &mut out);
    }
    out
}

/// Appends one form-encoded key or value to `out`.
fn encode_component_into(text: &str, out: &mut String) {
    use std::fmt::Write;
    for (i, run) in text.split(' ').enumerate() {
        if i > 0 {
            out.push('+');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{}", utf8_percent_encode(run, FORM_COMPONENT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(md: &MultiDict) -> Vec<(&str, &str)> {
        md.iter().collect()
    }

    #[test]
    fn parses_pairs_in_order_with_repeats() {
        let md = parse("a=1&b=2&a=3");
        assert_eq!(pairs(&md), [("a", "1"), ("b", "2"), ("a", "3")]);
    }

    #[test]
    fn plus_is_space_and_escapes_decode() {
        let md = parse("q=hello+world&x=%2B1&y=a%20b&z=caf%C3%A9&k+ey=v");
        assert_eq!(md.get("q"), Some("hello world"));
        assert_eq!(md.get("x"), Some("+1"), "an encoded plus is a plus");
        assert_eq!(md.get("y"), Some("a b"));
        assert_eq!(md.get("z"), Some("café"));
        assert_eq!(md.get("k ey"), Some("v"), "keys are decoded too");
    }

    #[test]
    fn blank_values_empty_pieces_and_extra_equals() {
        let md = parse("&a&b=&&c=1=2&=d&");
        assert_eq!(pairs(&md), [("a", ""), ("b", ""), ("c", "1=2"), ("", "d")]);
        assert!(parse("").is_empty());
        assert!(parse("&&&").is_empty());
    }

    #[test]
    fn semicolon_is_not_a_separator() {
        let md = parse("a=1;b=2");
        assert_eq!(pairs(&md), [("a", "1;b=2")]);
    }

    #[test]
    fn malformed_escapes_stay_and_bad_utf8_is_replaced() {
        let md = parse("a=%zz&b=100%&c=%FF%FEok");
        assert_eq!(md.get("a"), Some("%zz"));
        assert_eq!(md.get("b"), Some("100%"));
        assert_eq!(md.get("c"), Some("\u{FFFD}\u{FFFD}ok"));
        // Raw non-UTF-8 bytes in a body are handled the same way.
        let md = parse(b"n=\xe9t\xe9".as_slice());
        assert_eq!(md.get("n"), Some("\u{FFFD}t\u{FFFD}"));
    }

    #[test]
    fn path_segment_decoding_keeps_plus() {
        assert_eq!(percent_decode_path_segment("a+b").unwrap(), "a+b");
        assert_eq!(percent_decode_path_segment("a%2Fb%2fc").unwrap(), "a/b/c");
        assert_eq!(percent_decode_path_segment("%E8%8C%B6").unwrap(), "茶");
        assert!(matches!(
            percent_decode_path_segment("plain").unwrap(),
            Cow::Borrowed("plain")
        ));
        assert!(percent_decode_path_segment("%C3").is_err());
    }

    #[test]
    fn encode_matches_pythons_urlencode() {
        assert_eq!(
            encode([("a b", "c&d=e"), ("x", "~-._*+/")]),
            "a+b=c%26d%3De&x=~-._%2A%2B%2F"
        );
        assert_eq!(encode([("q", "茶")]), "q=%E8%8C%B6");
        assert_eq!(encode([("empty", "")]), "empty=");
        assert_eq!(encode(Vec::<(&str, &str)>::new()), "");
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let original: MultiDict = [
            ("name", "Lao Zhang"),
            ("tag", "a+b"),
            ("tag", "100% & more"),
            ("", "="),
            ("unicode", "水开了 ☕"),
        ]
        .into_iter()
        .collect();
        assert_eq!(parse(encode(&original)), original);
    }
}
