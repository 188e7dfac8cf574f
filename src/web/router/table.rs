//! [`RouteTable`]: aiohttp's `UrlDispatcher` algorithm, generic over the handler type.
//!
//! A *resource* is one path pattern; a *route* is a resource plus a method (or any method)
//! plus a handler. Resolution follows aiohttp:
//!
//! 1. resources are tried in registration order;
//! 2. the first whose pattern matches the path *and* that has a route for the method wins;
//! 3. a resource that matches the path but not the method adds its methods to the `Allow`
//!    list, and the search goes on;
//! 4. when nothing wins, a non-empty `Allow` list means 405 Method Not Allowed, else 404.
//!
//! Static resources (no parameters) are found with one hash lookup rather than a scan; only
//! the dynamic resources registered before the static hit are tried ahead of it, so the
//! result is the same as the plain in-order scan. Resolving a static route allocates nothing.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

use http::Method;

use super::pattern::{normalize_path, Params, PathPattern, PatternError, UrlForError};

/// Which request methods a route accepts: one method, or any (aiohttp's `"*"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MethodFilter {
    /// Every method (`"*"`); used for catch-all handlers such as a proxy.
    Any,
    /// Exactly this method.
    Only(Method),
}

impl MethodFilter {
    /// Whether a request with `method` is accepted.
    pub fn matches(&self, method: &Method) -> bool {
        match self {
            MethodFilter::Any => true,
            MethodFilter::Only(only) => only == method,
        }
    }
}

impl From<Method> for MethodFilter {
    fn from(method: Method) -> Self {
        MethodFilter::Only(method)
    }
}

/// Parses `"*"` as [`MethodFilter::Any`] and anything else as a method name, upper-cased
/// first as aiohttp's `add_route` does, so `"get"` means `GET` rather than an extension method.
impl FromStr for MethodFilter {
    type Err = http::method::InvalidMethod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "*" {
            return Ok(MethodFilter::Any);
        }
        Method::from_bytes(text.to_ascii_uppercase().as_bytes()).map(MethodFilter::Only)
    }
}

impl fmt::Display for MethodFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodFilter::Any => f.write_str("*"),
            MethodFilter::Only(method) => f.write_str(method.as_str()),
        }
    }
}

/// What [`RouteTable::resolve`] found for a request.
#[derive(Debug)]
pub enum Resolved<'a, H> {
    /// A route accepts the path and method.
    Found {
        /// The route's handler.
        handler: &'a H,
        /// The decoded path parameters (empty, and unallocated, for a static route).
        params: Params,
        /// Which route it was, for `match_info.route` and logging.
        route: RouteInfo<'a>,
    },
    /// Some resource matches the path but none accepts the method: answer 405 with these
    /// methods (sorted, without repeats) in the `Allow` header.
    MethodNotAllowed {
        /// The methods the matching resources accept.
        allowed: Vec<Method>,
    },
    /// No resource matches the path: answer 404.
    NotFound,
}

/// A read-only view of one route, for resolution results and introspection.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo<'a> {
    /// The route's position in registration order (the order of [`RouteTable::routes`]).
    pub index: usize,
    /// The position of its resource in [`RouteTable::resources`].
    pub resource: usize,
    /// The methods it accepts.
    pub method: &'a MethodFilter,
    /// Its resource's path pattern.
    pub pattern: &'a PathPattern,
    /// Its name, for [`RouteTable::url_for`].
    pub name: Option<&'a str>,
}

/// Why [`RouteTable::add`] refused a route. The table is unchanged after an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The path pattern is invalid.
    Pattern(PatternError),
    /// The resource already has a route for this method.
    DuplicateMethod {
        /// The resource's pattern.
        pattern: String,
        /// The method given twice (possibly `*`).
        method: MethodFilter,
    },
    /// The resource already has a `*` route, which would take every request the new route is
    /// for, so the new one could never run (aiohttp refuses this too).
    ShadowedByAny {
        /// The resource's pattern.
        pattern: String,
        /// The method of the route that was refused.
        method: MethodFilter,
    },
    /// Another route already has this name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The name is the empty string, which `url_for` could not tell from "no name".
    EmptyName,
    /// A sub-application prefix that is empty (or only `/`), does not start with `/`, or has
    /// parameters in it.
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A sub-application prefix that no request could reach: a sub-application mounted
    /// earlier at `by` takes every path under it (the earlier one wins, in registration
    /// order). Mount the inner one on the outer sub-application instead.
    ShadowedPrefix {
        /// The prefix refused.
        prefix: String,
        /// The prefix of the sub-application that would take its requests.
        by: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Pattern(err) => err.fmt(f),
            RouteError::DuplicateMethod { pattern, method } => {
                write!(f, "a {method} route for {pattern:?} is already registered")
            }
            RouteError::ShadowedByAny { pattern, method } => write!(
                f,
                "a {method} route for {pattern:?} would never run: \
                 a * route for it is already registered"
            ),
            RouteError::DuplicateName { name } => {
                write!(f, "a route named {name:?} is already registered")
            }
            RouteError::EmptyName => f.write_str("a route name must not be empty"),
            RouteError::InvalidPrefix { prefix, reason } => {
                write!(f, "invalid sub-application prefix {prefix:?}: {reason}")
            }
            RouteError::ShadowedPrefix { prefix, by } => write!(
                f,
                "a sub-application at {prefix:?} would never be reached: \
                 the one already mounted at {by:?} takes its requests"
            ),
        }
    }
}

impl std::error::Error for RouteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RouteError::Pattern(err) => Some(err),
            _ => None,
        }
    }
}

impl From<PatternError> for RouteError {
    fn from(err: PatternError) -> Self {
        RouteError::Pattern(err)
    }
}

struct Resource {
    pattern: PathPattern,
    /// Route indices for specific methods, in registration order.
    methods: Vec<(Method, usize)>,
    /// The `*` route, tried after the specific methods.
    any: Option<usize>,
}

impl Resource {
    fn route_for(&self, method: &Method) -> Option<usize> {
        self.methods
            .iter()
            .find(|(m, _)| m == method)
            .map(|&(_, route)| route)
            .or(self.any)
    }
}

struct Route<H> {
    method: MethodFilter,
    resource: usize,
    name: Option<Box<str>>,
    handler: H,
}

/// The hash of the static-path table, looked up once per request: a multiply-rotate over
/// 8-byte words instead of SipHash. SipHash defends a table that untrusted input inserts
/// into; this one is filled by the application at startup and requests only look up, so a
/// hostile path can at worst land in an existing, short probe sequence.
#[derive(Default, Clone, Copy)]
pub(crate) struct PathHasher(u64);

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The routing table: resources in registration order plus the indexes that make resolution
/// fast. Build it with [`add`](Self::add), then [`resolve`](Self::resolve) each request.
///
/// ```
/// use http::Method;
/// use kettle::web::router::table::{MethodFilter, Resolved, RouteTable};
///
/// let mut table = RouteTable::new();
/// table.add(Method::GET.into(), "/users/{id:\\d+}", Some("user"), "show user").unwrap();
/// table.add(Method::DELETE.into(), "/users/{id:\\d+}", None, "delete user").unwrap();
///
/// match table.resolve(&Method::GET, "/users/42") {
///     Resolved::Found { handler, params, .. } => {
///         assert_eq!(*handler, "show user");
///         assert_eq!(params.get("id"), Some("42"));
///     }
///     other => panic!("{other:?}"),
/// }
/// match table.resolve(&Method::POST, "/users/42") {
///     Resolved::MethodNotAllowed { allowed } => {
///         assert_eq!(allowed, [Method::DELETE, Method::GET]);
///     }
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(table.url_for("user", &[("id", "7")]).unwrap(), "/users/7");
/// ```
pub struct RouteTable<H> {
    resources: Vec<Resource>,
    routes: Vec<Route<H>>,
    /// Pattern source → resource, so routes with the same pattern share one resource.
    by_source: HashMap<Box<str>, usize>,
    /// Normalized static path → resource.
    static_paths: HashMap<Box<str>, usize, BuildHasherDefault<PathHasher>>,
    /// Indices of the dynamic resources, ascending.
    dynamic: Vec<usize>,
    /// Route name → route.
    names: HashMap<Box<str>, usize>,
}

impl<H> RouteTable<H> {
    /// An empty table.
    pub fn new() -> Self {
        RouteTable {
            resources: Vec::new(),
            routes: Vec::new(),
            by_source: HashMap::new(),
            static_paths: HashMap::default(),
            dynamic: Vec::new(),
            names: HashMap::new(),
        }
    }

    /// Replaces the handler of the route for `method` on exactly `pattern`; false when there
    /// is no such route. (The router uses it to let an explicit `HEAD` route take over from
    /// the one a `GET` route added implicitly.)
    pub fn replace(&mut self, method: &Method, pattern: &str, handler: H) -> bool {
        let Some(&index) = self.by_source.get(pattern) else {
            return false;
        };
        let route = self.resources[index]
            .methods
            .iter()
            .find(|(m, _)| m == method)
            .map(|&(_, r)| r);
        match route {
            Some(r) => {
                self.routes[r].handler = handler;
                true
            }
            None => false,
        }
    }

    /// Registers `handler` for requests with `method` whose path matches `pattern`.
    ///
    /// Routes whose pattern strings are identical share one resource, which keeps the position
    /// of the first of them. (aiohttp only merges into the *last* resource added; merging into
    /// any earlier one lets `add` be called in any order with the same outcome for
    /// one pattern.) Within a resource a method may be registered once; a `*` route answers
    /// every method the resource has no specific route for, and nothing may be added to a
    /// resource after its `*` route, since it could never run.
    ///
    /// `name` makes the route addressable by [`url_for`](Self::url_for); names are unique
    /// across the table.
    pub fn add(
        &mut self,
        method: MethodFilter,
        pattern: &str,
        name: Option<&str>,
        handler: H,
    ) -> Result<(), RouteError> {
        if let Some(name) = name {
            if name.is_empty() {
                return Err(RouteError::EmptyName);
            }
            if self.names.contains_key(name) {
                return Err(RouteError::DuplicateName { name: name.into() });
            }
        }

        let existing = self.by_source.get(pattern).copied();
        let new_pattern = match existing {
            Some(index) => {
                let resource = &self.resources[index];
                if resource.any.is_some() {
                    return Err(if method == MethodFilter::Any {
                        RouteError::DuplicateMethod {
                            pattern: pattern.into(),
                            method,
                        }
                    } else {
                        RouteError::ShadowedByAny {
                            pattern: pattern.into(),
                            method,
                        }
                    });
                }
                if let MethodFilter::Only(m) = &method {
                    if resource.methods.iter().any(|(existing, _)| existing == m) {
                        return Err(RouteError::DuplicateMethod {
                            pattern: pattern.into(),
                            method,
                        });
                    }
                }
                None
            }
            None => Some(PathPattern::parse(pattern)?),
        };

        // Everything is validated; from here on nothing fails.
        let resource_index = match new_pattern {
            None => existing.expect("validated above"),
            Some(parsed) => {
                let index = self.resources.len();
                if parsed.is_static() {
                    self.static_paths.insert(parsed.static_key().into(), index);
                } else {
                    self.dynamic.push(index);
                }
                self.by_source.insert(pattern.into(), index);
                self.resources.push(Resource {
                    pattern: parsed,
                    methods: Vec::new(),
                    any: None,
                });
                index
            }
        };
        let route_index = self.routes.len();
        let resource = &mut self.resources[resource_index];
        match &method {
            MethodFilter::Any => resource.any = Some(route_index),
            MethodFilter::Only(m) => resource.methods.push((m.clone(), route_index)),
        }
        if let Some(name) = name {
            self.names.insert(name.into(), route_index);
        }
        self.routes.push(Route {
            method,
            resource: resource_index,
            name: name.map(Into::into),
            handler,
        });
        Ok(())
    }

    /// Finds the route for a request: `raw_path` is the path as received, percent-encoded and
    /// without the query string. See the [module documentation](self) for the order in which
    /// resources are tried, and [`pattern`](super::pattern) for how the path is decoded.
    pub fn resolve(&self, method: &Method, raw_path: &str) -> Resolved<'_, H> {
        let path = normalize_path(raw_path);
        let mut allowed = Vec::new();
        let static_hit = self.static_paths.get(&*path).copied();
        // Dynamic resources registered before the static hit come first, as in a full scan.
        let split = match static_hit {
            Some(hit) => self.dynamic.partition_point(|&d| d < hit),
            None => self.dynamic.len(),
        };
        for &index in &self.dynamic[..split] {
            if let Some(params) = self.resources[index].pattern.match_normalized(&path) {
                if let Some(found) = self.accept(index, method, params, &mut allowed) {
                    return found;
                }
            }
        }
        if let Some(hit) = static_hit {
            if let Some(found) = self.accept(hit, method, Params::new(), &mut allowed) {
                return found;
            }
            for &index in &self.dynamic[split..] {
                if let Some(params) = self.resources[index].pattern.match_normalized(&path) {
                    if let Some(found) = self.accept(index, method, params, &mut allowed) {
                        return found;
                    }
                }
            }
        }
        if allowed.is_empty() {
            Resolved::NotFound
        } else {
            allowed.sort_by(|a: &Method, b: &Method| a.as_str().cmp(b.as_str()));
            allowed.dedup();
            Resolved::MethodNotAllowed { allowed }
        }
    }

    /// The result for a resource whose pattern matched: found if it has a route for the method,
    /// otherwise its methods go into `allowed` and the search continues.
    fn accept(
        &self,
        resource_index: usize,
        method: &Method,
        params: Params,
        allowed: &mut Vec<Method>,
    ) -> Option<Resolved<'_, H>> {
        let resource = &self.resources[resource_index];
        match resource.route_for(method) {
            Some(route_index) => Some(Resolved::Found {
                handler: &self.routes[route_index].handler,
                params,
                route: self.info(route_index),
            }),
            None => {
                allowed.extend(resource.methods.iter().map(|(m, _)| m.clone()));
                None
            }
        }
    }

    /// Builds the path of the route named `name` (aiohttp's `router[name].url_for(**params)`).
    /// Values are given decoded; see [`PathPattern::url_for`] for encoding and checks. To add
    /// a query string, append `?` and [`urlencoded::encode`](crate::web::urlencoded::encode).
    pub fn url_for(&self, name: &str, params: &[(&str, &str)]) -> Result<String, UrlForError> {
        let route = self
            .names
            .get(name)
            .ok_or_else(|| UrlForError::UnknownRoute { name: name.into() })?;
        self.resources[self.routes[*route].resource]
            .pattern
            .url_for(params)
    }

    /// The route named `name`, if any.
    pub fn route(&self, name: &str) -> Option<RouteInfo<'_>> {
        self.names.get(name).map(|&index| self.info(index))
    }

    /// Every route in registration order.
    pub fn routes(&self) -> impl ExactSizeIterator<Item = RouteInfo<'_>> + '_ {
        (0..self.routes.len()).map(|index| self.info(index))
    }

    /// Every resource's pattern in resolution order; [`RouteInfo::resource`] indexes it.
    pub fn resources(&self) -> impl ExactSizeIterator<Item = &PathPattern> + '_ {
        self.resources.iter().map(|resource| &resource.pattern)
    }

    /// The number of resources (distinct patterns): the position the next new pattern takes
    /// in resolution order.
    pub(crate) fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// The same table with `prefix` put in front of every pattern (aiohttp's
    /// `add_prefix`, applied to a sub-application's resources when it is mounted).
    ///
    /// Routes are added again in registration order, so resources keep their positions and
    /// names their routes. `prefix` must be literal text starting with `/` (no parameters),
    /// which keeps every prefixed pattern valid; an error would mean it was not.
    pub(crate) fn with_prefix(self, prefix: &str) -> Result<RouteTable<H>, RouteError> {
        let sources: Vec<Box<str>> = self
            .resources
            .into_iter()
            .map(|r| r.pattern.as_str().into())
            .collect();
        let mut table = RouteTable::new();
        for route in self.routes {
            let pattern = format!("{prefix}{}", sources[route.resource]);
            table.add(route.method, &pattern, route.name.as_deref(), route.handler)?;
        }
        Ok(table)
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route has been added.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    fn info(&self, index: usize) -> RouteInfo<'_> {
        let route = &self.routes[index];
        RouteInfo {
            index,
            resource: route.resource,
            method: &route.method,
            pattern: &self.resources[route.resource].pattern,
            name: route.name.as_deref(),
        }
    }
}

impl<H> Default for RouteTable<H> {
    fn default() -> Self {
        RouteTable::new()
    }
}

/// Lists the routes without the handlers, which need not be `Debug` (closures are not).
impl<H> fmt::Debug for RouteTable<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.routes()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> MethodFilter {
        Method::GET.into()
    }

    fn post() -> MethodFilter {
        Method::POST.into()
    }

    /// The handler and params found, or a description of the failure for the assertion.
    fn found<'a>(
        table: &'a RouteTable<&'static str>,
        method: Method,
        path: &str,
    ) -> (&'a str, Vec<(String, String)>) {
        match table.resolve(&method, path) {
            Resolved::Found {
                handler, params, ..
            } => (
                *handler,
                params
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            ),
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    fn handler(table: &RouteTable<&'static str>, method: Method, path: &str) -> &'static str {
        match table.resolve(&method, path) {
            Resolved::Found { handler, .. } => handler,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    fn not_allowed(table: &RouteTable<&'static str>, method: Method, path: &str) -> Vec<Method> {
        match table.resolve(&method, path) {
            Resolved::MethodNotAllowed { allowed } => allowed,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    fn not_found(table: &RouteTable<&'static str>, method: Method, path: &str) -> bool {
        matches!(table.resolve(&method, path), Resolved::NotFound)
    }

    #[test]
    fn static_and_dynamic_routes_resolve() {
        let mut t = RouteTable::new();
        t.add(get(), "/", None, "index").unwrap();
        t.add(get(), "/users/{id:\\d+}", None, "user").unwrap();
        t.add(get(), "/files/{name}.{ext}", None, "file").unwrap();
        assert_eq!(handler(&t, Method::GET, "/"), "index");
        assert_eq!(
            found(&t, Method::GET, "/users/42"),
            ("user", vec![("id".into(), "42".into())])
        );
        assert_eq!(
            found(&t, Method::GET, "/files/a%20b.txt"),
            (
                "file",
                vec![("name".into(), "a b".into()), ("ext".into(), "txt".into())]
            )
        );
        assert!(not_found(&t, Method::GET, "/users/x"));
        assert!(not_found(&t, Method::GET, "/nowhere"));
        assert!(not_found(&t, Method::GET, ""));
    }

    #[test]
    fn static_hit_has_no_params_and_route_info() {
        let mut t = RouteTable::new();
        t.add(get(), "/a", Some("a"), "A").unwrap();
        match t.resolve(&Method::GET, "/a") {
            Resolved::Found {
                handler,
                params,
                route,
            } => {
                assert_eq!(*handler, "A");
                assert!(params.is_empty());
                assert_eq!(route.index, 0);
                assert_eq!(route.resource, 0);
                assert_eq!(route.name, Some("a"));
                assert_eq!(route.pattern.as_str(), "/a");
                assert_eq!(*route.method, get());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prefixing_keeps_order_names_and_methods() {
        let mut t = RouteTable::new();
        t.add(get(), "/users/{name}", Some("user"), "dynamic")
            .unwrap();
        t.add(get(), "/users/me", None, "static").unwrap();
        t.add(post(), "/users/{name}", None, "dyn post").unwrap();
        t.add(get(), "", Some("root"), "bare").unwrap();
        let t = t.with_prefix("/admin").unwrap();
        assert_eq!(t.resource_count(), 3);
        assert_eq!(handler(&t, Method::GET, "/admin/users/me"), "dynamic");
        assert_eq!(handler(&t, Method::POST, "/admin/users/x"), "dyn post");
        assert_eq!(handler(&t, Method::GET, "/admin"), "bare");
        assert!(not_found(&t, Method::GET, "/users/me"));
        assert_eq!(
            t.url_for("user", &[("name", "a")]).unwrap(),
            "/admin/users/a"
        );
        assert_eq!(t.url_for("root", &[]).unwrap(), "/admin");
    }

    #[test]
    fn trailing_slash_routes_are_distinct() {
        let mut t = RouteTable::new();
        t.add(get(), "/a", None, "no slash").unwrap();
        t.add(get(), "/a/", None, "slash").unwrap();
        t.add(get(), "/b", None, "b").unwrap();
        assert_eq!(handler(&t, Method::GET, "/a"), "no slash");
        assert_eq!(handler(&t, Method::GET, "/a/"), "slash");
        assert!(not_found(&t, Method::GET, "/b/"));
    }

    #[test]
    fn wrong_method_gives_405_with_sorted_unique_allow_list() {
        let mut t = RouteTable::new();
        t.add(post(), "/items", None, "create").unwrap();
        t.add(get(), "/items", None, "list").unwrap();
        t.add(Method::DELETE.into(), "/{thing}", None, "delete")
            .unwrap();
        t.add(get(), "/{other}", None, "other").unwrap();
        assert_eq!(
            not_allowed(&t, Method::PUT, "/items"),
            [Method::DELETE, Method::GET, Method::POST]
        );
        assert_eq!(
            not_allowed(&t, Method::PUT, "/x"),
            [Method::DELETE, Method::GET]
        );
        assert!(not_found(&t, Method::PUT, "/x/y"));
        assert_eq!(handler(&t, Method::DELETE, "/items"), "delete");
    }

    #[test]
    fn dynamic_registered_first_wins_over_later_static() {
        let mut t = RouteTable::new();
        t.add(get(), "/users/{name}", None, "dynamic").unwrap();
        t.add(get(), "/users/me", None, "static").unwrap();
        assert_eq!(handler(&t, Method::GET, "/users/me"), "dynamic");
        assert_eq!(handler(&t, Method::GET, "/users/you"), "dynamic");
    }

    #[test]
    fn static_registered_first_wins_over_later_dynamic() {
        let mut t = RouteTable::new();
        t.add(get(), "/users/me", None, "static").unwrap();
        t.add(get(), "/users/{name}", None, "dynamic").unwrap();
        assert_eq!(handler(&t, Method::GET, "/users/me"), "static");
        assert_eq!(handler(&t, Method::GET, "/users/you"), "dynamic");
    }

    #[test]
    fn method_mismatch_falls_through_in_both_directions() {
        // An earlier dynamic resource without GET must not hide a later static GET...
        let mut t = RouteTable::new();
        t.add(post(), "/users/{name}", None, "dyn post").unwrap();
        t.add(get(), "/users/me", None, "static get").unwrap();
        t.add(Method::PATCH.into(), "/users/{name}/", None, "unrelated")
            .unwrap();
        assert_eq!(handler(&t, Method::GET, "/users/me"), "static get");
        assert_eq!(handler(&t, Method::POST, "/users/me"), "dyn post");
        assert_eq!(
            not_allowed(&t, Method::DELETE, "/users/me"),
            [Method::GET, Method::POST]
        );

        // ...and a static resource without the method must not hide a later dynamic one.
        let mut t = RouteTable::new();
        t.add(get(), "/users/me", None, "static get").unwrap();
        t.add(post(), "/users/{name}", None, "dyn post").unwrap();
        t.add(Method::PUT.into(), "/{a}/{b}", None, "later dyn put")
            .unwrap();
        assert_eq!(handler(&t, Method::POST, "/users/me"), "dyn post");
        assert_eq!(handler(&t, Method::PUT, "/users/me"), "later dyn put");
        assert_eq!(
            not_allowed(&t, Method::DELETE, "/users/me"),
            [Method::GET, Method::POST, Method::PUT]
        );
    }

    #[test]
    fn dynamic_resources_keep_registration_order() {
        let mut t = RouteTable::new();
        t.add(get(), "/{a}/{b:\\d+}", None, "numeric").unwrap();
        t.add(get(), "/{a}/{b}", None, "any").unwrap();
        t.add(get(), "/x/{tail:.*}", None, "tail").unwrap();
        assert_eq!(handler(&t, Method::GET, "/x/1"), "numeric");
        assert_eq!(handler(&t, Method::GET, "/x/y"), "any");
        assert_eq!(handler(&t, Method::GET, "/x/y/z"), "tail");
    }

    #[test]
    fn any_method_routes() {
        let mut t = RouteTable::new();
        t.add(get(), "/proxy", None, "get").unwrap();
        t.add(MethodFilter::Any, "/proxy", None, "any").unwrap();
        t.add(MethodFilter::Any, "/{tail:.*}", None, "fallback")
            .unwrap();
        assert_eq!(handler(&t, Method::GET, "/proxy"), "get");
        assert_eq!(handler(&t, Method::POST, "/proxy"), "any");
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(handler(&t, custom, "/proxy"), "any");
        assert_eq!(handler(&t, Method::DELETE, "/anything/else"), "fallback");
    }

    #[test]
    fn any_route_is_never_in_the_allow_list_and_shadows() {
        let mut t = RouteTable::new();
        t.add(MethodFilter::Any, "/a", None, "any").unwrap();
        assert_eq!(
            t.add(get(), "/a", None, "never runs"),
            Err(RouteError::ShadowedByAny {
                pattern: "/a".into(),
                method: get()
            })
        );
        assert_eq!(
            t.add(MethodFilter::Any, "/a", None, "again"),
            Err(RouteError::DuplicateMethod {
                pattern: "/a".into(),
                method: MethodFilter::Any
            })
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn duplicate_methods_and_names_are_errors_and_leave_the_table_alone() {
        let mut t = RouteTable::new();
        t.add(get(), "/a/{x}", Some("a"), "first").unwrap();
        let err = t.add(get(), "/a/{x}", None, "second").unwrap_err();
        assert_eq!(
            err,
            RouteError::DuplicateMethod {
                pattern: "/a/{x}".into(),
                method: get()
            }
        );
        assert_eq!(
            err.to_string(),
            "a GET route for \"/a/{x}\" is already registered"
        );
        let err = t.add(post(), "/b", Some("a"), "dup name").unwrap_err();
        assert_eq!(err, RouteError::DuplicateName { name: "a".into() });
        assert_eq!(err.to_string(), "a route named \"a\" is already registered");
        assert_eq!(
            t.add(post(), "/c", Some(""), "x"),
            Err(RouteError::EmptyName)
        );
        // The failed adds created nothing.
        assert_eq!(t.len(), 1);
        assert_eq!(t.resources().len(), 1);
        assert!(not_found(&t, Method::POST, "/b"));
        // A different method on the same pattern joins the same resource.
        t.add(post(), "/a/{x}", Some("a_post"), "post").unwrap();
        assert_eq!(t.resources().len(), 1);
        assert_eq!(handler(&t, Method::POST, "/a/1"), "post");
    }

    #[test]
    fn bad_patterns_are_reported_and_leave_the_table_alone() {
        let mut t: RouteTable<()> = RouteTable::new();
        let err = t.add(get(), "/a/{b", Some("name"), ()).unwrap_err();
        assert!(matches!(err, RouteError::Pattern(_)), "{err:?}");
        assert!(err.to_string().contains("never closed"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        assert!(t.is_empty());
        // The name was not taken by the failed add.
        t.add(get(), "/a", Some("name"), ()).unwrap();
    }

    #[test]
    fn same_pattern_merges_into_the_first_resource() {
        let mut t = RouteTable::new();
        t.add(get(), "/x", None, "x get").unwrap();
        t.add(get(), "/{any}", None, "dyn").unwrap();
        t.add(post(), "/x", None, "x post").unwrap();
        assert_eq!(t.resources().len(), 2);
        assert_eq!(handler(&t, Method::POST, "/x"), "x post");
        let infos: Vec<_> = t
            .routes()
            .map(|r| (r.method.to_string(), r.pattern.as_str(), r.resource))
            .collect();
        assert_eq!(
            infos,
            [
                ("GET".to_string(), "/x", 0),
                ("GET".to_string(), "/{any}", 1),
                ("POST".to_string(), "/x", 0)
            ]
        );
    }

    #[test]
    fn encoded_requests_reach_static_routes() {
        let mut t = RouteTable::new();
        t.add(get(), "/café", None, "cafe").unwrap();
        t.add(get(), "/a b", None, "space").unwrap();
        t.add(get(), "/{x}", None, "dyn").unwrap();
        assert_eq!(handler(&t, Method::GET, "/caf%C3%A9"), "cafe");
        assert_eq!(handler(&t, Method::GET, "/café"), "cafe");
        assert_eq!(handler(&t, Method::GET, "/a%20b"), "space");
        assert_eq!(
            found(&t, Method::GET, "/a%2Fb"),
            ("dyn", vec![("x".into(), "a/b".into())])
        );
        assert!(not_found(&t, Method::GET, "/%FF"), "not UTF-8: no route");
    }

    #[test]
    fn url_for_by_name() {
        let mut t = RouteTable::new();
        t.add(get(), "/users/{id:\\d+}", Some("user"), "u").unwrap();
        t.add(get(), "/static/{path:.*}", Some("static"), "s")
            .unwrap();
        t.add(get(), "/about", Some("about"), "a").unwrap();
        assert_eq!(t.url_for("user", &[("id", "5")]).unwrap(), "/users/5");
        assert_eq!(
            t.url_for("static", &[("path", "css/a b.css")]).unwrap(),
            "/static/css/a%20b.css"
        );
        assert_eq!(t.url_for("about", &[]).unwrap(), "/about");
        assert_eq!(
            t.url_for("nope", &[]),
            Err(UrlForError::UnknownRoute {
                name: "nope".into()
            })
        );
        assert!(matches!(
            t.url_for("user", &[("id", "five")]),
            Err(UrlForError::InvalidValue { .. })
        ));
        // Round trip through resolve.
        let url = t.url_for("static", &[("path", "dir/ü%.txt")]).unwrap();
        assert_eq!(
            found(&t, Method::GET, &url),
            ("s", vec![("path".into(), "dir/ü%.txt".into())])
        );
        assert_eq!(
            t.route("user").unwrap().pattern.as_str(),
            "/users/{id:\\d+}"
        );
        assert!(t.route("nope").is_none());
    }

    #[test]
    fn method_filter_parsing_and_display() {
        assert_eq!("*".parse::<MethodFilter>().unwrap(), MethodFilter::Any);
        assert_eq!("get".parse::<MethodFilter>().unwrap(), get());
        assert_eq!(
            "purge".parse::<MethodFilter>().unwrap(),
            MethodFilter::Only(Method::from_bytes(b"PURGE").unwrap())
        );
        assert!("bad method".parse::<MethodFilter>().is_err());
        assert_eq!(MethodFilter::Any.to_string(), "*");
        assert_eq!(post().to_string(), "POST");
        assert!(MethodFilter::Any.matches(&Method::PATCH));
        assert!(get().matches(&Method::GET));
        assert!(!get().matches(&Method::HEAD));
    }

    #[test]
    fn debug_lists_routes_without_handlers() {
        struct NotDebug;
        let mut t = RouteTable::new();
        t.add(get(), "/a", Some("a"), NotDebug).unwrap();
        let text = format!("{t:?}");
        assert!(text.contains("PathPattern(\"/a\")"), "{text}");
        assert!(text.contains("Some(\"a\")"), "{text}");
    }

    #[test]
    fn many_routes_resolve_each_to_its_own_handler() {
        let mut t = RouteTable::new();
        let mut expected = Vec::new();
        for i in 0..200 {
            let (pattern, path) = if i % 2 == 0 {
                (format!("/s{i}/page"), format!("/s{i}/page"))
            } else {
                (format!("/d{i}/{{id}}"), format!("/d{i}/x"))
            };
            t.add(get(), &pattern, None, i).unwrap();
            expected.push((path, i));
        }
        for (path, i) in expected {
            match t.resolve(&Method::GET, &path) {
                Resolved::Found { handler, .. } => assert_eq!(*handler, i),
                other => panic!("{path}: {other:?}"),
            }
        }
    }
}
