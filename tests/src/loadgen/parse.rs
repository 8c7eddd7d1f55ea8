//! Pure helpers: command-line values, the target's address, and what the
//! service's answers say.

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// `60s`, `500ms`, `2m`, `1h`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}`: expected a duration such as 60s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// The load may only go to this machine: the base URL's host must be
/// `localhost`, an address in 127.0.0.0/8 or `[::1]`, over plain http.
pub fn check_loopback(base: &url::Url) -> Result<(), String> {
    if base.scheme() != "http" {
        return Err(format!(
            "{base}: only http:// is supported (the target is on this machine)"
        ));
    }
    match base.host() {
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Ok(()),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
        Some(url::Host::Ipv6(ip)) if ip == Ipv6Addr::LOCALHOST => Ok(()),
        _ => Err(format!(
            "{base}: refusing a non-loopback base URL (use localhost, 127.0.0.0/8 or [::1])"
        )),
    }
}

/// An address a loopback name resolved to is really on this machine.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

/// The `state` query parameter of an authorization URL, percent-decoded.
pub fn state_param(authorization_url: &str) -> Option<String> {
    let query = authorization_url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// The longest error value kept in an error kind (keeps kinds few).
const MAX_VALUE_CHARS: usize = 48;

/// What went wrong, as a short kind: `<step> http <status> <key>=<value>`
/// from the first member of the JSON error body (`{"non_field_errors":
/// ["invalid_state"]}` → `non_field_errors=invalid_state`).
pub fn http_error_kind(step: &str, status: u16, body: &[u8]) -> String {
    format!("{step} http {status} {}", first_error(body))
}

/// The first member of a JSON object body, in document order, as
/// `key=value` (value shown when it is a string or starts with one).
pub fn first_error(body: &[u8]) -> String {
    let mut de = serde_json::Deserializer::from_slice(body);
    match (&mut de).deserialize_map(FirstMember) {
        Ok(Some((key, value))) => describe(&key, &value),
        Ok(None) => "{}".to_owned(),
        Err(_) if body.is_empty() => "(empty body)".to_owned(),
        Err(_) => "(not a JSON object)".to_owned(),
    }
}

/// The first member of a JSON error value (a failed job's `error`).
pub fn first_error_of(value: &Value) -> String {
    match value.as_object().and_then(|m| m.iter().next()) {
        Some((key, value)) => describe(key, value),
        None => "(no error object)".to_owned(),
    }
}

fn describe(key: &str, value: &Value) -> String {
    let text = match value {
        Value::String(s) => Some(s.as_str()),
        Value::Array(items) => items.first().and_then(Value::as_str),
        _ => None,
    };
    match text {
        Some(t) => {
            let short: String = t.chars().take(MAX_VALUE_CHARS).collect();
            format!("{key}={short}")
        }
        None => key.to_owned(),
    }
}

struct FirstMember;

impl<'de> Visitor<'de> for FirstMember {
    type Value = Option<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Ok(None);
        };
        let value = map.next_value::<Value>()?;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Some((key, value)))
    }
}

/// Nearest-rank percentile `p` (0–100] of ascending `sorted`.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn only_loopback_base_urls_are_accepted() {
        let ok = |s: &str| check_loopback(&url::Url::parse(s).expect("url"));
        assert!(ok("http://127.0.0.1:8000").is_ok());
        assert!(ok("http://127.8.9.10:8000/prefix").is_ok());
        assert!(ok("http://localhost:8000").is_ok());
        assert!(ok("http://[::1]:8000").is_ok());
        assert!(ok("http://10.0.0.1:8000").is_err());
        assert!(ok("http://example.com").is_err());
        assert!(ok("http://[::2]:8000").is_err());
        assert!(ok("https://127.0.0.1:8000").is_err());
        assert!(ok("http://localhost.example.com").is_err());
    }

    #[test]
    fn the_state_is_read_from_the_authorization_url() {
        let url = "http://idp/authorize?response_type=code&client_id=b\
                   &redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=Ab-_x%2Fy&scope=a+b";
        assert_eq!(state_param(url).as_deref(), Some("Ab-_x/y"));
        assert_eq!(
            state_param("http://idp/a?x=1&state=s#frag").as_deref(),
            Some("s")
        );
        assert_eq!(state_param("http://idp/a?mystate=1"), None);
        assert_eq!(state_param("http://idp/a?state="), None);
        assert_eq!(state_param("http://idp/a"), None);
    }

    #[test]
    fn an_error_kind_names_the_first_member_in_document_order() {
        assert_eq!(
            http_error_kind(
                "complete",
                400,
                br#"{"non_field_errors":["invalid_state"]}"#
            ),
            "complete http 400 non_field_errors=invalid_state"
        );
        assert_eq!(
            first_error(br#"{"provider":["Invalid provider"],"code":["x"]}"#),
            "provider=Invalid provider"
        );
        assert_eq!(
            first_error(br#"{"non_field_errors":"invalid_credentials"}"#),
            "non_field_errors=invalid_credentials"
        );
        assert_eq!(
            first_error(br#"{"email":"no_email_provided","partial_token":"t"}"#),
            "email=no_email_provided"
        );
        assert_eq!(first_error(br#"{"detail":{"a":1}}"#), "detail");
        assert_eq!(first_error(b"<html>"), "(not a JSON object)");
        assert_eq!(first_error(b""), "(empty body)");
        assert_eq!(first_error(b"{}"), "{}");
        let long = format!(r#"{{"x":"{}"}}"#, "y".repeat(100));
        assert_eq!(first_error(long.as_bytes()).len(), 2 + MAX_VALUE_CHARS);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 99.9), Some(100));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[1, 2], 0.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
