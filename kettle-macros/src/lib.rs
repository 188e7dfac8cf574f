//! Attribute macros for Kettle: `#[kettle::main]` and `#[kettle::test]`.
//!
//! Both turn an `async fn` into an ordinary `fn` whose body runs on a fresh Kettle event loop,
//! the way Python's `asyncio.run(main())` is the entry point of an asyncio program.
//!
//! ```
//! #[kettle_macros::main] // written #[kettle::main] through the kettle re-export
//! async fn main() {
//!     let task = kettle::spawn(async { 6 * 7 });
//!     assert_eq!(task.await.unwrap(), 42);
//! }
//! ```
//!
//! expands to
//!
//! ```
//! fn main() {
//!     ::kettle::run(async move {
//!         let task = kettle::spawn(async { 6 * 7 });
//!         assert_eq!(task.await.unwrap(), 42);
//!     })
//! }
//! ```
//!
//! Attributes, visibility and the return type are kept, so `async fn main() -> Result<(), E>`
//! works and `?` may be used in the body. `#[kettle::test]` does the same and adds `#[test]`;
//! other attributes such as `#[should_panic]` or `#[ignore]` stay where they were.
//!
//! # The `debug` argument
//!
//! `#[kettle::main(debug)]` and `#[kettle::test(debug)]` run the body on a loop built with
//! debug mode on (slow task steps are logged through `tracing`, like asyncio's debug mode):
//!
//! ```text
//! ::kettle::EventLoop::builder()
//!     .debug(true)
//!     .run(async move { ... })
//! ```
//!
//! # Errors
//!
//! Misuse is reported with `compile_error!` pointing at the offending tokens. The function must be
//! `async` (the macro is the thing that makes it synchronous):
//!
//! ```compile_fail
//! #[kettle_macros::main]
//! fn main() {}
//! ```
//!
//! It must take no parameters (nobody would supply them):
//!
//! ```compile_fail
//! #[kettle_macros::test]
//! async fn takes_an_argument(n: u32) {}
//! ```
//!
//! `debug` is the only argument:
//!
//! ```compile_fail
//! #[kettle_macros::main(flavor = "multi_thread")]
//! async fn main() {}
//! ```
//!
//! And `#[kettle::test]` already adds `#[test]`, so a second one is refused rather than running
//! the test twice:
//!
//! ```compile_fail
//! #[kettle_macros::test]
//! #[test]
//! async fn twice() {}
//! ```
//!
//! # Why no `syn`/`quote`
//!
//! The transformation only needs to find the `async` keyword before `fn`, drop it, check the
//! parameter list is empty and wrap the final brace group; everything between (generics, return
//! type, `where` clause, attributes) is copied token for token without being understood. Doing
//! that on `proc_macro::TokenStream` directly keeps this crate dependency-free, so it compiles in
//! a fraction of a second instead of pulling `syn` with `full` features into every build of every
//! program that uses Kettle.

// The crate docs show the expansion as a literal `fn main() { ... }` on purpose.
#![allow(clippy::needless_doctest_main)]

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Marks the `async fn main` of a program as its entry point, run to completion on a new Kettle
/// event loop (like `asyncio.run(main())`).
///
/// ```
/// #[kettle_macros::main]
/// async fn main() -> Result<(), std::num::ParseIntError> {
///     let n: u32 = "42".parse()?;
///     kettle::sleep(std::time::Duration::from_millis(1)).await;
///     assert_eq!(n, 42);
///     Ok(())
/// }
/// ```
///
/// `#[kettle::main(debug)]` turns on the loop's debug mode. See the [crate docs](crate) for the
/// exact expansion and the errors.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args, item)
}

/// Marks an `async fn` as a test, run on a new Kettle event loop of its own.
///
/// ```
/// #[kettle_macros::test]
/// async fn sleeps() {
///     kettle::sleep(std::time::Duration::from_millis(1)).await;
/// }
/// ```
///
/// It expands to a `#[test] fn` (so it only runs under `cargo test`); `#[should_panic]`,
/// `#[ignore]` and a `Result` return type work as with plain tests. `#[kettle::test(debug)]`
/// turns on the loop's debug mode. See the [crate docs](crate) for the exact expansion.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args, item)
}

/// Which attribute is being expanded; they differ only in the added `#[test]` and the messages.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "#[kettle::main]",
            Kind::Test => "#[kettle::test]",
        }
    }
}

/// A compile error to report instead of the expansion: where, and what to say.
struct Error {
    span: Span,
    message: String,
}

impl Error {
    fn new(span: Span, message: impl Into<String>) -> Error {
        Error {
            span,
            message: message.into(),
        }
    }

    /// `::core::compile_error! { "message" }`, every token carrying the error's span so rustc
    /// underlines the user's code rather than the attribute.
    fn into_tokens(self) -> TokenStream {
        let span = self.span;
        let mut out = path(&["core", "compile_error"], span);
        out.push(punct('!', Spacing::Alone, span));
        let mut msg = Literal::string(&self.message);
        msg.set_span(span);
        let mut body = Group::new(Delimiter::Brace, TokenStream::from(TokenTree::Literal(msg)));
        body.set_span(span);
        out.push(TokenTree::Group(body));
        out.into_iter().collect()
    }
}

fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let defines_main = kind == Kind::Main && defines_fn_main(&item);
    let result = parse_args(kind, args).and_then(|debug| rewrite(kind, debug, item));
    match result {
        Ok(tokens) => tokens,
        Err(e) => {
            let mut out = e.into_tokens();
            if defines_main {
                // Without a `main` left in the crate rustc would add "`main` function not found"
                // to our error; an empty stand-in keeps the report to the one real mistake.
                out.extend("fn main() {}".parse::<TokenStream>());
            }
            out
        }
    }
}

/// Whether the item is `... fn main ...`, i.e. the program's entry point.
fn defines_fn_main(item: &TokenStream) -> bool {
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    tokens
        .windows(2)
        .any(|w| is_ident(&w[0], "fn") && is_ident(&w[1], "main"))
}

/// Accepts an empty argument list or `debug`; returns whether debug mode was asked for.
fn parse_args(kind: Kind, args: TokenStream) -> Result<bool, Error> {
    let mut debug = false;
    let mut expect_comma = false;
    for tt in args {
        match &tt {
            // A trailing or separating comma between arguments.
            TokenTree::Punct(p) if p.as_char() == ',' && expect_comma => expect_comma = false,
            TokenTree::Ident(id) if !expect_comma && id.to_string() == "debug" => {
                if debug {
                    return Err(Error::new(id.span(), "`debug` is given twice"));
                }
                debug = true;
                expect_comma = true;
            }
            other => {
                return Err(Error::new(
                    other.span(),
                    format!(
                        "unknown argument `{other}` to {}: the only argument is `debug`",
                        kind.name()
                    ),
                ));
            }
        }
    }
    Ok(debug)
}

/// Rewrites `ATTRS VIS QUALIFIERS async fn NAME GENERICS () RET WHERE { BODY }` into
/// `ATTRS VIS QUALIFIERS fn NAME GENERICS () RET WHERE { RUNNER(async move { BODY }) }`,
/// adding `#[test]` for tests. Tokens other than `async`, the parameter list and the body are
/// copied without interpretation.
fn rewrite(kind: Kind, debug: bool, item: TokenStream) -> Result<TokenStream, Error> {
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();

    // The `fn` keyword at the top level of the item. Attributes are `#` + a bracket group and
    // `pub(crate)` has a parenthesised group, so nothing before `fn` hides a stray `fn` ident.
    let fn_pos = tokens
        .iter()
        .position(|tt| is_ident(tt, "fn"))
        .ok_or_else(|| {
            let span = tokens.first().map_or_else(Span::call_site, TokenTree::span);
            Error::new(
                span,
                format!("{} can only be applied to an `async fn`", kind.name()),
            )
        })?;

    if kind == Kind::Test {
        reject_test_attribute(&tokens[..fn_pos])?;
    }

    let async_pos = tokens[..fn_pos]
        .iter()
        .position(|tt| is_ident(tt, "async"))
        .ok_or_else(|| {
            Error::new(
                tokens[fn_pos].span(),
                format!(
                    "the `async` keyword is missing from the function declaration: {} \
                     runs an `async fn` on a Kettle event loop",
                    kind.name()
                ),
            )
        })?;

    // The body is the item's final brace group; a declaration without one (`async fn f();` in a
    // trait) has nothing to run.
    let body = match tokens.last() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g.clone(),
        _ => {
            let span = tokens.last().map_or_else(Span::call_site, TokenTree::span);
            return Err(Error::new(
                span,
                format!("{} needs a function body", kind.name()),
            ));
        }
    };

    // The first parenthesised group after the name is the parameter list: generics use `<>`
    // punctuation, not a group, so they cannot be mistaken for it.
    let params = tokens[fn_pos + 1..]
        .iter()
        .find_map(|tt| match tt {
            TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis => Some(g),
            _ => None,
        })
        .ok_or_else(|| Error::new(tokens[fn_pos].span(), "expected a parameter list"))?;
    if !params.stream().is_empty() {
        return Err(Error::new(
            params.span(),
            format!(
                "{} functions cannot take parameters: nothing would supply them",
                kind.name()
            ),
        ));
    }

    let span = body.span();
    let mut new_body = if debug {
        debug_runner(span)
    } else {
        path(&["kettle", "run"], span)
    };
    let mut future = vec![ident("async", span), ident("move", span)];
    future.push(TokenTree::Group(body));
    let mut call = Group::new(Delimiter::Parenthesis, future.into_iter().collect());
    call.set_span(span);
    new_body.push(TokenTree::Group(call));
    let mut new_body = Group::new(Delimiter::Brace, new_body.into_iter().collect());
    new_body.set_span(span);

    *tokens.last_mut().expect("the body was found above") = TokenTree::Group(new_body);
    tokens.remove(async_pos);

    let mut out = Vec::with_capacity(tokens.len() + 3);
    if kind == Kind::Test {
        // The full path, so a user's own `test` macro in scope cannot shadow the built-in one.
        let attr_span = Span::call_site();
        out.push(punct('#', Spacing::Alone, attr_span));
        let attr = path(&["core", "prelude", "v1", "test"], attr_span);
        let mut group = Group::new(Delimiter::Bracket, attr.into_iter().collect());
        group.set_span(attr_span);
        out.push(TokenTree::Group(group));
    }
    out.extend(tokens);
    Ok(out.into_iter().collect())
}

/// `::kettle::EventLoop::builder().debug(true).run`; the caller appends the parenthesised
/// future.
fn debug_runner(span: Span) -> Vec<TokenTree> {
    let mut out = path(&["kettle", "EventLoop", "builder"], span);
    out.push(empty_parens(span));
    method(&mut out, "debug", span);
    out.push(parens(TokenTree::Ident(ident_tree("true", span)), span));
    method(&mut out, "run", span);
    out
}

/// A `#[test]` written next to `#[kettle::test]` would make rustc register the function twice
/// (or, before our rewrite, complain that an async fn cannot be a test): say so plainly.
fn reject_test_attribute(before_fn: &[TokenTree]) -> Result<(), Error> {
    for pair in before_fn.windows(2) {
        if let (TokenTree::Punct(hash), TokenTree::Group(g)) = (&pair[0], &pair[1]) {
            if hash.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
                continue;
            }
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            if let Some(last) = inner.last() {
                // `test`, `core::prelude::v1::test`, `::std::prelude::rust_2021::test`...
                if is_ident(last, "test")
                    && inner.iter().all(|tt| !matches!(tt, TokenTree::Group(_)))
                {
                    return Err(Error::new(
                        g.span(),
                        "#[kettle::test] already adds #[test]; remove this attribute",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn is_ident(tt: &TokenTree, name: &str) -> bool {
    matches!(tt, TokenTree::Ident(id) if id.to_string() == name)
}

fn ident_tree(name: &str, span: Span) -> Ident {
    Ident::new(name, span)
}

fn ident(name: &str, span: Span) -> TokenTree {
    TokenTree::Ident(ident_tree(name, span))
}

fn punct(ch: char, spacing: Spacing, span: Span) -> TokenTree {
    let mut p = Punct::new(ch, spacing);
    p.set_span(span);
    TokenTree::Punct(p)
}

/// `::a::b::c`: a leading `::` so a local module named `kettle` or `core` cannot capture it.
fn path(segments: &[&str], span: Span) -> Vec<TokenTree> {
    let mut out = Vec::with_capacity(segments.len() * 3);
    for seg in segments {
        out.push(punct(':', Spacing::Joint, span));
        out.push(punct(':', Spacing::Alone, span));
        out.push(ident(seg, span));
    }
    out
}

/// `.name`, for chaining a method call.
fn method(out: &mut Vec<TokenTree>, name: &str, span: Span) {
    out.push(punct('.', Spacing::Alone, span));
    out.push(ident(name, span));
}

fn parens(inner: TokenTree, span: Span) -> TokenTree {
    let mut g = Group::new(Delimiter::Parenthesis, TokenStream::from(inner));
    g.set_span(span);
    TokenTree::Group(g)
}

fn empty_parens(span: Span) -> TokenTree {
    let mut g = Group::new(Delimiter::Parenthesis, TokenStream::new());
    g.set_span(span);
    TokenTree::Group(g)
}
