//! [`MultiDict`]: aiohttp's ordered, repeatable-key dictionary for query strings and forms.
//!
//! A query string such as `?tag=a&tag=b&page=2` is not a map: a key may repeat and the order
//! of the pairs can matter to the application. aiohttp models it with `multidict.MultiDict`;
//! this is the same idea. Keys are compared exactly (case-sensitively), as in `MultiDict`
//! rather than `CIMultiDict`, because query and form field names are case-sensitive.
//!
//! The pairs live in a plain `Vec`: real query strings and forms hold a handful of fields, where
//! a linear scan beats hashing and keeps insertion order for free.

use std::fmt;

/// An ordered list of `(key, value)` string pairs in which a key may occur more than once.
///
/// ```
/// use kettle::web::multidict::MultiDict;
///
/// let mut query = MultiDict::new();
/// query.add("tag", "rust");
/// query.add("page", "2");
/// query.add("tag", "async");
///
/// assert_eq!(query.get("tag"), Some("rust"));
/// assert_eq!(query.get_all("tag").collect::<Vec<_>>(), ["rust", "async"]);
/// assert_eq!(query.len(), 3);
/// ```
///
/// Equality is order-sensitive, like aiohttp's: `a=1&b=2` and `b=2&a=1` are different.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct MultiDict {
    entries: Vec<(String, String)>,
}

impl MultiDict {
    /// An empty dictionary; allocates nothing until the first pair is added.
    pub fn new() -> Self {
        MultiDict {
            entries: Vec::new(),
        }
    }

    /// An empty dictionary with room for `capacity` pairs, for parsers that can count first.
    pub fn with_capacity(capacity: usize) -> Self {
        MultiDict {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Appends a pair, keeping any earlier values of `key` (aiohttp's `MultiDict.add`).
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.entries.push((key.into(), value.into()));
    }

    /// Replaces every value of `key` with the single `value` (aiohttp's `md[key] = value`).
    ///
    /// The pair takes the position of the first old occurrence, so re-setting a field does not
    /// reorder a form; a new key is appended.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter().position(|(k, _)| *k == key) {
            Some(first) => {
                self.entries[first].1 = value;
                let mut index = 0;
                self.entries.retain(|(k, _)| {
                    let keep = index <= first || *k != key;
                    index += 1;
                    keep
                });
            }
            None => self.entries.push((key, value)),
        }
    }

    /// Removes every pair with `key` and returns how many there were (aiohttp's `popall`,
    /// without the error for a missing key: zero says the same thing).
    pub fn remove(&mut self, key: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k != key);
        before - self.entries.len()
    }

    /// The first value of `key`, which is what a single-valued field means.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in the order they were added.
    pub fn get_all<'a>(&'a self, key: &'a str) -> GetAll<'a> {
        GetAll {
            inner: self.entries.iter(),
            key,
        }
    }

    /// Whether `key` occurs at least once.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// The number of pairs, counting each repetition of a key.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes all pairs, keeping the allocation for reuse.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// All pairs in order, repeated keys included.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.entries.iter(),
        }
    }

    /// The key of every pair in order; a repeated key is yielded once per pair, as aiohttp's
    /// `keys()` does, so `keys()` and `values()` line up.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The value of every pair in order.
    pub fn values(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for MultiDict {
    /// Prints like a map with repeated keys, which is how aiohttp shows it too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MultiDict {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        MultiDict {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for MultiDict {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.entries
            .extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
    }
}

impl IntoIterator for MultiDict {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a MultiDict {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over a [`MultiDict`]'s pairs as `(&str, &str)`, from [`MultiDict::iter`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, (String, String)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner
            .next_back()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Iterator over the values of one key, from [`MultiDict::get_all`].
#[derive(Debug, Clone)]
pub struct GetAll<'a> {
    inner: std::slice::Iter<'a, (String, String)>,
    key: &'a str,
}

impl<'a> Iterator for GetAll<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let key = self.key;
        self.inner
            .by_ref()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.inner.size_hint().1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MultiDict {
        [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect()
    }

    #[test]
    fn keeps_order_and_repeats() {
        let md = sample();
        assert_eq!(md.len(), 3);
        assert!(!md.is_empty());
        assert_eq!(
            md.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "2"), ("a", "3")]
        );
        assert_eq!(md.keys().collect::<Vec<_>>(), ["a", "b", "a"]);
        assert_eq!(md.values().collect::<Vec<_>>(), ["1", "2", "3"]);
    }

    #[test]
    fn get_returns_first_and_get_all_every_value() {
        let md = sample();
        assert_eq!(md.get("a"), Some("1"));
        assert_eq!(md.get("b"), Some("2"));
        assert_eq!(md.get("c"), None);
        assert_eq!(md.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(md.get_all("c").count(), 0);
        assert!(md.contains_key("b"));
        assert!(!md.contains_key("B"), "keys are case-sensitive");
    }

    #[test]
    fn add_appends_set_replaces_in_place_remove_counts() {
        let mut md = sample();
        md.add("b", "4");
        assert_eq!(md.get_all("b").collect::<Vec<_>>(), ["2", "4"]);

        md.set("a", "x");
        assert_eq!(
            md.iter().collect::<Vec<_>>(),
            [("a", "x"), ("b", "2"), ("b", "4")]
        );
        md.set("z", "new");
        assert_eq!(md.iter().next_back(), Some(("z", "new")));

        assert_eq!(md.remove("b"), 2);
        assert_eq!(md.remove("b"), 0);
        assert_eq!(md.iter().collect::<Vec<_>>(), [("a", "x"), ("z", "new")]);

        md.clear();
        assert!(md.is_empty());
        assert_eq!(md, MultiDict::default());
    }

    #[test]
    fn iterators_and_extend() {
        let mut md = MultiDict::with_capacity(2);
        md.extend([("k", String::from("v"))]);
        md.extend(vec![(String::from("k"), "w")]);
        let borrowed: Vec<(&str, &str)> = (&md).into_iter().collect();
        assert_eq!(borrowed, [("k", "v"), ("k", "w")]);
        assert_eq!(md.iter().next_back(), Some(("k", "w")));
        assert_eq!(md.iter().len(), 2);
        let owned: Vec<(String, String)> = md.clone().into_iter().collect();
        assert_eq!(owned[1], ("k".to_string(), "w".to_string()));
    }

    #[test]
    fn equality_is_order_sensitive() {
        let ab: MultiDict = [("a", "1"), ("b", "2")].into_iter().collect();
        let ba: MultiDict = [("b", "2"), ("a", "1")].into_iter().collect();
        assert_ne!(ab, ba);
        assert_eq!(ab, ab.clone());
    }

    #[test]
    fn debug_looks_like_a_map() {
        assert_eq!(
            format!("{:?}", sample()),
            r#"{"a": "1", "b": "2", "a": "3"}"#
        );
    }
}
