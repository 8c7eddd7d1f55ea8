//! Path expressions: where a profile field is in a provider's JSON answer,
//! written in the configuration rather than in code.
//!
//! - `picture.data.url`: keys of nested objects;
//! - `images.0.url`: a number indexes an array;
//! - `emails[primary=true].email`: the first element of the array `emails`
//!   whose `primary` is `true` (compared as text, so `[id=7]` matches a
//!   number and `[type=work]` a string); `[primary=true].email` filters the
//!   document itself when it is an array;
//! - `data.email | email`: the first alternative that gives a value (not
//!   `null`, not an empty string);
//! - `https://cdn.example/avatars/{id}/{avatar}.png`: a template, text
//!   with paths in braces; it gives a value only when every path does.
//!
//! A key that itself holds `.`, `[`, `]`, `=`, `|`, `{` or `}` cannot be
//! named.

use serde_json::Value;

/// The text `expr` names in `doc` (a string, a number, `true` or
/// `false`), if any.
pub fn read(doc: &Value, expr: &str) -> Option<String> {
    expr.split('|').find_map(|alternative| {
        let alternative = alternative.trim();
        if alternative.contains('{') {
            render(doc, alternative)
        } else {
            value(doc, alternative).and_then(text)
        }
        .filter(|t| !t.is_empty())
    })
}

/// The value one path (no alternatives, no template) names.
fn value<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = doc;
    for segment in segments(path) {
        at = step(at, segment.ok()?)?;
    }
    (!at.is_null()).then_some(at)
}

/// A template's text, when every path in it gives one.
fn render(doc: &Value, template: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let part = value(doc, &rest[open + 1..close])
            .and_then(text)
            .filter(|t| !t.is_empty())?;
        out.push_str(&part);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Why `expr` cannot be read, if it cannot.
pub fn check(expr: &str) -> Result<(), String> {
    for alternative in expr.split('|') {
        let alternative = alternative.trim();
        if alternative.is_empty() {
            return Err(format!("{expr:?}: an empty alternative"));
        }
        let paths: Vec<&str> = if alternative.contains(['{', '}']) {
            template_paths(alternative).ok_or_else(|| {
                format!("{expr:?}: a template's paths are in {{braces}}, one pair each")
            })?
        } else {
            vec![alternative]
        };
        for path in paths {
            for segment in segments(path) {
                segment.map_err(|why| format!("{expr:?}: {why}"))?;
            }
        }
    }
    Ok(())
}

/// The paths of a template, if its braces pair up around non-empty paths.
fn template_paths(template: &str) -> Option<Vec<&str>> {
    let mut paths = Vec::new();
    let mut rest = template;
    loop {
        let open = rest.find('{');
        let close = rest.find('}');
        match (open, close) {
            (None, None) => return Some(paths),
            (Some(o), Some(c)) if o < c => {
                let path = &rest[o + 1..c];
                if path.is_empty() || path.contains('{') {
                    return None;
                }
                paths.push(path);
                rest = &rest[c + 1..];
            }
            _ => return None,
        }
    }
}

/// One step of a path: a key (or array index) and an optional filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment<'a> {
    key: &'a str,
    filter: Option<(&'a str, &'a str)>,
}

fn segments(path: &str) -> impl Iterator<Item = Result<Segment<'_>, &'static str>> {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let current = rest?;
        // A `.` inside a filter's brackets does not end the segment.
        let mut depth = 0usize;
        let end = current.char_indices().find_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                '.' if depth == 0 => return Some(i),
                _ => {}
            }
            None
        });
        let (segment, next) = match end {
            Some(i) => (&current[..i], Some(&current[i + 1..])),
            None => (current, None),
        };
        rest = next;
        Some(parse(segment))
    })
}

fn parse(segment: &str) -> Result<Segment<'_>, &'static str> {
    let Some(open) = segment.find('[') else {
        if segment.is_empty() || segment.contains([']', '=']) {
            return Err("an empty or unreadable key");
        }
        return Ok(Segment {
            key: segment,
            filter: None,
        });
    };
    let inner = segment[open + 1..]
        .strip_suffix(']')
        .ok_or("a filter ends with `]`")?;
    let (field, value) = inner.split_once('=').ok_or("a filter is `[field=value]`")?;
    if field.is_empty() || inner.contains(['[', ']']) {
        return Err("a filter is `[field=value]`");
    }
    Ok(Segment {
        key: &segment[..open],
        filter: Some((field, value)),
    })
}

fn step<'a>(at: &'a Value, segment: Segment<'_>) -> Option<&'a Value> {
    let at = match (segment.key, at) {
        ("", v) => v,
        (key, Value::Array(items)) => items.get(key.parse::<usize>().ok()?)?,
        (key, v) => v.get(key)?,
    };
    match segment.filter {
        None => Some(at),
        Some((field, wanted)) => at
            .as_array()?
            .iter()
            .find(|item| item.get(field).and_then(text).as_deref() == Some(wanted)),
    }
}

/// A scalar as text (`true`, `7`, `work`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_objects_arrays_filters_and_alternatives() {
        let doc = json!({
            "data": {"id": 7, "attributes": {"email": "a@example.test"}},
            "images": [{"url": "https://img/0"}, {"url": "https://img/1"}],
            "emails": [
                {"email": "old@example.test", "primary": false, "verified": true},
                {"email": "main@example.test", "primary": true, "verified": false},
            ],
            "empty": "",
            "nothing": null,
            "dotted": {"a.b": 1},
        });
        let get = |expr| read(&doc, expr);
        assert_eq!(get("data.id").as_deref(), Some("7"));
        assert_eq!(
            get("data.attributes.email").as_deref(),
            Some("a@example.test")
        );
        assert_eq!(get("images.1.url").as_deref(), Some("https://img/1"));
        assert_eq!(get("images.2.url"), None);
        assert_eq!(get("images.x.url"), None);
        assert_eq!(
            get("emails[primary=true].email").as_deref(),
            Some("main@example.test")
        );
        assert_eq!(
            get("emails[primary=true].verified").as_deref(),
            Some("false")
        );
        assert_eq!(get("emails[primary=maybe].email"), None);
        assert_eq!(get("data[id=7]"), None, "a filter needs an array");
        assert_eq!(get("empty | data.id").as_deref(), Some("7"));
        assert_eq!(get("nothing | missing | data.id").as_deref(), Some("7"));
        assert_eq!(get("missing"), None);
        assert_eq!(get("dotted.a.b"), None);
        let list = json!([{"email": "x@example.test", "is_primary": true}]);
        assert_eq!(
            read(&list, "[is_primary=true].email").as_deref(),
            Some("x@example.test")
        );
        assert_eq!(read(&list, "0.email").as_deref(), Some("x@example.test"));
        assert_eq!(
            read(&json!({"a": [{"k": "v.w", "x": 1}]}), "a[k=v.w].x").as_deref(),
            Some("1")
        );
        let discord =
            json!({"id": "80351110224678912", "avatar": "8342729096ea3675442027381ff50dfe"});
        assert_eq!(
            read(
                &discord,
                "https://cdn.discordapp.com/avatars/{id}/{avatar}.png"
            )
            .as_deref(),
            Some(
                "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
            )
        );
        let no_avatar = json!({"id": "80351110224678912", "avatar": null});
        assert_eq!(
            read(
                &no_avatar,
                "https://cdn.example/{id}/{avatar}.png | https://cdn.example/embed/{id}.png"
            )
            .as_deref(),
            Some("https://cdn.example/embed/80351110224678912.png")
        );
    }

    #[test]
    fn unreadable_paths_are_named() {
        for good in [
            "sub", "a.b", "a.0", "a[b=c].d", "[b=c].d", "a | b", "a[b=].c",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "", "a.", ".a", "a..b", "a[b", "a[b]", "a[=c]", "a | ", "a]", "a=b", "a[b=c]d",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
