//! What the OpenAPI document says beyond the handlers: the error bodies
//! `ApiError` renders as named schemas, the responses every route can give
//! (the guard's 429 and 503, the body extractor's 413 and 415, the
//! router's 405) and examples of the main success bodies.
//!
//! The types here are never sent: they describe, for the document, the
//! JSON that `crate::error` builds.

use crate::error::{ApiError, Flow};
use crate::service::views::{
    AuthorizationUrl, JobAccepted, MeView, SocialAccountView, TokenResponse, UserView,
};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use socialauth_common::jobs::{JobError, LoginResult};
use socialauth_common::secret::Secret;
use socialauth_common::types::{SocialAccount, User, UserId};
use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{Components, Schema, Type};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

/// The body `error` is answered with: a route's example, made by the code
/// that answers it.
pub fn body(error: ApiError) -> Value {
    error.parts().1
}

/// A partial token as a resumable error carries it.
const PARTIAL_TOKEN: &str = "q7ZJ0m2hW9rXcV4pN1sKfT8yB3uLdE6gA5oRiM0jH2w";

/// The body of `no_email_provided` with its partial token, as `flow`'s
/// routes answer it.
pub fn no_email_provided(flow: Flow) -> Value {
    body(ApiError::Job(
        JobError::NoEmailProvided {
            partial_token: Some(Secret::new(PARTIAL_TOKEN.to_owned())),
            partial_job: None,
        },
        flow,
    ))
}

/// `{"detail": "<message>"}`: a refusal explained in words (401, 404, 405,
/// 413, 415, 429, 500, 503).
#[derive(Serialize, ToSchema)]
#[schema(example = json!(body(ApiError::NotFound)))]
pub struct Detail {
    pub detail: String,
}

/// `{"non_field_errors": ["<code>"]}`: a conflict (409:
/// `needs_reauth`, `social_account_already_associated`,
/// `cannot_disconnect_last_login`, `campaign_not_running`,
/// `reencryption_running`, `reencryption_not_running`), or
/// `provider_unavailable` (503, in every flow).
#[derive(Serialize, ToSchema)]
#[schema(example = json!(body(ApiError::Job(JobError::NeedsReauth, Flow::Djoser))))]
pub struct NonFieldErrors {
    pub non_field_errors: Vec<String>,
}

/// A field's errors: DRF's list of messages (`["This field is
/// required."]`), or one code (`"email_already_in_use"`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CodeOrMessages {
    Messages(Vec<String>),
    Code(String),
}

/// A 400 of the djoser-compatible routes and of every route outside
/// `/social-auth` and token login: an object whose keys are field names.
///
/// - `non_field_errors`: a list of codes (`invalid_state`,
///   `state_expired`, `invalid_credentials`, `invalid_partial_token`,
///   `signup_closed`, `inactive_user`, `redirect_uri_required`,
///   `redirect_uri_not_allowed`, `invalid_iss`, `refresh_not_supported`),
///   or `["Malformed request body: …"]`.
/// - any other field: DRF's list of messages (`{"provider": ["Invalid
///   provider"]}`, `{"code": ["This field is required."]}`), or one code
///   as a string: `email` — `no_email_provided`, `email_already_in_use`,
///   `email_not_allowed`; `referral_code` — `invalid_referral_code`,
///   `cannot_refer_yourself`, `referral_code_already_set`.
/// - `partial_token`: sent with `no_email_provided` and
///   `invalid_referral_code`; post it back with `email` or
///   `referral_code` to resume the login.
#[derive(Serialize, ToSchema)]
#[schema(example = json!(body(ApiError::NonField("invalid_state"))))]
pub struct ValidationErrors {
    /// Codes, or a malformed body's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub non_field_errors: Option<Vec<String>>,
    /// Resumes a stopped login (with `email` or `referral_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub partial_token: Option<String>,
    #[serde(flatten)]
    pub fields: BTreeMap<String, CodeOrMessages>,
}

/// A 400 of `/social-auth` and token login: as `ValidationErrors`,
/// except that `invalid_credentials` and
/// `invalid_partial_token` come as one string
/// (`{"non_field_errors": "invalid_credentials"}`); the other codes
/// (`signup_closed`, `inactive_user`, `redirect_uri_required`,
/// `redirect_uri_not_allowed`, `invalid_iss`) and a malformed body's
/// message come as a list.
#[derive(Serialize, ToSchema)]
#[schema(example = json!(body(ApiError::Job(JobError::InvalidCredentials, Flow::SocialAuth))))]
pub struct SocialAuthErrors {
    /// One code, or a list of codes or of a malformed body's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub non_field_errors: Option<CodeOrMessages>,
    /// Resumes a stopped login (with `email` or `referral_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub partial_token: Option<String>,
    #[serde(flatten)]
    pub fields: BTreeMap<String, CodeOrMessages>,
}

/// A 503 of a route that calls a provider: its breaker is open
/// (`provider_unavailable`, with `Retry-After`), or the service is busy or
/// its database or broker is away (`detail`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ProviderUnavailable {
    Provider(NonFieldErrors),
    Service(Detail),
}

// What `crate::guard` does by path (the test
// `the_guards_refusals_are_documented_where_it_gives_them` holds the two
// to each other): it never refuses the probes and metrics, and counts the
// login endpoints' requests towards a client's rate.
const UNGUARDED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
const RATE_LIMITED: [&str; 4] = [
    "/auth/o/",
    "/auth/associate/",
    "/auth/token/",
    "/social-auth",
];

// The shared responses' names in `components.responses`.
const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";
const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
const THROTTLED: &str = "Throttled";
const UNAVAILABLE: &str = "Unavailable";

/// Adds the responses every route can give to each operation that does not
/// describe them itself: 405 (any other method), 413 and 415 (a route that
/// reads a body), 429 (the login endpoints' rate) and 503 (the guard's cap
/// and time limit, a database or broker away), each a `$ref` to
/// `components.responses`.
pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Components::new);
        components
            .schemas
            .entry(Detail::name().into_owned())
            .or_insert_with(Detail::schema);
        let retry_after = |description: &str| {
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                ))
                .description(Some(description))
                .build()
        };
        let shared = [
            (
                METHOD_NOT_ALLOWED,
                ResponseBuilder::new()
                    .description("The path does not take this method; `Allow` names those it takes.")
                    .header(
                        "Allow",
                        HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .description(Some("The methods the path takes, e.g. `GET,HEAD`."))
                            .build(),
                    ),
                body(ApiError::MethodNotAllowed("PUT".into())),
            ),
            (
                PAYLOAD_TOO_LARGE,
                ResponseBuilder::new()
                    .description("The body is larger than `[server] max_body_bytes`."),
                body(ApiError::PayloadTooLarge),
            ),
            (
                UNSUPPORTED_MEDIA_TYPE,
                ResponseBuilder::new().description(
                    "The body is neither `application/json` nor `application/x-www-form-urlencoded`.",
                ),
                body(ApiError::UnsupportedMediaType),
            ),
            (
                THROTTLED,
                ResponseBuilder::new()
                    .description("Too many requests from this client address (`[server] rate_limit_per_minute`).")
                    .header("Retry-After", retry_after("Seconds until a request is taken again.")),
                body(ApiError::Throttled(12)),
            ),
            (
                UNAVAILABLE,
                ResponseBuilder::new()
                    .description("Too many requests in flight, one that took too long (both with `Retry-After: 1`), or the database or the broker is away: try again.")
                    .header("Retry-After", retry_after("Seconds to wait; sent when the service is busy.")),
                body(ApiError::Overloaded),
            ),
        ];
        for (name, response, example) in shared {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Detail::name())))
                .example(Some(example))
                .build();
            components
                .responses
                .entry(name.to_owned())
                .or_insert(response.content("application/json", content).build().into());
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let guarded = !UNGUARDED.contains(&path.as_str());
            let limited = RATE_LIMITED.iter().any(|p| path.starts_with(p));
            for operation in operations_mut(item) {
                // A response must say something: the status's reason
                // phrase where the route gave no description.
                for (status, response) in &mut operation.responses.responses {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        response.description = StatusCode::from_bytes(status.as_bytes())
                            .ok()
                            .and_then(|s| s.canonical_reason())
                            .unwrap_or("Response")
                            .to_owned();
                    }
                }
                let reads_body = operation.request_body.is_some();
                let add = [
                    ("405", METHOD_NOT_ALLOWED, true),
                    ("413", PAYLOAD_TOO_LARGE, reads_body),
                    ("415", UNSUPPORTED_MEDIA_TYPE, reads_body),
                    ("429", THROTTLED, guarded && limited),
                    ("503", UNAVAILABLE, guarded),
                ];
                for (status, name, applies) in add {
                    if applies {
                        operation
                            .responses
                            .responses
                            .entry(status.to_owned())
                            .or_insert_with(|| {
                                RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                            });
                    }
                }
            }
        }
    }
}

/// Every operation of a path.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
        &mut item.query,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
    .chain(item.additional_operations.values_mut())
}

/// Examples of the main success bodies, made from the types that render
/// them.
pub struct SuccessExamples;

impl Modify for SuccessExamples {
    fn modify(&self, openapi: &mut OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, example) in success_examples() {
            if let Some(RefOr::T(schema)) = components.schemas.get_mut(name) {
                set_example(schema, example);
            }
        }
    }
}

/// The component schemas given an example, with it.
fn success_examples() -> Vec<(&'static str, Value)> {
    let user = User {
        id: UserId(7),
        username: "ann.lee".into(),
        email: Some("ann@example.com".into()),
        email_verified: true,
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        is_active: true,
        referral_code: "K7QH2M9XTA".into(),
        referred_by: None,
        created_at: 1_767_225_600_000,
    };
    let link = SocialAccount {
        id: 12,
        user_id: user.id,
        provider: "google".into(),
        uid: "108345123456789012345".into(),
        email: Some("ann@example.com".into()),
        expires_at: None,
        needs_reauth: false,
        created_at: 1_767_225_600_000,
        last_login_at: 1_769_904_000_000,
    };
    let token = TokenResponse::from(&LoginResult {
        token: Some(Secret::new(
            "Jk3vQ9xR2mT7bW1nY5pL8sD4fH6gA0cE2iU9oZ3rK1w".into(),
        )),
        is_new: true,
        user: user.clone(),
        token_job: None,
    });
    let job_id = "5f0c6a2e-8d1b-4c3e-9a7f-2b4d6e8f0a1c";
    let encode = |value: Result<Value, serde_json::Error>| value.unwrap_or(Value::Null);
    vec![
        (
            "AuthorizationUrl",
            encode(serde_json::to_value(AuthorizationUrl {
                authorization_url: "https://accounts.google.com/o/oauth2/v2/auth?response_type=code&client_id=1234.apps.googleusercontent.com&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fauth%2Fcallback&state=u8Xl2cQf0ZrT5wVb9nKm3pYs7dHa1eGj4oLi6tRx0Cw&scope=openid+email+profile&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&nonce=Zb3kP0qW8sV2nX6mL4jR1tY9cF5hD7gA3eU0iO2rK8w".into(),
            })),
        ),
        ("TokenResponse", encode(serde_json::to_value(&token))),
        ("UserView", encode(serde_json::to_value(UserView::from(&user)))),
        (
            "JobAccepted",
            encode(serde_json::to_value(JobAccepted {
                job_id: job_id.into(),
                status_url: format!("/auth/jobs/{job_id}"),
            })),
        ),
        (
            "SocialAccountView",
            encode(serde_json::to_value(SocialAccountView::from(&link))),
        ),
        (
            "MeView",
            encode(serde_json::to_value(MeView {
                user: UserView::from(&user),
                social_accounts: vec![SocialAccountView::from(&link)],
            })),
        ),
    ]
}

fn set_example(schema: &mut Schema, example: Value) {
    match schema {
        Schema::Object(object) => object.examples = vec![example],
        Schema::AllOf(all_of) => all_of.examples = vec![example],
        Schema::OneOf(one_of) => one_of.examples = vec![example],
        Schema::AnyOf(any_of) => any_of.examples = vec![example],
        Schema::Array(array) => array.examples = vec![example],
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socialauth_common::config::NonceConvention;
    use socialauth_common::queue::QueueError;
    use socialauth_common::store::StoreError;

    fn document() -> Value {
        serde_json::to_value(crate::routes::openapi_router().1).expect("document")
    }

    /// What `#/components/…` names in `doc`.
    fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        doc.pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} resolves"))
    }

    /// Whether `value` is one of `schema`'s, for the keywords the document
    /// uses: `$ref`, `allOf`, `oneOf` (exactly one), `anyOf`, `type`,
    /// `required`, `properties`, `additionalProperties`, `items`, `enum`.
    fn matches(doc: &Value, schema: &Value, value: &Value) -> bool {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return matches(doc, resolve(doc, reference), value);
        }
        let each = |key: &str| schema.get(key).and_then(Value::as_array);
        if each("allOf").is_some_and(|all| !all.iter().all(|s| matches(doc, s, value))) {
            return false;
        }
        if each("oneOf")
            .is_some_and(|one| one.iter().filter(|s| matches(doc, s, value)).count() != 1)
        {
            return false;
        }
        if each("anyOf").is_some_and(|any| !any.iter().any(|s| matches(doc, s, value))) {
            return false;
        }
        if each("enum").is_some_and(|values| !values.contains(value)) {
            return false;
        }
        if let Some(types) = schema.get("type") {
            let is = |t: &Value| match (t.as_str(), value) {
                (Some("object"), Value::Object(_))
                | (Some("array"), Value::Array(_))
                | (Some("string"), Value::String(_))
                | (Some("boolean"), Value::Bool(_))
                | (Some("null"), Value::Null)
                | (Some("number"), Value::Number(_)) => true,
                (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
                _ => false,
            };
            let ok = match types {
                Value::Array(types) => types.iter().any(is),
                one => is(one),
            };
            if !ok {
                return false;
            }
        }
        match value {
            Value::Object(map) => {
                let required = each("required").map(Vec::as_slice).unwrap_or_default();
                if required
                    .iter()
                    .any(|k| k.as_str().is_none_or(|k| !map.contains_key(k)))
                {
                    return false;
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                map.iter().all(|(key, v)| {
                    match (
                        properties.and_then(|p| p.get(key)),
                        schema.get("additionalProperties"),
                    ) {
                        (Some(property), _) => matches(doc, property, v),
                        (None, Some(Value::Bool(allowed))) => *allowed,
                        (None, Some(extra)) => matches(doc, extra, v),
                        (None, None) => true,
                    }
                })
            }
            Value::Array(items) => schema
                .get("items")
                .is_none_or(|item| items.iter().all(|v| matches(doc, item, v))),
            _ => true,
        }
    }

    fn schema_ref(name: &str) -> Value {
        serde_json::json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// Every `JobError`, resumable ones with their partial token.
    fn every_job_error() -> Vec<JobError> {
        let every = vec![
            JobError::InvalidProvider,
            JobError::InvalidCredentials,
            JobError::NoEmailProvided {
                partial_token: Some(Secret::new(PARTIAL_TOKEN.into())),
                partial_job: None,
            },
            JobError::NoEmailProvided {
                partial_token: None,
                partial_job: None,
            },
            JobError::InvalidReferralCode {
                partial_token: Some(Secret::new(PARTIAL_TOKEN.into())),
                partial_job: None,
            },
            JobError::InvalidPartialToken,
            JobError::EmailAlreadyInUse,
            JobError::AccessTokenNotAccepted,
            JobError::SocialAccountNotFound,
            JobError::RefreshNotSupported,
            JobError::NeedsReauth,
            JobError::SocialAccountAlreadyAssociated,
            JobError::SignupClosed,
            JobError::EmailNotAllowed,
            JobError::InactiveUser,
            JobError::ProviderUnavailable,
            JobError::NonceRequired,
            JobError::NonceMismatch {
                expected: NonceConvention::Raw,
            },
            JobError::NonceMismatch {
                expected: NonceConvention::Sha256,
            },
            JobError::Internal,
        ];
        for e in &every {
            // A new variant fails to compile here: add it above.
            match e {
                JobError::InvalidProvider
                | JobError::InvalidCredentials
                | JobError::NoEmailProvided { .. }
                | JobError::InvalidReferralCode { .. }
                | JobError::InvalidPartialToken
                | JobError::EmailAlreadyInUse
                | JobError::AccessTokenNotAccepted
                | JobError::SocialAccountNotFound
                | JobError::RefreshNotSupported
                | JobError::NeedsReauth
                | JobError::SocialAccountAlreadyAssociated
                | JobError::SignupClosed
                | JobError::EmailNotAllowed
                | JobError::InactiveUser
                | JobError::ProviderUnavailable
                | JobError::NonceRequired
                | JobError::NonceMismatch { .. }
                | JobError::Internal => {}
            }
        }
        every
    }

    /// Every `ApiError` of a flow: those that name one in both.
    fn every_api_error(flow: Flow) -> Vec<ApiError> {
        let mut every = vec![
            ApiError::InvalidProvider,
            ApiError::NonField("redirect_uri_not_allowed"),
            ApiError::FieldCode("referral_code", "invalid_referral_code"),
            ApiError::required(&["code", "state"]),
            ApiError::MalformedBody("expected value at line 1 column 1".into()),
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge,
            ApiError::NotAuthenticated,
            ApiError::InvalidToken,
            ApiError::NotFound,
            ApiError::MethodNotAllowed("PUT".into()),
            ApiError::Conflict("cannot_disconnect_last_login"),
            ApiError::NotAdmin,
            ApiError::Throttled(1),
            ApiError::Overloaded,
            ApiError::ProviderPaused(30, flow),
            ApiError::Store(StoreError::Unavailable("down".into())),
            ApiError::Queue(QueueError::Closed),
        ];
        every.extend(
            every_job_error()
                .into_iter()
                .map(|e| ApiError::Job(e, flow)),
        );
        for e in &every {
            // A new variant fails to compile here: add it above.
            match e {
                ApiError::InvalidProvider
                | ApiError::NonField(_)
                | ApiError::FieldCode(..)
                | ApiError::Fields(_)
                | ApiError::MalformedBody(_)
                | ApiError::UnsupportedMediaType
                | ApiError::PayloadTooLarge
                | ApiError::NotAuthenticated
                | ApiError::InvalidToken
                | ApiError::NotFound
                | ApiError::MethodNotAllowed(_)
                | ApiError::Conflict(_)
                | ApiError::NotAdmin
                | ApiError::Throttled(_)
                | ApiError::Overloaded
                | ApiError::ProviderPaused(..)
                | ApiError::Job(..)
                | ApiError::Store(_)
                | ApiError::Queue(_) => {}
            }
        }
        every
    }

    /// The schema a route of `flow`'s family names for `status`.
    fn documented_schema(status: StatusCode, flow: Flow) -> &'static str {
        match (status.as_u16(), flow) {
            (400, Flow::Djoser) => "ValidationErrors",
            (400, Flow::SocialAuth) => "SocialAuthErrors",
            (409, _) => "NonFieldErrors",
            (503, _) => "ProviderUnavailable",
            _ => "Detail",
        }
    }

    #[test]
    fn every_error_body_matches_its_documented_schema() {
        let doc = document();
        for flow in [Flow::Djoser, Flow::SocialAuth] {
            for error in every_api_error(flow) {
                let (status, body) = error.parts();
                let name = documented_schema(status, flow);
                assert!(
                    matches(&doc, &schema_ref(name), &body),
                    "{flow:?} {status}: {body} is not a {name}"
                );
            }
        }
    }

    /// The schemas tell the families apart: a `/social-auth` string code
    /// is not a djoser error, nor a message a code.
    #[test]
    fn the_error_schemas_refuse_the_other_familys_bodies() {
        let doc = document();
        let social = body(ApiError::Job(
            JobError::InvalidCredentials,
            Flow::SocialAuth,
        ));
        assert!(!matches(&doc, &schema_ref("ValidationErrors"), &social));
        assert!(matches(&doc, &schema_ref("SocialAuthErrors"), &social));
        assert!(!matches(&doc, &schema_ref("NonFieldErrors"), &social));
        assert!(!matches(
            &doc,
            &schema_ref("Detail"),
            &body(ApiError::Conflict("needs_reauth"))
        ));
        assert!(!matches(
            &doc,
            &schema_ref("ValidationErrors"),
            &serde_json::json!({"email": 3})
        ));
    }

    #[test]
    fn every_example_matches_its_schema() {
        let doc = document();
        let mut seen = 0;
        let responses = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .flat_map(|item| item.as_object().expect("path item").values())
            .flat_map(|op| op["responses"].as_object().expect("responses").values())
            .chain(
                doc["components"]["responses"]
                    .as_object()
                    .expect("shared responses")
                    .values(),
            );
        for response in responses {
            let Some(media) = response["content"]["application/json"].as_object() else {
                continue;
            };
            let examples = media.get("example").into_iter().chain(
                media
                    .get("examples")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|e| e.values().map(|e| &e["value"])),
            );
            for example in examples {
                assert!(
                    matches(&doc, &media["schema"], example),
                    "{example} is not a {}",
                    media["schema"]
                );
                seen += 1;
            }
        }
        for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
            for example in schema.get("example").into_iter().chain(
                schema
                    .get("examples")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            ) {
                assert!(
                    matches(&doc, &schema_ref(name), example),
                    "{example} is not a {name}"
                );
                seen += 1;
            }
        }
        assert!(seen > 50, "{seen} examples");
    }

    #[test]
    fn the_main_success_bodies_have_an_example() {
        let doc = document();
        for (name, _) in success_examples() {
            let examples = &doc["components"]["schemas"][name]["examples"];
            assert!(
                examples.as_array().is_some_and(|e| e.len() == 1),
                "{name}: {examples}"
            );
        }
    }
}
