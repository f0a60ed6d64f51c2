//! A map from YAML paths to the line where each node is written.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser};

use crate::path::YamlPath;

/// Where each mapping key and sequence item of a document starts.
#[derive(Debug, Default)]
pub(crate) struct LineMap {
    lines: HashMap<YamlPath, usize>,
    /// Keys written twice in the same mapping: path and line of the repeat.
    pub(crate) duplicates: Vec<(YamlPath, usize)>,
}

enum Frame {
    Mapping {
        path: YamlPath,
        /// The key whose value comes next, or `None` when a key comes next.
        key: Option<String>,
        /// Keys seen so far.
        seen: HashSet<String>,
    },
    Sequence {
        path: YamlPath,
        next: usize,
    },
}

impl LineMap {
    /// Builds the map for the first document of `yaml`. Syntax errors stop
    /// the walk (they are reported by the deserializer); what was seen so far is kept.
    pub(crate) fn build(yaml: &str) -> LineMap {
        let mut map = LineMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(yaml);
        while let Some(Ok((event, span))) = parser.next_event() {
            let line = span.start.line();
            match event {
                Event::DocumentEnd | Event::StreamEnd => break,
                Event::Scalar(text, ..) => {
                    if let Some(Frame::Mapping {
                        path,
                        key: key @ None,
                        seen,
                    }) = stack.last_mut()
                    {
                        let key_path = path.key(text.as_ref());
                        if !seen.insert(text.to_string()) {
                            map.duplicates.push((key_path.clone(), line));
                        }
                        map.lines.entry(key_path).or_insert(line);
                        *key = Some(text.into_owned());
                    } else {
                        map.node_value(&mut stack, line);
                    }
                }
                Event::Alias(_) => {
                    map.node_value(&mut stack, line);
                }
                Event::MappingStart(..) => {
                    let path = map.node_value(&mut stack, line);
                    stack.push(Frame::Mapping {
                        path,
                        key: None,
                        seen: HashSet::new(),
                    });
                }
                Event::SequenceStart(..) => {
                    let path = map.node_value(&mut stack, line);
                    stack.push(Frame::Sequence { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    // The finished container was the value of a key: a key comes next.
                    if let Some(Frame::Mapping { key, .. }) = stack.last_mut() {
                        *key = None;
                    }
                }
                _ => {}
            }
        }
        map
    }

    /// Records a value node starting at `line` and returns its path.
    fn node_value(&mut self, stack: &mut [Frame], line: usize) -> YamlPath {
        match stack.last_mut() {
            None => {
                self.lines.entry(YamlPath::root()).or_insert(line);
                YamlPath::root()
            }
            Some(Frame::Sequence { path, next }) => {
                let item = path.index(*next);
                *next += 1;
                self.lines.entry(item.clone()).or_insert(line);
                item
            }
            Some(Frame::Mapping { path, key, .. }) => match key.take() {
                Some(k) => path.key(k),
                // A complex (non-scalar) key: not addressable by a path.
                None => path.key("?"),
            },
        }
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub(crate) fn line_of(&self, path: &YamlPath) -> Option<usize> {
        let mut p = path.clone();
        loop {
            if let Some(line) = self.lines.get(&p) {
                return Some(*line);
            }
            if p.0.is_empty() {
                return None;
            }
            p = p.parent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items() {
        let yaml = "a: 1\nb:\n  c: x\n  d:\n    - 1\n    - e: 2\n      f: [3, 4]\ng: {h: 5}\n";
        let m = LineMap::build(yaml);
        let r = YamlPath::root();
        assert_eq!(m.line_of(&r.key("a")), Some(1));
        assert_eq!(m.line_of(&r.key("b")), Some(2));
        assert_eq!(m.line_of(&r.key("b").key("c")), Some(3));
        assert_eq!(m.line_of(&r.key("b").key("d").index(0)), Some(5));
        assert_eq!(m.line_of(&r.key("b").key("d").index(1)), Some(6));
        assert_eq!(m.line_of(&r.key("b").key("d").index(1).key("f")), Some(7));
        assert_eq!(m.line_of(&r.key("g").key("h")), Some(8));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(m.line_of(&r.key("b").key("d").index(1).key("zz")), Some(6));
        assert!(m.duplicates.is_empty());
    }

    #[test]
    fn duplicate_keys() {
        let m = LineMap::build("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n");
        let r = YamlPath::root();
        assert_eq!(
            m.duplicates,
            vec![(r.key("b").key("c"), 4), (r.key("a"), 5)]
        );
    }
}
