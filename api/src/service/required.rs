//! The one place a request's required fields are collected: every missing
//! (absent or empty) field is named at once, `{"<field>": ["This field is
//! required."], …}`, as DRF does.

use crate::error::ApiError;
use socialauth_common::secret::Secret;

/// Fields a request must have, gathered before it is refused or served.
#[derive(Default)]
pub struct Required {
    missing: Vec<&'static str>,
}

/// A value that can be missing: absent, or present but empty.
pub trait Field: Sized {
    fn is_empty(&self) -> bool;
}

impl Field for String {
    fn is_empty(&self) -> bool {
        str::is_empty(self)
    }
}

impl Field for Secret {
    fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl Required {
    /// `value` when present and not empty; otherwise `field` is missing.
    pub fn field<T: Field>(&mut self, field: &'static str, value: Option<T>) -> Option<T> {
        let value = present(value);
        if value.is_none() {
            self.missing.push(field);
        }
        value
    }

    /// `value` when `needed` is false or it is present; otherwise `field`
    /// is missing. The value itself stays optional.
    pub fn field_if<T: Field>(
        &mut self,
        needed: bool,
        field: &'static str,
        value: Option<T>,
    ) -> Option<T> {
        let value = present(value);
        if needed && value.is_none() {
            self.missing.push(field);
        }
        value
    }

    /// The request's values, `values()` giving them once nothing is
    /// missing; the missing fields' error otherwise.
    pub fn check<T>(self, values: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        if self.missing.is_empty()
            && let Some(values) = values()
        {
            return Ok(values);
        }
        Err(ApiError::required(&self.missing))
    }
}

/// `value` unless it is absent or empty.
pub fn present<T: Field>(value: Option<T>) -> Option<T> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_or_empty_field_is_named_at_once() {
        let mut need = Required::default();
        let a = need.field("a", Some("x".to_owned()));
        let b = need.field("b", Some(String::new()));
        let c = need.field::<Secret>("c", None);
        let d = need.field_if(false, "d", None::<String>);
        let e = need.field_if(true, "e", None::<String>);
        assert_eq!(a.as_deref(), Some("x"));
        assert!(b.is_none() && c.is_none() && d.is_none() && e.is_none());
        let err = need.check(|| Some(())).expect_err("missing");
        assert_eq!(
            err.parts().1,
            serde_json::json!({"b": ["This field is required."], "c": ["This field is required."],
                               "e": ["This field is required."]})
        );
        let mut need = Required::default();
        let a = need.field("a", Some("x".to_owned()));
        assert_eq!(need.check(|| a).expect("all there"), "x");
    }
}
