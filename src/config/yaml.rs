//! YAML text → a tree that remembers where each node was written, and a
//! serde deserializer over that tree.
//!
//! serde_yaml gives a position only to the errors its own parser finds; a
//! key path such as `schools[41].classrooms[3].shedule` is no help in a
//! 4,000-line file or in one of fifty included files. Building the tree
//! first lets every later error (unknown key, wrong type, failed check) be
//! reported as `file:line:col`, lets includes be merged before serde sees
//! anything, and lets hostile input be refused early: nesting is counted
//! while the events stream in, so `[[[[…` 100,000 levels deep stops at
//! level 65 instead of costing minutes.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// Deepest nesting of sequences and mappings accepted. The real
/// configuration needs about 8.
pub const MAX_DEPTH: usize = 64;

/// Largest configuration file accepted, in bytes (each included file too).
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Most nodes a document may expand to once aliases are copied: bounds the
/// "billion laughs" (aliases of aliases) in memory and time.
const MAX_NODES: usize = 2_000_000;

/// Where a node was written: `file:line:col`, both 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// File name as shown to people.
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// What a node holds.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A scalar; `plain` when unquoted (only plain scalars can be null,
    /// booleans or numbers).
    Scalar {
        /// Its text.
        text: String,
        /// Written without quotes or block style.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, merge keys applied.
    Map(Vec<(Node, Node)>),
}

/// A YAML node with its position.
#[derive(Debug, Clone)]
pub struct Node {
    /// What it holds.
    pub kind: Kind,
    /// Where it starts.
    pub pos: Pos,
    /// Nesting levels below and including this node.
    height: usize,
    /// Nodes in this subtree.
    size: usize,
}

impl Node {
    /// A new node; height and size are computed from the children.
    pub fn new(kind: Kind, pos: Pos) -> Self {
        let (height, size) = match &kind {
            Kind::Scalar { .. } => (0, 1),
            Kind::Seq(items) => (
                1 + items.iter().map(|n| n.height).max().unwrap_or(0),
                1 + items.iter().map(|n| n.size).sum::<usize>(),
            ),
            Kind::Map(entries) => (
                1 + entries.iter().map(|(k, v)| k.height.max(v.height)).max().unwrap_or(0),
                1 + entries.iter().map(|(k, v)| k.size + v.size).sum::<usize>(),
            ),
        };
        Self {
            kind,
            pos,
            height,
            size,
        }
    }

    /// The text of a scalar node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// A syntax error or a refused document, with its position.
#[derive(Debug, Clone)]
pub struct YamlError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

fn pos_of(file: &Arc<str>, span: &Span) -> Pos {
    Pos {
        file: file.clone(),
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        pos: Pos,
        anchor: usize,
    },
}

/// Parses one YAML document into a tree: a UTF-8 byte-order mark at the
/// start is skipped, merge keys (`<<`) are applied, aliases are copied,
/// duplicate keys are refused. An empty document is an empty mapping.
///
/// # Errors
/// The first syntax error, a document nested deeper than [`MAX_DEPTH`] or
/// larger than [`MAX_BYTES`], more than one document, a duplicate key or a
/// bad merge key; each with its position.
pub fn parse(text: &str, file: &Arc<str>) -> Result<Node, YamlError> {
    let start = Pos {
        file: file.clone(),
        line: 1,
        col: 1,
    };
    if text.len() as u64 > MAX_BYTES {
        return Err(YamlError {
            pos: start,
            message: format!(
                "the file is {} bytes, more than the {} MiB a configuration may hold",
                text.len(),
                MAX_BYTES >> 20
            ),
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut nodes = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos {
                file: file.clone(),
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            // The scanner reads a few hundred `[` ahead of the events and
            // has its own, higher limit.
            message: if e.info().contains("recursion limit") {
                format!("nested more than {MAX_DEPTH} levels deep; a configuration needs far fewer")
            } else {
                e.info().to_owned()
            },
        })?;
        let pos = pos_of(file, &span);
        let done = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        pos,
                        message: "more than one YAML document (`---`) in the file; keep one".into(),
                    });
                }
                None
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("nested more than {MAX_DEPTH} levels deep; a configuration needs far fewer"),
                    });
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        items: Vec::new(),
                        pos,
                        anchor,
                    }
                } else {
                    Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        pos,
                        anchor,
                    }
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { items, pos, anchor }) => Some((Node::new(Kind::Seq(items), pos), anchor)),
                Some(Frame::Map {
                    entries, pos, anchor, ..
                }) => Some((Node::new(Kind::Map(merge(entries)?), pos), anchor)),
                None => None,
            },
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && tag.is_none();
                Some((
                    Node::new(
                        Kind::Scalar {
                            text: text.into_owned(),
                            plain,
                        },
                        pos,
                    ),
                    anchor,
                ))
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(YamlError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                if stack.len() + target.height > MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("this alias nests the document more than {MAX_DEPTH} levels deep"),
                    });
                }
                Some((target.clone(), 0))
            }
        };
        let Some((node, anchor)) = done else { continue };
        nodes += node.size;
        if nodes > MAX_NODES {
            return Err(YamlError {
                pos: node.pos,
                message: format!("the document expands to more than {MAX_NODES} values (aliases copied)"),
            });
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => root = Some(node),
        }
    }
    Ok(root
        .filter(|r| !r.is_null())
        .unwrap_or_else(|| Node::new(Kind::Map(Vec::new()), start)))
}

/// Applies merge keys and refuses duplicate keys: explicit keys win over
/// merged ones, and among merged mappings the first listed wins (YAML
/// merge key specification).
fn merge(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, YamlError> {
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
    let mut seen: HashMap<String, Pos> = HashMap::new();
    let mut sources = Vec::new();
    for (k, v) in entries {
        if matches!(&k.kind, Kind::Scalar { text, plain: true } if text == "<<") {
            sources.push(v);
            continue;
        }
        if let Some(name) = k.as_str() {
            if let Some(prev) = seen.get(name) {
                return Err(YamlError {
                    pos: k.pos.clone(),
                    message: format!("duplicate key \"{name}\" (also at line {})", prev.line),
                });
            }
            seen.insert(name.to_owned(), k.pos.clone());
        }
        out.push((k, v));
    }
    let mut merged: HashSet<String> = HashSet::new();
    for source in sources {
        let maps = match source.kind {
            Kind::Map(m) => vec![m],
            Kind::Seq(items) => {
                let mut maps = Vec::new();
                for item in items {
                    match item.kind {
                        Kind::Map(m) => maps.push(m),
                        _ => {
                            return Err(YamlError {
                                pos: item.pos,
                                message: "a merge key (<<) lists mappings only".into(),
                            });
                        }
                    }
                }
                maps
            }
            Kind::Scalar { .. } => {
                return Err(YamlError {
                    pos: source.pos,
                    message: "a merge key (<<) takes a mapping (such as *defaults) or a list of them".into(),
                });
            }
        };
        for (k, v) in maps.into_iter().flatten() {
            let name = k.as_str().map(str::to_owned);
            let taken = name
                .as_ref()
                .is_some_and(|n| seen.contains_key(n) || merged.contains(n));
            if !taken {
                if let Some(n) = name {
                    merged.insert(n);
                }
                out.push((k, v));
            }
        }
    }
    Ok(out)
}

/// Every key path of the tree (`schools[0].classrooms[2].id`) with the
/// position of its key (or of the item, for sequence items).
pub fn index(root: &Node) -> HashMap<String, Pos> {
    fn walk(node: &Node, path: &str, out: &mut HashMap<String, Pos>) {
        match &node.kind {
            Kind::Scalar { .. } => {}
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    out.insert(p.clone(), item.pos.clone());
                    walk(item, &p, out);
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let Some(name) = k.as_str() else { continue };
                    let p = if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    out.insert(p.clone(), k.pos.clone());
                    walk(v, &p, out);
                }
            }
        }
    }
    let mut out = HashMap::new();
    walk(root, "", &mut out);
    out
}

/// An error while deserializing the tree, at the innermost node concerned.
#[derive(Debug)]
pub struct DeError {
    /// What.
    pub message: String,
    /// Where, once known.
    pub pos: Option<Pos>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            pos: None,
        }
    }
}

fn at<T>(r: Result<T, DeError>, pos: &Pos) -> Result<T, DeError> {
    r.map_err(|mut e| {
        e.pos.get_or_insert_with(|| pos.clone());
        e
    })
}

/// A key that no field takes: its path and where it is written.
#[derive(Debug, Clone)]
pub struct UnknownKey {
    /// `schools[0].classrooms[2].shedule`.
    pub path: String,
    /// Position of the key.
    pub pos: Pos,
}

/// Deserializes `T` from the tree; keys no field takes are collected in
/// `unknown` rather than refused, so that one run reports them all.
///
/// # Errors
/// The first type error, at its node.
pub fn from_node<'de, T: de::Deserialize<'de>>(root: &Node, unknown: &RefCell<Vec<UnknownKey>>) -> Result<T, DeError> {
    T::deserialize(De {
        node: root,
        path: String::new(),
        key_pos: None,
        unknown,
    })
}

struct De<'a> {
    node: &'a Node,
    path: String,
    /// Position of the key when this node is a mapping value.
    key_pos: Option<&'a Pos>,
    unknown: &'a RefCell<Vec<UnknownKey>>,
}

fn parse_int(s: &str) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = digits.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let body = s.trim_start_matches(['-', '+']);
    let numeric = body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if numeric { s.parse().ok() } else { None }
}

impl<'a> De<'a> {
    fn child(&self, node: &'a Node, path: String, key_pos: Option<&'a Pos>) -> Self {
        De {
            node,
            path,
            key_pos,
            unknown: self.unknown,
        }
    }

    fn any<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let node = self.node;
        let r = match &node.kind {
            Kind::Scalar { text, plain } => {
                if !plain {
                    visitor.visit_str(text)
                } else if node.is_null() {
                    visitor.visit_unit()
                } else if matches!(text.as_str(), "true" | "True" | "TRUE") {
                    visitor.visit_bool(true)
                } else if matches!(text.as_str(), "false" | "False" | "FALSE") {
                    visitor.visit_bool(false)
                } else if let Some(i) = parse_int(text) {
                    if let Ok(u) = u64::try_from(i) {
                        visitor.visit_u64(u)
                    } else if let Ok(i) = i64::try_from(i) {
                        visitor.visit_i64(i)
                    } else {
                        visitor.visit_str(text)
                    }
                } else if let Some(f) = parse_float(text) {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            Kind::Seq(_) => self.seq(visitor),
            Kind::Map(_) => self.map(visitor),
        };
        at(r, &node.pos)
    }

    fn seq<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let Kind::Seq(items) = &self.node.kind else {
            return self.any(visitor);
        };
        let r = visitor.visit_seq(SeqAccess {
            de: &self,
            items: items.iter(),
            index: 0,
        });
        at(r, &self.node.pos)
    }

    fn map<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let entries: &[(Node, Node)] = match &self.node.kind {
            Kind::Map(entries) => entries,
            // `key:` with nothing after it: an empty block.
            _ if self.node.is_null() => &[],
            _ => return self.any(visitor),
        };
        let r = visitor.visit_map(MapAccess {
            de: &self,
            entries: entries.iter(),
            value: None,
        });
        at(r, &self.node.pos)
    }
}

struct SeqAccess<'a, 'b> {
    de: &'b De<'a>,
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.de.path, self.index);
        self.index += 1;
        seed.deserialize(self.de.child(item, path, None)).map(Some)
    }
}

struct MapAccess<'a, 'b> {
    de: &'b De<'a>,
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a (Node, Node)>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let key = &entry.0;
        // Keys are read as text whatever they look like (`2027: …` is a name).
        let r = match &key.kind {
            Kind::Scalar { text, .. } => seed.deserialize(text.as_str().into_deserializer()),
            _ => seed.deserialize(self.de.child(key, self.de.path.clone(), None)),
        };
        at(r, &key.pos).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((k, v)) = self.value.take() else {
            return Err(de::Error::custom("value without a key"));
        };
        let name = k.as_str().unwrap_or("?");
        let path = if self.de.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.de.path)
        };
        seed.deserialize(self.de.child(v, path, Some(&k.pos)))
    }
}

struct EnumAccess<'a> {
    de: De<'a>,
    variant: &'a Node,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = DeError;
    type Variant = De<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, De<'a>), DeError> {
        let name = self.variant.as_str().unwrap_or_default();
        let v = at(seed.deserialize(name.into_deserializer()), &self.variant.pos)?;
        Ok((v, self.de))
    }
}

impl<'de> de::VariantAccess<'de> for De<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.map(visitor)
    }
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.any(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Any non-null scalar reads as text: `name: 2027` is the name "2027".
        match &self.node.kind {
            Kind::Scalar { text, .. } if !self.node.is_null() => at(visitor.visit_str(text), &self.node.pos),
            _ => self.any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            let pos = self.node.pos.clone();
            at(visitor.visit_some(self), &pos)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos.clone();
        at(visitor.visit_newtype_struct(self), &pos)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let node = self.node;
        let r = match &node.kind {
            Kind::Scalar { .. } => visitor.visit_enum(EnumAccess {
                variant: node,
                de: self.child(node, String::new(), None),
            }),
            Kind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                let path = format!("{}.{}", self.path, k.as_str().unwrap_or("?"));
                visitor.visit_enum(EnumAccess {
                    variant: k,
                    de: self.child(v, path, Some(&k.pos)),
                })
            }
            _ => Err(de::Error::custom("expected a name, or a mapping with a single key")),
        };
        at(r, &node.pos)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Serde asks to skip a value only for a key that no field takes.
        if let Some(pos) = self.key_pos {
            self.unknown.borrow_mut().push(UnknownKey {
                path: self.path.clone(),
                pos: pos.clone(),
            });
        }
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<str> {
        Arc::from("t.yaml")
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse("a: 1\nb:\n  c: x\n", &file()).unwrap();
        let idx = index(&root);
        assert_eq!(idx["b.c"].to_string(), "t.yaml:3:3");
        assert_eq!(idx["a"].to_string(), "t.yaml:1:1");
    }

    #[test]
    fn merge_keys_explicit_wins_first_source_wins() {
        let root = parse(
            "d1: &d1 {a: 1, b: 1}\nd2: &d2 {b: 2, c: 2}\nx:\n  <<: [*d1, *d2]\n  a: 0\n",
            &file(),
        )
        .unwrap();
        let Kind::Map(top) = &root.kind else { panic!() };
        let Kind::Map(x) = &top[2].1.kind else { panic!() };
        let got: Vec<(&str, &str)> = x
            .iter()
            .map(|(k, v)| (k.as_str().unwrap(), v.as_str().unwrap()))
            .collect();
        assert_eq!(got, vec![("a", "0"), ("b", "1"), ("c", "2")]);
    }

    #[test]
    fn duplicate_keys_and_bad_merges_are_refused() {
        let e = parse("a: 1\nb: 2\na: 3\n", &file()).unwrap_err();
        assert_eq!(
            (e.pos.line, e.message.as_str()),
            (3, "duplicate key \"a\" (also at line 1)")
        );
        let e = parse("a:\n  <<: 3\n", &file()).unwrap_err();
        assert!(e.message.contains("merge key"), "{}", e.message);
    }

    #[test]
    fn depth_is_bounded_in_flow_block_and_alias_form() {
        let deep = format!("x: {}{}", "[".repeat(65), "]".repeat(65));
        assert!(parse(&deep, &file()).unwrap_err().message.contains("64 levels"));
        let ok = format!("x: {}{}", "[".repeat(63), "]".repeat(63));
        assert!(parse(&ok, &file()).is_ok());
        let mut block = String::new();
        for i in 0..70 {
            block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        assert!(parse(&block, &file()).unwrap_err().message.contains("64 levels"));
        let alias = format!(
            "a: &a {}{}\nb: {}*a{}\n",
            "[".repeat(40),
            "]".repeat(40),
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(parse(&alias, &file()).unwrap_err().message.contains("64 levels"));
    }

    #[test]
    fn aliases_of_aliases_are_bounded() {
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            y.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        assert!(parse(&y, &file()).unwrap_err().message.contains("expands to more than"));
    }

    #[test]
    fn bom_empty_and_multi_document() {
        assert!(parse("\u{feff}a: 1\n", &file()).is_ok());
        assert!(matches!(parse("", &file()).unwrap().kind, Kind::Map(ref m) if m.is_empty()));
        assert!(
            parse("a: 1\n---\nb: 2\n", &file())
                .unwrap_err()
                .message
                .contains("more than one")
        );
    }
}
