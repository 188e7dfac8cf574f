//! [`Prefix`]: where a sub-application is mounted, and which request paths are under it.
//!
//! A prefix is literal path text (a static pattern), compared with the request path in the
//! router's normalized form (see [`pattern`](super::pattern)), so `/caf%C3%A9/x` is under
//! `/café` like a route `/café/x` would match it. A path is under `/admin` when it is
//! `/admin` or continues with `/`: `/adminx` is not, and neither is `/admin%2Fx`, since an
//! encoded slash never separates segments.

use super::pattern::PathPattern;
use super::table::RouteError;

/// A validated sub-application prefix.
#[derive(Debug, Clone)]
pub(crate) struct Prefix {
    /// As written, without trailing slashes: what is put in front of the sub-application's
    /// patterns.
    source: Box<str>,
    /// The normalized text a request path must start with.
    key: Box<str>,
}

impl Prefix {
    /// Checks a prefix the way aiohttp's `add_subapp` does: trailing slashes are dropped, and
    /// what is left must be a non-empty path starting with `/`. It must also be literal text:
    /// a `{parameter}` in it could never be filled in by the sub-application's `url_for`.
    pub(crate) fn parse(prefix: &str) -> Result<Prefix, RouteError> {
        let invalid = |reason| RouteError::InvalidPrefix {
            prefix: prefix.into(),
            reason,
        };
        let trimmed = prefix.trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(invalid("it must not be empty or '/'"));
        }
        if !trimmed.starts_with('/') {
            return Err(invalid("it must start with '/'"));
        }
        let pattern = PathPattern::parse(trimmed)?;
        if !pattern.is_static() {
            return Err(invalid("it must be literal text, without {parameters}"));
        }
        Ok(Prefix {
            source: trimmed.into(),
            key: pattern.static_key().into(),
        })
    }

    /// The prefix as written (trailing slashes removed).
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// This prefix with `outer` in front, for a sub-application whose parent is mounted in
    /// turn.
    pub(crate) fn under(&self, outer: &Prefix) -> Prefix {
        let joined = format!("{}{}", outer.source, self.source);
        Prefix::parse(&joined).expect("two valid literal prefixes join into a valid one")
    }

    /// Whether a normalized request path is the prefix itself or below it.
    pub(crate) fn covers(&self, normalized_path: &str) -> bool {
        match normalized_path.strip_prefix(&*self.key) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// Whether every path under `other` is also under this prefix, so a sub-application
    /// mounted at `other` after this one could never be reached.
    pub(crate) fn covers_prefix(&self, other: &Prefix) -> bool {
        self.covers(&other.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_are_dropped_and_bad_prefixes_refused() {
        assert_eq!(Prefix::parse("/admin/").unwrap().as_str(), "/admin");
        assert_eq!(Prefix::parse("/a/b//").unwrap().as_str(), "/a/b");
        for bad in ["", "/", "//", "admin", "/users/{id}"] {
            assert!(
                matches!(Prefix::parse(bad), Err(RouteError::InvalidPrefix { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(Prefix::parse("/a{"), Err(RouteError::Pattern(_))));
    }

    #[test]
    fn covers_the_prefix_and_what_continues_with_a_slash() {
        let p = Prefix::parse("/admin").unwrap();
        assert!(p.covers("/admin"));
        assert!(p.covers("/admin/"));
        assert!(p.covers("/admin/users/1"));
        assert!(!p.covers("/adminx"));
        assert!(!p.covers("/admin%2Fx"));
        assert!(!p.covers("/"));
        assert!(!p.covers("/adm"));
        let cafe = Prefix::parse("/café").unwrap();
        assert!(cafe.covers("/café/menu"));
    }

    #[test]
    fn nesting_joins_and_shadowing_is_detected() {
        let outer = Prefix::parse("/a").unwrap();
        let inner = Prefix::parse("/b").unwrap().under(&outer);
        assert_eq!(inner.as_str(), "/a/b");
        assert!(inner.covers("/a/b/c"));
        assert!(outer.covers_prefix(&inner));
        assert!(!inner.covers_prefix(&outer));
        assert!(!outer.covers_prefix(&Prefix::parse("/ab").unwrap()));
    }
}
