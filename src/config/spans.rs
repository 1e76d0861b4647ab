//! Where keys sit in a TOML text, so that errors point at a line and name
//! the setting: toml reports a byte offset for a value of the wrong type
//! but not its key, and [`super::Invalid`] knows the key but not the line.

use std::ops::Range;

use toml_edit::{ImDocument, TableLike};

/// A key of the text as a dotted path (`tracker.interval`), with where the
/// key and its value are written.
struct Placed {
    path: String,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

/// Every key of `text`, sections and the settings in them; nothing if the
/// text is no TOML at all.
fn keys(text: &str) -> Vec<Placed> {
    fn walk(prefix: &str, table: &dyn TableLike, out: &mut Vec<Placed>) {
        for (name, item) in table.iter() {
            let path = match prefix {
                "" => name.to_string(),
                _ => format!("{prefix}.{name}"),
            };
            out.push(Placed {
                path: path.clone(),
                key: table.get_key_value(name).and_then(|(key, _)| key.span()),
                value: item.span(),
            });
            if let Some(inner) = item.as_table_like() {
                walk(&path, inner, out);
            }
        }
    }
    let mut found = Vec::new();
    if let Ok(document) = ImDocument::parse(text) {
        walk("", document.as_table(), &mut found);
    }
    found
}

/// The line (from 1) holding byte `offset` of `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `text` that sets `key` (`section.name`), if it does.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let placed = keys(text).into_iter().find(|p| p.path == key)?;
    Some(line_at(text, placed.key.or(placed.value)?.start))
}

/// The setting an error at byte `offset` is about: the key whose value
/// holds it, or, when it points at a key itself (an unknown one), the
/// section that key is in.
pub fn key_at(text: &str, offset: usize) -> Option<String> {
    let holds = |span: &Option<Range<usize>>| span.as_ref().is_some_and(|s| s.contains(&offset));
    let placed = keys(text);
    if let Some(named) = placed.iter().find(|p| holds(&p.key)) {
        return named
            .path
            .rsplit_once('.')
            .map(|(section, _)| section.to_string());
    }
    // A section written as an inline table holds its settings' values:
    // the innermost path is the one meant.
    placed
        .into_iter()
        .filter(|p| holds(&p.value))
        .max_by_key(|p| p.path.matches('.').count())
        .map(|p| p.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_line_and_by_offset() {
        let toml = "[log]\nlevel = \"warn\"\n[tracker]\n\n  interval = 0\n";
        assert_eq!(line_of(toml, "tracker.interval"), Some(5));
        assert_eq!(
            line_of("tracker.interval = 0\n", "tracker.interval"),
            Some(1)
        );
        assert_eq!(
            line_of("\ntracker = { interval = 0 }", "tracker.interval"),
            Some(2)
        );
        assert_eq!(line_of(toml, "tracker.peer_timeout"), None);

        let at = |text: &str, needle: &str| key_at(text, text.find(needle).unwrap());
        assert_eq!(at(toml, "0\n").as_deref(), Some("tracker.interval"));
        assert_eq!(at(toml, "\"warn").as_deref(), Some("log.level"));
        let dotted = "tracker.numwant = -1\n";
        assert_eq!(at(dotted, "-1").as_deref(), Some("tracker.numwant"));
        let inline = "tracker = { user = 5 }\n";
        assert_eq!(at(inline, "5").as_deref(), Some("tracker.user"));
        let array = "[listen]\nudp = [\"a\",\n  5]\n";
        assert_eq!(at(array, "5").as_deref(), Some("listen.udp"));
        // An unknown key names its section, or nothing at the top.
        assert_eq!(at("[http]\nbogus = 1\n", "bogus").as_deref(), Some("http"));
        assert_eq!(at("bogus = 1\n", "bogus"), None);
        assert_eq!(key_at("not toml", 2), None);
    }
}
