//! The generic STAR syntax: data blocks, key-value pairs and `loop_` tables, as RELION reads them.

use crate::error::IoError;
use std::path::Path;

/// A parsed STAR file: its data blocks in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StarFile {
    pub blocks: Vec<StarBlock>,
}

/// One `data_NAME` block: key-value pairs and loops, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StarBlock {
    /// The name after `data_` (may be empty).
    pub name: String,
    /// `_key value` pairs (key without the leading underscore).
    pub pairs: Vec<(String, String)>,
    pub loops: Vec<StarLoop>,
}

/// One `loop_` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StarLoop {
    /// Column names without the leading underscore.
    pub columns: Vec<String>,
    /// Rows of values (quotes removed), each as long as `columns`.
    pub rows: Vec<Vec<String>>,
    /// 1-based line number of each row.
    pub row_lines: Vec<usize>,
}

impl StarLoop {
    /// Index of column `name` (without underscore).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

impl StarFile {
    /// The block called `name`.
    pub fn block(&self, name: &str) -> Option<&StarBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

/// Splits one line into values, removing quotes and a trailing `#` comment. `Err` holds a message
/// for an unterminated quote.
pub(super) fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        if c == '\'' || c == '"' {
            // A quoted value ends at the same quote followed by whitespace or the line end.
            let mut j = i + 1;
            loop {
                if j >= chars.len() {
                    return Err(format!("unterminated {c} quote"));
                }
                if chars[j] == c && (j + 1 == chars.len() || chars[j + 1].is_whitespace()) {
                    break;
                }
                j += 1;
            }
            out.push(chars[i + 1..j].iter().collect());
            i = j + 1;
        } else {
            let mut j = i;
            while j < chars.len() && !chars[j].is_whitespace() {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    Ok(out)
}

/// Parses STAR text; `path` names the file in errors.
pub fn parse_star(text: &str, path: &Path) -> Result<StarFile, IoError> {
    #[derive(PartialEq)]
    enum State {
        Outside,
        Block,
        LoopHeader,
        LoopRows,
    }
    let mut file = StarFile::default();
    let mut state = State::Outside;
    let err = |line: usize, m: String| IoError::format(path, format!("line {line}: {m}"));
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            if state == State::LoopRows {
                state = State::Block;
            }
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("data_") {
            file.blocks.push(StarBlock {
                name: name.trim().to_string(),
                ..Default::default()
            });
            state = State::Block;
            continue;
        }
        let Some(block) = file.blocks.last_mut() else {
            return Err(err(line_no, format!("'{trimmed}' before any data_ block")));
        };
        if trimmed == "loop_" || trimmed.starts_with("loop_ ") || trimmed.starts_with("loop_\t") {
            block.loops.push(StarLoop::default());
            state = State::LoopHeader;
            continue;
        }
        if trimmed.starts_with('_') {
            let tokens = tokenize(trimmed).map_err(|m| err(line_no, m))?;
            let name = tokens[0][1..].to_string();
            match state {
                State::LoopHeader => {
                    if let Some(l) = block.loops.last_mut() {
                        l.columns.push(name);
                    }
                }
                _ => {
                    // A key-value pair (also ends a loop).
                    state = State::Block;
                    let value = tokens
                        .get(1)
                        .cloned()
                        .ok_or_else(|| err(line_no, format!("_{name} has no value")))?;
                    if tokens.len() > 2 {
                        return Err(err(
                            line_no,
                            format!("_{name} has {} values, expected one", tokens.len() - 1),
                        ));
                    }
                    block.pairs.push((name, value));
                }
            }
            continue;
        }
        match state {
            State::LoopHeader | State::LoopRows => {
                state = State::LoopRows;
                let tokens = tokenize(raw).map_err(|m| err(line_no, m))?;
                let Some(l) = block.loops.last_mut() else {
                    continue;
                };
                if l.columns.is_empty() {
                    return Err(err(line_no, "loop_ without columns".into()));
                }
                if tokens.len() != l.columns.len() {
                    return Err(err(
                        line_no,
                        format!(
                            "row has {} values but the loop has {} columns",
                            tokens.len(),
                            l.columns.len()
                        ),
                    ));
                }
                l.rows.push(tokens);
                l.row_lines.push(line_no);
            }
            _ => {
                return Err(err(
                    line_no,
                    format!("unexpected '{trimmed}' outside a loop"),
                ))
            }
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_handles_quotes_and_comments() {
        assert_eq!(
            tokenize("a 'b c' \"\" d # e").unwrap(),
            vec!["a", "b c", "", "d"]
        );
        assert_eq!(tokenize("_rlnX #1").unwrap(), vec!["_rlnX"]);
        assert_eq!(tokenize("it's fine").unwrap(), vec!["it's", "fine"]);
        assert!(tokenize("'open").is_err());
    }

    #[test]
    fn parses_pairs_loops_and_empty_loops() {
        let text = "# c\ndata_general\n_rlnA 1.5\n_rlnB 'x y'\n\ndata_p\nloop_\n_rlnX #1\n_rlnY #2\n1 2\n3 4\n\ndata_e\nloop_\n_rlnX\n";
        let f = parse_star(text, Path::new("t.star")).unwrap();
        assert_eq!(f.blocks.len(), 3);
        assert_eq!(
            f.blocks[0].pairs,
            vec![("rlnA".into(), "1.5".into()), ("rlnB".into(), "x y".into())]
        );
        let l = &f.blocks[1].loops[0];
        assert_eq!(l.columns, vec!["rlnX", "rlnY"]);
        assert_eq!(l.rows, vec![vec!["1", "2"], vec!["3", "4"]]);
        assert_eq!(l.row_lines, vec![10, 11]);
        assert!(f.blocks[2].loops[0].rows.is_empty());
    }

    #[test]
    fn ragged_row_names_its_line() {
        let e = parse_star("data_\nloop_\n_a\n_b\n1 2\n3\n", Path::new("t.star"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.star: line 6: row has 1 values but the loop has 2 columns"
        );
    }
}
