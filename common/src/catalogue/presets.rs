//! The presets: each known provider as data — protocol, endpoints,
//! scopes, PKCE, profile mapping, refresh quirks, revocation and token
//! checks — overlaid by what the operator configures.
//!
//! OpenID Connect providers are given by their issuer (discovery does the
//! endpoints); the others by their endpoints. A provider the operator runs
//! or rents (`okta`, `auth0`, `keycloak`, `zitadel`) has `{domain}` (and
//! `{realm}`) in its URLs: the operator's `domain` (and `realm`) fill them
//! in. `docs/PROVIDERS.md` describes every preset.

use super::{MICROSOFT_DEFAULT_TENANT, MICROSOFT_ISSUER};
use crate::config::{
    AccessTokenCheck, NonceConvention, ProfileSettings, ProviderSettings, TokenEndpointAuthMethod,
};
use std::collections::BTreeMap;

/// Every preset's name, sorted; [`preset`] knows exactly these.
pub const NAMES: &[&str] = &[
    "amazon",
    "apple",
    "atlassian",
    "auth0",
    "battlenet",
    "bitbucket",
    "discord",
    "dropbox",
    "facebook",
    "github",
    "gitlab",
    "google",
    "instagram",
    "kakao",
    "keycloak",
    "line",
    "linkedin",
    "mailru",
    "microsoft",
    "naver",
    "okta",
    "patreon",
    "reddit",
    "salesforce",
    "slack",
    "spotify",
    "strava",
    "twitch",
    "twitter",
    "wordpress",
    "x",
    "yahoo",
    "yandex",
    "zitadel",
    "zoom",
];

/// Known brands: protocol, endpoints, scopes and profile mapping. `None`
/// for a name not in [`NAMES`].
pub(super) fn preset(name: &str) -> Option<ProviderSettings> {
    if !NAMES.contains(&name) {
        return None;
    }
    let s = |v: &str| Some(v.to_owned());
    let scopes = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    let params = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let oidc = |issuer: &str, sc: &[&str]| ProviderSettings {
        protocol: s("oidc"),
        issuer: s(issuer),
        scopes: scopes(sc),
        ..ProviderSettings::default()
    };
    let oauth2 = |authorize: &str, token: &str, userinfo: &str, sc: &[&str]| ProviderSettings {
        protocol: s("oauth2"),
        authorize_url: s(authorize),
        token_url: s(token),
        userinfo_url: s(userinfo),
        scopes: scopes(sc),
        ..ProviderSettings::default()
    };
    let mapping = |uid: &str, username: &str, name: &str, picture: &str| ProfileSettings {
        uid: s(uid),
        username: s(username),
        name: s(name),
        picture: s(picture),
        ..ProfileSettings::default()
    };
    let standard = ["openid", "email", "profile"];
    Some(match name {
        "google" => ProviderSettings {
            revocation_url: s("https://oauth2.googleapis.com/revoke"),
            access_token_check: Some(AccessTokenCheck::Tokeninfo),
            introspection_url: s("https://oauth2.googleapis.com/tokeninfo"),
            ..oidc("https://accounts.google.com", &standard)
        },
        "microsoft" => ProviderSettings {
            tenant: s(MICROSOFT_DEFAULT_TENANT),
            ..oidc(MICROSOFT_ISSUER, &standard)
        },
        "gitlab" => oidc("https://gitlab.com", &standard),
        "linkedin" => oidc("https://www.linkedin.com/oauth", &standard),
        "apple" => ProviderSettings {
            nonce_convention: Some(NonceConvention::Sha256),
            ..oidc("https://appleid.apple.com", &["openid", "email", "name"])
        },
        // `/user/emails` lists the addresses with their `primary` and
        // `verified` flags; without it (scope not granted) the public
        // `email` of `/user`, unverified.
        "github" => ProviderSettings {
            emails_url: s("https://api.github.com/user/emails"),
            profile: Some(ProfileSettings {
                email: s("emails[primary=true].email | email"),
                email_verified: s("emails[primary=true].verified"),
                ..mapping("id", "login", "name", "avatar_url")
            }),
            refresh_tokens: Some(false),
            ..oauth2(
                "https://github.com/login/oauth/authorize",
                "https://github.com/login/oauth/access_token",
                "https://api.github.com/user",
                &["read:user", "user:email"],
            )
        },
        // Facebook gives long-lived access tokens and no refresh token.
        "facebook" => ProviderSettings {
            refresh_tokens: Some(false),
            access_token_check: Some(AccessTokenCheck::DebugToken),
            introspection_url: s("https://graph.facebook.com/v19.0/debug_token"),
            profile: Some(ProfileSettings {
                first_name: s("first_name"),
                last_name: s("last_name"),
                ..mapping("id", "id", "name", "picture.data.url")
            }),
            ..oauth2(
                "https://www.facebook.com/v19.0/dialog/oauth",
                "https://graph.facebook.com/v19.0/oauth/access_token",
                "https://graph.facebook.com/v19.0/me?fields=id,name,email,first_name,last_name,picture",
                &["email", "public_profile"],
            )
        },
        "discord" => ProviderSettings {
            profile: Some(ProfileSettings {
                email_verified: s("verified"),
                ..mapping(
                    "id",
                    "username",
                    "global_name",
                    "https://cdn.discordapp.com/avatars/{id}/{avatar}.png",
                )
            }),
            ..oauth2(
                "https://discord.com/oauth2/authorize",
                "https://discord.com/api/oauth2/token",
                "https://discord.com/api/users/@me",
                &["identify", "email"],
            )
        },
        "twitter" => ProviderSettings {
            protocol: s("oauth1"),
            request_token_url: s("https://api.twitter.com/oauth/request_token"),
            authorize_url: s("https://api.twitter.com/oauth/authenticate"),
            access_token_url: s("https://api.twitter.com/oauth/access_token"),
            userinfo_url: s(
                "https://api.twitter.com/1.1/account/verify_credentials.json?include_email=true",
            ),
            profile: Some(mapping(
                "id_str",
                "screen_name",
                "name",
                "profile_image_url_https",
            )),
            ..ProviderSettings::default()
        },
        // X API v2: OAuth 2.0 with PKCE required; a confidential client
        // authenticates with HTTP Basic; `offline.access` for a refresh
        // token. `/2/users/me` gives no address.
        "x" => ProviderSettings {
            pkce: Some(true),
            require_pkce: Some(true),
            token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
            revocation_url: s("https://api.x.com/2/oauth2/revoke"),
            profile: Some(mapping(
                "data.id",
                "data.username",
                "data.name",
                "data.profile_image_url",
            )),
            ..oauth2(
                "https://x.com/i/oauth2/authorize",
                "https://api.x.com/2/oauth2/token",
                "https://api.x.com/2/users/me?user.fields=profile_image_url",
                &["users.read", "tweet.read", "offline.access"],
            )
        },
        // Instagram API with Instagram Login (business and creator
        // accounts): no address; short-lived tokens are extended with
        // Instagram's own exchange, not a refresh grant.
        "instagram" => ProviderSettings {
            refresh_tokens: Some(false),
            profile: Some(mapping(
                "user_id",
                "username",
                "name",
                "profile_picture_url",
            )),
            ..oauth2(
                "https://www.instagram.com/oauth/authorize",
                "https://api.instagram.com/oauth/access_token",
                "https://graph.instagram.com/me?fields=user_id,username,name,profile_picture_url",
                &["instagram_business_basic"],
            )
        },
        // Sign in with Slack. Its tokens do not expire unless the app turns
        // token rotation on.
        "slack" => ProviderSettings {
            refresh_tokens: Some(false),
            ..oidc("https://slack.com", &standard)
        },
        // Twitch gives email, email_verified, picture and
        // preferred_username only when asked for in `claims`.
        "twitch" => ProviderSettings {
            authorize_params: params(&[(
                "claims",
                r#"{"id_token":{"email":null,"email_verified":null,"picture":null,"preferred_username":null}}"#,
            )]),
            profile: Some(ProfileSettings {
                name: s("preferred_username"),
                ..ProfileSettings::default()
            }),
            ..oidc(
                "https://id.twitch.tv/oauth2",
                &["openid", "user:read:email"],
            )
        },
        // Spotify's address is documented as unverified.
        "spotify" => ProviderSettings {
            token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
            profile: Some(mapping("id", "id", "display_name", "images.0.url")),
            ..oauth2(
                "https://accounts.spotify.com/authorize",
                "https://accounts.spotify.com/api/token",
                "https://api.spotify.com/v1/me",
                &["user-read-email", "user-read-private"],
            )
        },
        // Reddit gives no address; `duration=permanent` for a refresh token.
        "reddit" => ProviderSettings {
            token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
            authorize_params: params(&[("duration", "permanent")]),
            revocation_url: s("https://www.reddit.com/api/v1/revoke_token"),
            profile: Some(mapping("id", "name", "name", "icon_img")),
            ..oauth2(
                "https://www.reddit.com/api/v1/authorize",
                "https://www.reddit.com/api/v1/access_token",
                "https://oauth.reddit.com/api/v1/me",
                &["identity"],
            )
        },
        // Bitbucket Cloud: scopes are the consumer's (`account`, `email`);
        // the addresses are listed apart, with `is_primary` and
        // `is_confirmed`.
        "bitbucket" => ProviderSettings {
            token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
            emails_url: s("https://api.bitbucket.org/2.0/user/emails"),
            profile: Some(ProfileSettings {
                email: s("emails.values[is_primary=true].email"),
                email_verified: s("emails.values[is_primary=true].is_confirmed"),
                ..mapping(
                    "uuid",
                    "username | nickname",
                    "display_name",
                    "links.avatar.href",
                )
            }),
            ..oauth2(
                "https://bitbucket.org/site/oauth2/authorize",
                "https://bitbucket.org/site/oauth2/access_token",
                "https://api.bitbucket.org/2.0/user",
                &[],
            )
        },
        // `token_access_type=offline` for a refresh token.
        "dropbox" => ProviderSettings {
            authorize_params: params(&[("token_access_type", "offline")]),
            // Its userinfo endpoint takes only POST; the id_token carries
            // the profile (`email`, `email_verified`, `given_name`,
            // `family_name` with the `email` and `profile` scopes).
            read_userinfo: Some(false),
            ..oidc("https://www.dropbox.com", &standard)
        },
        // Login with Amazon: no verification flag for the address.
        "amazon" => ProviderSettings {
            profile: Some(ProfileSettings {
                uid: s("user_id"),
                name: s("name"),
                ..ProfileSettings::default()
            }),
            ..oauth2(
                "https://www.amazon.com/ap/oa",
                "https://api.amazon.com/auth/o2/token",
                "https://api.amazon.com/user/profile",
                &["profile"],
            )
        },
        "yahoo" => ProviderSettings {
            profile: Some(ProfileSettings {
                username: s("preferred_username | nickname"),
                ..ProfileSettings::default()
            }),
            ..oidc("https://api.login.yahoo.com", &standard)
        },
        // The org authorization server, which every Okta org has; a custom
        // one (`issuer = "https://…/oauth2/default"`) is an override.
        "okta" => oidc("https://{domain}", &standard),
        // Auth0's issuer ends with a slash.
        "auth0" => ProviderSettings {
            profile: Some(ProfileSettings {
                username: s("preferred_username | nickname"),
                ..ProfileSettings::default()
            }),
            ..oidc("https://{domain}/", &standard)
        },
        "keycloak" => oidc("https://{domain}/realms/{realm}", &standard),
        "zitadel" => oidc("https://{domain}", &standard),
        "salesforce" => ProviderSettings {
            profile: Some(ProfileSettings {
                picture: s("picture | photos.picture"),
                ..ProfileSettings::default()
            }),
            ..oidc("https://login.salesforce.com", &standard)
        },
        // LINE Login v2.1: ID tokens of web logins are signed with HS256
        // (the channel secret), of the SDKs with ES256; the token endpoint
        // takes the secret in the form. No verification flag for the
        // address.
        "line" => ProviderSettings {
            id_token_signing_algs: Some(vec!["ES256".into(), "HS256".into()]),
            token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretPost),
            ..oidc("https://access.line.me", &standard)
        },
        // Kakao's scopes are its consent items.
        "kakao" => ProviderSettings {
            token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretPost),
            profile: Some(ProfileSettings {
                username: s("nickname"),
                name: s("name | nickname"),
                ..ProfileSettings::default()
            }),
            ..oidc(
                "https://kauth.kakao.com",
                &[
                    "openid",
                    "profile_nickname",
                    "profile_image",
                    "account_email",
                ],
            )
        },
        // Naver: the profile sits under `response`; no verification flag for
        // the address; no scope parameter.
        "naver" => ProviderSettings {
            profile: Some(ProfileSettings {
                email: s("response.email"),
                ..mapping(
                    "response.id",
                    "response.nickname",
                    "response.name",
                    "response.profile_image",
                )
            }),
            ..oauth2(
                "https://nid.naver.com/oauth2.0/authorize",
                "https://nid.naver.com/oauth2.0/token",
                "https://openapi.naver.com/v1/nid/me",
                &[],
            )
        },
        // Yandex ID: no verification flag for the address; the avatar is an
        // id, made a URL by the template Yandex documents.
        "yandex" => ProviderSettings {
            profile: Some(ProfileSettings {
                uid: s("id"),
                email: s("default_email"),
                username: s("login"),
                picture: s("https://avatars.yandex.net/get-yapic/{default_avatar_id}/islands-200"),
                first_name: s("first_name"),
                last_name: s("last_name"),
                name: s("real_name | display_name"),
                ..ProfileSettings::default()
            }),
            ..oauth2(
                "https://oauth.yandex.com/authorize",
                "https://oauth.yandex.com/token",
                "https://login.yandex.ru/info?format=json",
                &["login:info", "login:email", "login:avatar"],
            )
        },
        // Patreon API v2, JSON:API: the user under `data`, its fields under
        // `data.attributes`, as many as `fields[user]` asks for.
        "patreon" => ProviderSettings {
            profile: Some(ProfileSettings {
                email: s("data.attributes.email"),
                email_verified: s("data.attributes.is_email_verified"),
                first_name: s("data.attributes.first_name"),
                last_name: s("data.attributes.last_name"),
                ..mapping(
                    "data.id",
                    "data.attributes.vanity",
                    "data.attributes.full_name",
                    "data.attributes.image_url",
                )
            }),
            ..oauth2(
                "https://www.patreon.com/oauth2/authorize",
                "https://www.patreon.com/api/oauth2/token",
                "https://www.patreon.com/api/oauth2/v2/identity?fields%5Buser%5D=email,first_name,full_name,image_url,is_email_verified,last_name,vanity",
                &["identity", "identity[email]"],
            )
        },
        // Atlassian account (Jira, Confluence): `audience` and `prompt` as
        // its 3LO flow asks; `offline_access` for a refresh token.
        "atlassian" => ProviderSettings {
            authorize_params: params(&[("audience", "api.atlassian.com"), ("prompt", "consent")]),
            profile: Some(mapping("account_id", "nickname", "name", "picture")),
            ..oauth2(
                "https://auth.atlassian.com/authorize",
                "https://auth.atlassian.com/oauth/token",
                "https://api.atlassian.com/me",
                &["read:me", "offline_access"],
            )
        },
        // Zoom: scopes are the app's; its `verified` is the account's, not
        // the address's.
        "zoom" => ProviderSettings {
            token_endpoint_auth_method: Some(TokenEndpointAuthMethod::ClientSecretBasic),
            profile: Some(ProfileSettings {
                uid: s("id"),
                first_name: s("first_name"),
                last_name: s("last_name"),
                name: s("display_name"),
                picture: s("pic_url"),
                ..ProfileSettings::default()
            }),
            ..oauth2(
                "https://zoom.us/oauth/authorize",
                "https://zoom.us/oauth/token",
                "https://api.zoom.us/v2/users/me",
                &[],
            )
        },
        // Strava gives no address.
        "strava" => ProviderSettings {
            profile: Some(ProfileSettings {
                uid: s("id"),
                username: s("username"),
                first_name: s("firstname"),
                last_name: s("lastname"),
                picture: s("profile"),
                ..ProfileSettings::default()
            }),
            ..oauth2(
                "https://www.strava.com/oauth/authorize",
                "https://www.strava.com/oauth/token",
                "https://www.strava.com/api/v3/athlete",
                &["read"],
            )
        },
        // WordPress.com: its tokens do not expire.
        "wordpress" => ProviderSettings {
            refresh_tokens: Some(false),
            profile: Some(ProfileSettings {
                email_verified: s("email_verified"),
                ..mapping("ID", "username", "display_name", "avatar_URL")
            }),
            ..oauth2(
                "https://public-api.wordpress.com/oauth2/authorize",
                "https://public-api.wordpress.com/oauth2/token",
                "https://public-api.wordpress.com/rest/v1.1/me",
                &["auth"],
            )
        },
        // Battle.net: the BattleTag, no address, no refresh token.
        "battlenet" => ProviderSettings {
            refresh_tokens: Some(false),
            profile: Some(ProfileSettings {
                username: s("battletag | battle_tag"),
                name: s("battletag | battle_tag"),
                ..ProfileSettings::default()
            }),
            ..oidc("https://oauth.battle.net", &["openid"])
        },
        // Mail.ru: no verification flag for the address.
        "mailru" => ProviderSettings {
            profile: Some(ProfileSettings {
                first_name: s("first_name"),
                last_name: s("last_name"),
                ..mapping("id", "nickname", "name", "image")
            }),
            ..oauth2(
                "https://oauth.mail.ru/login",
                "https://oauth.mail.ru/token",
                "https://oauth.mail.ru/userinfo",
                &["userinfo"],
            )
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Catalogue, Protocol};
    use super::{NAMES, preset};
    use crate::config::{Settings, TokenEndpointAuthMethod};
    use crate::types::Profile;
    use serde_json::{Value, json};

    /// The domain and realm the tests give presets that need them.
    const DOMAIN: &str = "idp.example.test";
    const REALM: &str = "acme";

    fn settings(toml_text: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml_text).expect("write");
        Settings::load_with_env(Some(&path), vec![]).map_err(|e| e.to_string())
    }

    /// Whether any of the preset's URLs holds `placeholder`.
    fn needs(name: &str, placeholder: &str) -> bool {
        let p = preset(name).expect("a preset");
        [
            &p.issuer,
            &p.authorize_url,
            &p.token_url,
            &p.userinfo_url,
            &p.request_token_url,
            &p.access_token_url,
            &p.revocation_url,
            &p.emails_url,
            &p.introspection_url,
        ]
        .into_iter()
        .flatten()
        .any(|url| url.contains(placeholder))
    }

    /// `[providers.NAME]` with its preset, a client id and what it needs.
    fn table(name: &str) -> String {
        let mut t = format!("[providers.{name}]\npreset = \"{name}\"\nclient_id = \"id\"\n");
        if needs(name, "{domain}") {
            t.push_str(&format!("domain = \"{DOMAIN}\"\n"));
        }
        if needs(name, "{realm}") {
            t.push_str(&format!("realm = \"{REALM}\"\n"));
        }
        t
    }

    /// Every preset, configured as the tests configure it.
    fn catalogue() -> Catalogue {
        let all: String = NAMES.iter().map(|n| table(n)).collect();
        Catalogue::from_settings(&settings(&all).expect("settings")).expect("catalogue")
    }

    fn o(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn names_are_sorted_unique_and_exactly_the_presets() {
        assert!(NAMES.len() >= 30, "{} presets", NAMES.len());
        assert!(NAMES.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        for name in NAMES {
            assert!(preset(name).is_some(), "{name}");
        }
        for unknown in ["", "vk", "Google", "github ", "oidc", "acme"] {
            assert!(preset(unknown).is_none(), "{unknown:?}");
        }
    }

    /// Each preset loads with a client id (and the domain and realm it
    /// needs); without its domain or realm it is refused, naming it.
    #[test]
    fn every_preset_loads_and_names_a_missing_domain_or_realm() {
        for name in NAMES {
            let t = table(name);
            let c = Catalogue::from_settings(&settings(&t).expect("settings"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let p = c.get(name).expect("configured");
            match p.protocol {
                Protocol::Oidc => assert!(p.issuer.is_some(), "{name}"),
                Protocol::OAuth2 => {
                    assert!(p.authorize_url.is_some() && p.token_url.is_some(), "{name}");
                    assert!(p.userinfo_url.is_some(), "{name}");
                }
                Protocol::OAuth1 => assert!(p.request_token_url.is_some(), "{name}"),
            }
            for url in [
                &p.issuer,
                &p.authorize_url,
                &p.token_url,
                &p.userinfo_url,
                &p.emails_url,
                &p.revocation_url,
            ]
            .into_iter()
            .flatten()
            {
                assert_eq!(url.scheme(), "https", "{name}: {url}");
                assert!(!url.as_str().contains("%7B"), "{name}: {url}");
            }
            for key in ["domain", "realm"] {
                if !needs(name, &format!("{{{key}}}")) {
                    continue;
                }
                let without: String = t
                    .lines()
                    .filter(|l| !l.starts_with(&format!("{key} =")))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let e = Catalogue::from_settings(&settings(&without).expect("settings"))
                    .expect_err(name);
                let e = e.to_string();
                assert!(e.contains(name) && e.contains(&format!("`{key}`")), "{e}");
            }
        }
        let okta = catalogue();
        let issuer = |name: &str| {
            okta.get(name)
                .and_then(|p| p.issuer.as_ref())
                .map(|u| u.as_str().to_owned())
        };
        assert_eq!(issuer("okta").as_deref(), Some("https://idp.example.test/"));
        assert_eq!(
            issuer("auth0").as_deref(),
            Some("https://idp.example.test/")
        );
        assert_eq!(
            issuer("keycloak").as_deref(),
            Some("https://idp.example.test/realms/acme")
        );
        assert_eq!(
            issuer("zitadel").as_deref(),
            Some("https://idp.example.test/")
        );
    }

    #[test]
    fn presets_carry_their_providers_quirks() {
        let c = catalogue();
        let get = |name: &str| c.get(name).expect(name);
        let x = get("x");
        assert!(x.pkce && x.require_pkce);
        assert_eq!(x.scopes, ["users.read", "tweet.read", "offline.access"]);
        for basic in ["x", "reddit", "spotify", "bitbucket", "zoom"] {
            assert_eq!(
                get(basic).token_endpoint_auth_method,
                Some(TokenEndpointAuthMethod::ClientSecretBasic),
                "{basic}"
            );
        }
        for post in ["line", "kakao"] {
            assert_eq!(
                get(post).token_endpoint_auth_method,
                Some(TokenEndpointAuthMethod::ClientSecretPost),
                "{post}"
            );
        }
        for not_refreshed in [
            "facebook",
            "github",
            "instagram",
            "slack",
            "wordpress",
            "battlenet",
            "twitter",
        ] {
            assert!(!get(not_refreshed).refresh.enabled, "{not_refreshed}");
        }
        assert!(
            !get("dropbox").read_userinfo,
            "its userinfo takes only POST"
        );
        assert!(get("google").read_userinfo);
        for refreshed in ["x", "reddit", "spotify", "dropbox", "patreon", "okta"] {
            assert!(get(refreshed).refresh.enabled, "{refreshed}");
        }
        assert_eq!(
            get("reddit")
                .authorize_params
                .get("duration")
                .map(String::as_str),
            Some("permanent")
        );
        assert_eq!(
            get("dropbox")
                .authorize_params
                .get("token_access_type")
                .map(String::as_str),
            Some("offline")
        );
        let claims: Value = serde_json::from_str(
            get("twitch")
                .authorize_params
                .get("claims")
                .expect("claims"),
        )
        .expect("claims are JSON");
        assert!(claims["id_token"].get("email_verified").is_some());
        assert_eq!(
            get("line").id_token_signing_algs,
            ["ES256".to_owned(), "HS256".to_owned()]
        );
        assert_eq!(
            get("github").emails_url.as_ref().map(url::Url::as_str),
            Some("https://api.github.com/user/emails")
        );
        assert_eq!(
            get("patreon").userinfo_url.as_ref().map(url::Url::as_str),
            Some(
                "https://www.patreon.com/api/oauth2/v2/identity?fields%5Buser%5D=email,first_name,full_name,image_url,is_email_verified,last_name,vanity"
            )
        );
        // The operator's own values win over the preset's.
        let own = settings(
            "[providers.okta]\npreset = \"okta\"\nclient_id = \"id\"\n\
             issuer = \"https://idp.example.test/oauth2/default\"\n\
             scopes = [\"openid\", \"email\", \"profile\", \"offline_access\"]\n",
        )
        .expect("settings");
        let c = Catalogue::from_settings(&own).expect("catalogue");
        let okta = c.get("okta").expect("okta");
        assert_eq!(
            okta.issuer.as_ref().map(url::Url::as_str),
            Some("https://idp.example.test/oauth2/default")
        );
        assert!(okta.scopes.iter().any(|s| s == "offline_access"));
    }

    /// One document per preset, shaped as the provider documents its
    /// userinfo / profile answer (or its id_token claims), and the profile
    /// its mapping reads out of it.
    fn documented_profiles() -> Vec<(&'static str, Value, Profile)> {
        vec![
            (
                "google",
                json!({
                    "iss": "https://accounts.google.com", "sub": "110169484474386276334",
                    "email": "jane.doe@gmail.com", "email_verified": true,
                    "name": "Jane Doe", "given_name": "Jane", "family_name": "Doe",
                    "picture": "https://lh3.googleusercontent.com/a/photo.jpg", "locale": "en"
                }),
                Profile {
                    uid: "110169484474386276334".into(),
                    email: o("jane.doe@gmail.com"),
                    email_verified: true,
                    name: o("Jane Doe"),
                    first_name: o("Jane"),
                    last_name: o("Doe"),
                    picture: o("https://lh3.googleusercontent.com/a/photo.jpg"),
                    ..Profile::default()
                },
            ),
            (
                "microsoft",
                json!({
                    "iss": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
                    "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
                    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
                    "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
                    "name": "Abe Lincoln", "preferred_username": "AbeLi@microsoft.com",
                    "email": "AbeLi@microsoft.com"
                }),
                Profile {
                    uid: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ".into(),
                    email: o("AbeLi@microsoft.com"),
                    username: o("AbeLi@microsoft.com"),
                    name: o("Abe Lincoln"),
                    ..Profile::default()
                },
            ),
            (
                "gitlab",
                json!({
                    "sub": "1234567", "name": "Jane Doe", "nickname": "jdoe",
                    "preferred_username": "jdoe", "email": "jdoe@example.com",
                    "email_verified": true, "website": "",
                    "profile": "https://gitlab.com/jdoe",
                    "picture": "https://gitlab.com/uploads/-/system/user/avatar/1234567/avatar.png",
                    "groups": []
                }),
                Profile {
                    uid: "1234567".into(),
                    email: o("jdoe@example.com"),
                    email_verified: true,
                    username: o("jdoe"),
                    name: o("Jane Doe"),
                    picture: o(
                        "https://gitlab.com/uploads/-/system/user/avatar/1234567/avatar.png",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "linkedin",
                json!({
                    "sub": "782bbtaQ", "name": "John Doe", "given_name": "John",
                    "family_name": "Doe", "picture": "https://media.licdn-ei.com/dms/image/C5F03AQHqK8v7tB1HCQ/profile-displayphoto-shrink_100_100/0/",
                    "locale": "en-US", "email": "doe@email.com", "email_verified": true
                }),
                Profile {
                    uid: "782bbtaQ".into(),
                    email: o("doe@email.com"),
                    email_verified: true,
                    name: o("John Doe"),
                    first_name: o("John"),
                    last_name: o("Doe"),
                    picture: o(
                        "https://media.licdn-ei.com/dms/image/C5F03AQHqK8v7tB1HCQ/profile-displayphoto-shrink_100_100/0/",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "apple",
                json!({
                    "iss": "https://appleid.apple.com", "sub": "001234.56789abcdef.0123",
                    "email": "abc123@privaterelay.appleid.com", "email_verified": "true",
                    "is_private_email": "true", "auth_time": 1_700_000_000
                }),
                Profile {
                    uid: "001234.56789abcdef.0123".into(),
                    email: o("abc123@privaterelay.appleid.com"),
                    email_verified: true,
                    ..Profile::default()
                },
            ),
            (
                "github",
                json!({
                    "login": "octocat", "id": 1, "node_id": "MDQ6VXNlcjE=",
                    "avatar_url": "https://github.com/images/error/octocat_happy.gif",
                    "name": "monalisa octocat", "email": "octocat@github.com",
                    "emails": [
                        {"email": "old@example.com", "verified": true, "primary": false, "visibility": null},
                        {"email": "octocat@github.com", "verified": true, "primary": true, "visibility": "public"}
                    ]
                }),
                Profile {
                    uid: "1".into(),
                    email: o("octocat@github.com"),
                    email_verified: true,
                    username: o("octocat"),
                    name: o("monalisa octocat"),
                    picture: o("https://github.com/images/error/octocat_happy.gif"),
                    ..Profile::default()
                },
            ),
            (
                "facebook",
                json!({
                    "id": "10158123456789", "name": "Jane Doe", "email": "jane@example.com",
                    "first_name": "Jane", "last_name": "Doe",
                    "picture": {"data": {"height": 50, "is_silhouette": false,
                        "url": "https://platform-lookaside.fbsbx.com/platform/profilepic/?asid=10158123456789", "width": 50}}
                }),
                Profile {
                    uid: "10158123456789".into(),
                    email: o("jane@example.com"),
                    username: o("10158123456789"),
                    name: o("Jane Doe"),
                    first_name: o("Jane"),
                    last_name: o("Doe"),
                    picture: o(
                        "https://platform-lookaside.fbsbx.com/platform/profilepic/?asid=10158123456789",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "discord",
                json!({
                    "id": "80351110224678912", "username": "nelly", "discriminator": "0",
                    "global_name": "Nelly", "avatar": "8342729096ea3675442027381ff50dfe",
                    "verified": true, "email": "nelly@discord.com", "flags": 64,
                    "banner": null, "premium_type": 1, "public_flags": 64
                }),
                Profile {
                    uid: "80351110224678912".into(),
                    email: o("nelly@discord.com"),
                    email_verified: true,
                    username: o("nelly"),
                    name: o("Nelly"),
                    picture: o(
                        "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "twitter",
                json!({
                    "id": 6_253_282, "id_str": "6253282", "name": "Twitter API",
                    "screen_name": "TwitterAPI", "email": "api@example.com",
                    "profile_image_url_https": "https://pbs.twimg.com/profile_images/942858479592554497/BbazLO9L_normal.jpg"
                }),
                Profile {
                    uid: "6253282".into(),
                    email: o("api@example.com"),
                    username: o("TwitterAPI"),
                    name: o("Twitter API"),
                    picture: o(
                        "https://pbs.twimg.com/profile_images/942858479592554497/BbazLO9L_normal.jpg",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "x",
                json!({"data": {
                    "id": "2244994945", "name": "X Developers", "username": "XDevelopers",
                    "profile_image_url": "https://pbs.twimg.com/profile_images/1683325380441128960/yRsRRjGO_normal.jpg"
                }}),
                Profile {
                    uid: "2244994945".into(),
                    username: o("XDevelopers"),
                    name: o("X Developers"),
                    picture: o(
                        "https://pbs.twimg.com/profile_images/1683325380441128960/yRsRRjGO_normal.jpg",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "instagram",
                json!({
                    "user_id": "17841405793187218", "username": "jayposiris",
                    "name": "Jay Posiris", "id": "7590282904327933",
                    "profile_picture_url": "https://scontent.cdninstagram.com/v/t51.2885-19/profile.jpg"
                }),
                Profile {
                    uid: "17841405793187218".into(),
                    username: o("jayposiris"),
                    name: o("Jay Posiris"),
                    picture: o("https://scontent.cdninstagram.com/v/t51.2885-19/profile.jpg"),
                    ..Profile::default()
                },
            ),
            (
                "slack",
                json!({
                    "ok": true, "sub": "U0R7JM", "https://slack.com/user_id": "U0R7JM",
                    "https://slack.com/team_id": "T0R7GR", "email": "krane@slack-corp.com",
                    "email_verified": true, "date_email_verified": 1_622_128_723,
                    "name": "krane", "picture": "https://secure.gravatar.com/avatar/bc.png",
                    "given_name": "Bront", "family_name": "Labradoodle", "locale": "en-US",
                    "https://slack.com/team_name": "kraneflannel",
                    "https://slack.com/team_domain": "kraneflannel"
                }),
                Profile {
                    uid: "U0R7JM".into(),
                    email: o("krane@slack-corp.com"),
                    email_verified: true,
                    name: o("krane"),
                    first_name: o("Bront"),
                    last_name: o("Labradoodle"),
                    picture: o("https://secure.gravatar.com/avatar/bc.png"),
                    ..Profile::default()
                },
            ),
            (
                "twitch",
                json!({
                    "aud": "hof5gwx0su6owfnys0nyan9c87zr6t", "exp": 1_642_193_316,
                    "iat": 1_642_192_416, "iss": "https://id.twitch.tv/oauth2",
                    "sub": "713936733", "azp": "hof5gwx0su6owfnys0nyan9c87zr6t",
                    "email": "scotwht@justin.tv", "email_verified": true,
                    "picture": "https://static-cdn.jtvnw.net/user-default-pictures-uv/profile_image-150x150.png",
                    "preferred_username": "scotwht"
                }),
                Profile {
                    uid: "713936733".into(),
                    email: o("scotwht@justin.tv"),
                    email_verified: true,
                    username: o("scotwht"),
                    name: o("scotwht"),
                    picture: o(
                        "https://static-cdn.jtvnw.net/user-default-pictures-uv/profile_image-150x150.png",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "spotify",
                json!({
                    "country": "SE", "display_name": "JM Wizzler", "email": "email@example.com",
                    "explicit_content": {"filter_enabled": false, "filter_locked": false},
                    "external_urls": {"spotify": "https://open.spotify.com/user/wizzler"},
                    "followers": {"href": null, "total": 3829},
                    "href": "https://api.spotify.com/v1/users/wizzler", "id": "wizzler",
                    "images": [{"height": null, "url": "https://i.scdn.co/image/ab6775700000ee85", "width": null}],
                    "product": "premium", "type": "user", "uri": "spotify:user:wizzler"
                }),
                Profile {
                    uid: "wizzler".into(),
                    email: o("email@example.com"),
                    username: o("wizzler"),
                    name: o("JM Wizzler"),
                    picture: o("https://i.scdn.co/image/ab6775700000ee85"),
                    ..Profile::default()
                },
            ),
            (
                "reddit",
                json!({
                    "id": "1w72", "name": "spez", "verified": true, "has_verified_email": true,
                    "icon_img": "https://styles.redditmedia.com/t5_3k30p/styles/profileIcon_snoo.png",
                    "created_utc": 1_118_030_400.0, "link_karma": 1, "comment_karma": 2
                }),
                Profile {
                    uid: "1w72".into(),
                    username: o("spez"),
                    name: o("spez"),
                    picture: o(
                        "https://styles.redditmedia.com/t5_3k30p/styles/profileIcon_snoo.png",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "bitbucket",
                json!({
                    "type": "user", "uuid": "{d301aafa-d676-4ee0-88be-962be7417567}",
                    "account_id": "557058:c0b72ad0-1cb5-4018-9cdc-0cde8492c443",
                    "nickname": "evzijst", "display_name": "Erik van Zijst",
                    "links": {"avatar": {"href": "https://bitbucket.org/account/evzijst/avatar/"}},
                    "created_on": "2010-07-07T04:29:40.218151+00:00",
                    "emails": {"pagelen": 10, "page": 1, "size": 2, "values": [
                        {"type": "email", "email": "old@example.com", "is_primary": false, "is_confirmed": true},
                        {"type": "email", "email": "erik@example.com", "is_primary": true, "is_confirmed": true}
                    ]}
                }),
                Profile {
                    uid: "{d301aafa-d676-4ee0-88be-962be7417567}".into(),
                    email: o("erik@example.com"),
                    email_verified: true,
                    username: o("evzijst"),
                    name: o("Erik van Zijst"),
                    picture: o("https://bitbucket.org/account/evzijst/avatar/"),
                    ..Profile::default()
                },
            ),
            (
                "dropbox",
                json!({
                    "email": "your-email@domain.com", "email_verified": true,
                    "family_name": "Ferdinand", "given_name": "Franz",
                    "iss": "https://www.dropbox.com",
                    "sub": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
                    "exp": 1_655_080_600, "iat": 1_655_077_000, "aud": "a12fbpq596acfbc",
                    "auth_time": 1_655_077_000
                }),
                Profile {
                    uid: "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc".into(),
                    email: o("your-email@domain.com"),
                    email_verified: true,
                    first_name: o("Franz"),
                    last_name: o("Ferdinand"),
                    ..Profile::default()
                },
            ),
            (
                "amazon",
                json!({
                    "email": "johndoe@gmail.com", "name": "John Doe",
                    "user_id": "amzn1.account.K2LI23KL2LK2"
                }),
                Profile {
                    uid: "amzn1.account.K2LI23KL2LK2".into(),
                    email: o("johndoe@gmail.com"),
                    name: o("John Doe"),
                    ..Profile::default()
                },
            ),
            (
                "yahoo",
                json!({
                    "sub": "FSVIDUW3D7FSVIDUW3D72F2F", "name": "Jane Doe",
                    "given_name": "Jane", "family_name": "Doe",
                    "preferred_username": "j.doe", "email": "janedoe@example.com",
                    "picture": "http://example.com/janedoe/me.jpg"
                }),
                Profile {
                    uid: "FSVIDUW3D7FSVIDUW3D72F2F".into(),
                    email: o("janedoe@example.com"),
                    username: o("j.doe"),
                    name: o("Jane Doe"),
                    first_name: o("Jane"),
                    last_name: o("Doe"),
                    picture: o("http://example.com/janedoe/me.jpg"),
                    ..Profile::default()
                },
            ),
            (
                "okta",
                json!({
                    "sub": "00uid4BxXw6I6TV4m0g3", "name": "John Doe", "nickname": "Jimmy",
                    "given_name": "John", "family_name": "Doe",
                    "preferred_username": "john.doe@example.com",
                    "email": "john.doe@example.com", "email_verified": true,
                    "locale": "en-US", "zoneinfo": "America/Los_Angeles",
                    "updated_at": 1_311_280_970
                }),
                Profile {
                    uid: "00uid4BxXw6I6TV4m0g3".into(),
                    email: o("john.doe@example.com"),
                    email_verified: true,
                    username: o("john.doe@example.com"),
                    name: o("John Doe"),
                    first_name: o("John"),
                    last_name: o("Doe"),
                    ..Profile::default()
                },
            ),
            (
                "auth0",
                json!({
                    "sub": "auth0|248289761001", "name": "Jane Josephine Doe",
                    "given_name": "Jane", "family_name": "Doe", "nickname": "jdoe",
                    "picture": "https://s.gravatar.com/avatar/jdoe.png",
                    "email": "janedoe@exampleco.com", "email_verified": true,
                    "updated_at": "2024-01-01T00:00:00.000Z"
                }),
                Profile {
                    uid: "auth0|248289761001".into(),
                    email: o("janedoe@exampleco.com"),
                    email_verified: true,
                    username: o("jdoe"),
                    name: o("Jane Josephine Doe"),
                    first_name: o("Jane"),
                    last_name: o("Doe"),
                    picture: o("https://s.gravatar.com/avatar/jdoe.png"),
                },
            ),
            (
                "keycloak",
                json!({
                    "sub": "f1c6e3b0-5b0c-4a57-9a63-0c1e3bd0b0c2", "email_verified": false,
                    "name": "Jane Doe", "preferred_username": "jane",
                    "given_name": "Jane", "family_name": "Doe", "email": "jane@example.com"
                }),
                Profile {
                    uid: "f1c6e3b0-5b0c-4a57-9a63-0c1e3bd0b0c2".into(),
                    email: o("jane@example.com"),
                    email_verified: false,
                    username: o("jane"),
                    name: o("Jane Doe"),
                    first_name: o("Jane"),
                    last_name: o("Doe"),
                    ..Profile::default()
                },
            ),
            (
                "zitadel",
                json!({
                    "sub": "163840776835432705", "name": "Road Runner",
                    "given_name": "Road", "family_name": "Runner", "nickname": "Runner",
                    "preferred_username": "road.runner@acme.zitadel.cloud",
                    "email": "road.runner@acme.ch", "email_verified": true,
                    "picture": "https://acme.zitadel.cloud/assets/v1/avatar.png",
                    "locale": "de", "updated_at": 1_658_329_554
                }),
                Profile {
                    uid: "163840776835432705".into(),
                    email: o("road.runner@acme.ch"),
                    email_verified: true,
                    username: o("road.runner@acme.zitadel.cloud"),
                    name: o("Road Runner"),
                    first_name: o("Road"),
                    last_name: o("Runner"),
                    picture: o("https://acme.zitadel.cloud/assets/v1/avatar.png"),
                },
            ),
            (
                "salesforce",
                json!({
                    "sub": "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P",
                    "user_id": "005x00000012Q9P", "organization_id": "00Dx0000000BV7z",
                    "preferred_username": "admin@example.com", "nickname": "admin1.3896",
                    "name": "Admin User", "email": "admin@example.com", "email_verified": true,
                    "given_name": "Admin", "family_name": "User",
                    "zoneinfo": "America/Los_Angeles",
                    "photos": {"picture": "https://c.salesforce.com/profilephoto/005/F",
                               "thumbnail": "https://c.salesforce.com/profilephoto/005/T"},
                    "profile": "https://example.my.salesforce.com/005x00000012Q9P",
                    "is_salesforce_integration_user": false
                }),
                Profile {
                    uid: "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P".into(),
                    email: o("admin@example.com"),
                    email_verified: true,
                    username: o("admin@example.com"),
                    name: o("Admin User"),
                    first_name: o("Admin"),
                    last_name: o("User"),
                    picture: o("https://c.salesforce.com/profilephoto/005/F"),
                },
            ),
            (
                "line",
                json!({
                    "iss": "https://access.line.me", "sub": "U1234567890abcdef1234567890abcdef",
                    "aud": "1234567890", "exp": 1_504_169_092, "iat": 1_504_263_657,
                    "nonce": "0987654asdf", "amr": ["pwd"], "name": "Taro Line",
                    "picture": "https://sample_line.me/aBcdefg123456",
                    "email": "taro.line@example.com"
                }),
                Profile {
                    uid: "U1234567890abcdef1234567890abcdef".into(),
                    email: o("taro.line@example.com"),
                    name: o("Taro Line"),
                    picture: o("https://sample_line.me/aBcdefg123456"),
                    ..Profile::default()
                },
            ),
            (
                "kakao",
                json!({
                    "sub": "1234567890", "nickname": "Ryan",
                    "picture": "http://yyy.kakao.com/dn/.../img_110x110.jpg",
                    "email": "sample@sample.com", "email_verified": true,
                    "gender": "MALE", "birthdate": "2002-11-30",
                    "phone_number": "+82 00-0000-0000", "phone_number_verified": true
                }),
                Profile {
                    uid: "1234567890".into(),
                    email: o("sample@sample.com"),
                    email_verified: true,
                    username: o("Ryan"),
                    name: o("Ryan"),
                    picture: o("http://yyy.kakao.com/dn/.../img_110x110.jpg"),
                    ..Profile::default()
                },
            ),
            (
                "naver",
                json!({"resultcode": "00", "message": "success", "response": {
                    "id": "32742776", "nickname": "OpenAPI", "name": "Open API",
                    "email": "openapi@naver.com", "gender": "F", "age": "40-49",
                    "birthday": "10-01",
                    "profile_image": "https://ssl.pstatic.net/static/pwe/address/nodata_33x33.gif",
                    "birthyear": "1900", "mobile": "010-0000-0000"
                }}),
                Profile {
                    uid: "32742776".into(),
                    email: o("openapi@naver.com"),
                    username: o("OpenAPI"),
                    name: o("Open API"),
                    picture: o("https://ssl.pstatic.net/static/pwe/address/nodata_33x33.gif"),
                    ..Profile::default()
                },
            ),
            (
                "yandex",
                json!({
                    "id": "1000034426", "login": "ivan",
                    "client_id": "4760187d81bc4b7799476b42b5103713",
                    "display_name": "Ivan", "real_name": "Ivan Ivanov",
                    "first_name": "Ivan", "last_name": "Ivanov", "sex": "male",
                    "default_email": "test@yandex.ru",
                    "emails": ["test@yandex.ru", "other-test@yandex.ru"],
                    "default_avatar_id": "131652443", "is_avatar_empty": false,
                    "psuid": "1.AAceCw.tbHgw5DtJ9_zeqPrk-Ba2w.qPWSRC5v2t2IaksPJgnge"
                }),
                Profile {
                    uid: "1000034426".into(),
                    email: o("test@yandex.ru"),
                    username: o("ivan"),
                    name: o("Ivan Ivanov"),
                    first_name: o("Ivan"),
                    last_name: o("Ivanov"),
                    picture: o("https://avatars.yandex.net/get-yapic/131652443/islands-200"),
                    ..Profile::default()
                },
            ),
            (
                "patreon",
                json!({
                    "data": {
                        "attributes": {
                            "email": "platform@patreon.com", "first_name": "Platform",
                            "full_name": "Platform Team", "image_url": "https://c8.patreon.com/2/200/0000000",
                            "is_email_verified": true, "last_name": "Team", "vanity": "platform"
                        },
                        "id": "0000000", "type": "user"
                    },
                    "links": {"self": "https://www.patreon.com/api/oauth2/v2/user/0000000"}
                }),
                Profile {
                    uid: "0000000".into(),
                    email: o("platform@patreon.com"),
                    email_verified: true,
                    username: o("platform"),
                    name: o("Platform Team"),
                    first_name: o("Platform"),
                    last_name: o("Team"),
                    picture: o("https://c8.patreon.com/2/200/0000000"),
                },
            ),
            (
                "atlassian",
                json!({
                    "account_type": "atlassian",
                    "account_id": "112233aa-bb11-cc22-33dd-445566abcabc",
                    "email": "mia@example.com", "name": "Mia Krystof",
                    "picture": "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/112233aa/1.png",
                    "account_status": "active", "nickname": "mkrystof",
                    "zoneinfo": "Australia/Sydney", "locale": "en-US",
                    "extended_profile": {"job_title": "Designer", "department": "Design team", "location": "Sydney"}
                }),
                Profile {
                    uid: "112233aa-bb11-cc22-33dd-445566abcabc".into(),
                    email: o("mia@example.com"),
                    username: o("mkrystof"),
                    name: o("Mia Krystof"),
                    picture: o(
                        "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/112233aa/1.png",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "zoom",
                json!({
                    "id": "KDcuGIm1QgePTO8WbOqwIQ", "first_name": "Jill", "last_name": "Chill",
                    "display_name": "Jill Chill", "email": "jchill@example.com", "type": 2,
                    "role_name": "Owner", "pmi": 3_542_471_135_u64, "use_pmi": false,
                    "timezone": "Asia/Shanghai", "verified": 1, "dept": "",
                    "pic_url": "https://example.com/photo.jpg", "language": "en-US",
                    "status": "active", "account_id": "q6gBJVO5TzexKYTb_I2rpg"
                }),
                Profile {
                    uid: "KDcuGIm1QgePTO8WbOqwIQ".into(),
                    email: o("jchill@example.com"),
                    name: o("Jill Chill"),
                    first_name: o("Jill"),
                    last_name: o("Chill"),
                    picture: o("https://example.com/photo.jpg"),
                    ..Profile::default()
                },
            ),
            (
                "strava",
                json!({
                    "id": 1_234_567_890_987_654_321_u64, "username": "marianne_t",
                    "resource_state": 3, "firstname": "Marianne", "lastname": "Teutenberg",
                    "city": "San Francisco", "state": "CA", "country": "US", "sex": "F",
                    "premium": true,
                    "profile_medium": "https://xxxxxx.cloudfront.net/pictures/athletes/123456789/123456789/2/medium.jpg",
                    "profile": "https://xxxxx.cloudfront.net/pictures/athletes/123456789/123456789/2/large.jpg"
                }),
                Profile {
                    uid: "1234567890987654321".into(),
                    username: o("marianne_t"),
                    first_name: o("Marianne"),
                    last_name: o("Teutenberg"),
                    picture: o(
                        "https://xxxxx.cloudfront.net/pictures/athletes/123456789/123456789/2/large.jpg",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "wordpress",
                json!({
                    "ID": 18_342_963, "display_name": "binarysmash", "username": "binarysmash",
                    "email": "binarysmash@example.com", "primary_blog": 30_000_000,
                    "language": "en",
                    "avatar_URL": "https://0.gravatar.com/avatar/a178ebb1731d432338e6bb0158720fcc?s=96",
                    "profile_URL": "https://en.gravatar.com/binarysmash",
                    "verified": true, "email_verified": true, "date": "2010-07-29T17:32:42+00:00",
                    "site_count": 1, "phone_account": false
                }),
                Profile {
                    uid: "18342963".into(),
                    email: o("binarysmash@example.com"),
                    email_verified: true,
                    username: o("binarysmash"),
                    name: o("binarysmash"),
                    picture: o(
                        "https://0.gravatar.com/avatar/a178ebb1731d432338e6bb0158720fcc?s=96",
                    ),
                    ..Profile::default()
                },
            ),
            (
                "battlenet",
                json!({"sub": "123456789", "id": 123_456_789, "battletag": "Player#1234"}),
                Profile {
                    uid: "123456789".into(),
                    username: o("Player#1234"),
                    name: o("Player#1234"),
                    ..Profile::default()
                },
            ),
            (
                "mailru",
                json!({
                    "id": "123456789", "client_id": "880b4a6b0e2845bdb5c7ee3eef3a6ec8",
                    "gender": "m", "name": "Ivan Ivanov", "nickname": "ivan",
                    "locale": "ru_RU", "first_name": "Ivan", "last_name": "Ivanov",
                    "birthday": "01.01.1990", "email": "ivan@mail.ru",
                    "image": "https://filin.mail.ru/pic?d=abc&width=180&height=180"
                }),
                Profile {
                    uid: "123456789".into(),
                    email: o("ivan@mail.ru"),
                    username: o("ivan"),
                    name: o("Ivan Ivanov"),
                    first_name: o("Ivan"),
                    last_name: o("Ivanov"),
                    picture: o("https://filin.mail.ru/pic?d=abc&width=180&height=180"),
                    ..Profile::default()
                },
            ),
        ]
    }

    #[test]
    fn every_preset_maps_its_providers_documented_profile() {
        let c = catalogue();
        let cases = documented_profiles();
        let mut covered: Vec<&str> = cases.iter().map(|(name, _, _)| *name).collect();
        covered.sort_unstable();
        assert_eq!(covered, NAMES, "one documented profile per preset");
        for (name, doc, expected) in cases {
            let p = c.get(name).expect(name);
            assert_eq!(p.profile.extract(&doc).as_ref(), Some(&expected), "{name}");
        }
    }

    /// No address where the provider gives none, and never a verified one
    /// without the provider's own flag for it.
    #[test]
    fn addresses_are_verified_only_by_the_providers_flag() {
        let c = catalogue();
        let extract = |name: &str, doc: Value| {
            c.get(name)
                .expect(name)
                .profile
                .extract(&doc)
                .expect("a profile")
        };
        // Providers that give no address: none.
        let x = extract(
            "x",
            json!({"data": {"id": "1", "username": "u", "name": "U"}}),
        );
        assert_eq!((x.email, x.email_verified), (None, false));
        let reddit = extract(
            "reddit",
            json!({"id": "1w72", "name": "spez", "has_verified_email": true}),
        );
        assert_eq!((reddit.email, reddit.email_verified), (None, false));
        for name in ["instagram", "strava", "battlenet"] {
            let p = extract(name, json!({"id": 1, "user_id": 1, "sub": "1"}));
            assert_eq!((p.email, p.email_verified), (None, false), "{name}");
        }
        // GitHub: the primary address as its `verified` says; without the
        // list, the public address, unverified.
        let github = |emails: Value| {
            let mut doc = json!({"id": 1, "login": "octocat", "email": "public@example.com"});
            if !emails.is_null() {
                doc["emails"] = emails;
            }
            let p = extract("github", doc);
            (p.email, p.email_verified)
        };
        assert_eq!(
            github(
                json!([{"email": "main@example.com", "primary": true, "verified": false, "visibility": "private"}])
            ),
            (o("main@example.com"), false)
        );
        assert_eq!(
            github(
                json!([{"email": "main@example.com", "primary": true, "verified": true, "visibility": null}])
            ),
            (o("main@example.com"), true)
        );
        assert_eq!(github(Value::Null), (o("public@example.com"), false));
        // Bitbucket: an unconfirmed primary address stays unverified.
        let bb = extract(
            "bitbucket",
            json!({"uuid": "{u}", "emails": {"values": [
                {"email": "a@example.com", "is_primary": true, "is_confirmed": false}
            ]}}),
        );
        assert_eq!((bb.email, bb.email_verified), (o("a@example.com"), false));
        // Zoom's `verified` is about the account: never the address's.
        let zoom = extract(
            "zoom",
            json!({"id": "z", "email": "z@example.com", "verified": 1}),
        );
        assert!(!zoom.email_verified);
        // Salesforce: `photos.picture` when there is no `picture`.
        let sf = extract(
            "salesforce",
            json!({"sub": "s", "photos": {"picture": "https://c.example/F"}}),
        );
        assert_eq!(sf.picture, o("https://c.example/F"));
        // Kakao: the name, else the nickname.
        let kakao = extract(
            "kakao",
            json!({"sub": "1", "name": "Hong", "nickname": "Ryan"}),
        );
        assert_eq!((kakao.name, kakao.username), (o("Hong"), o("Ryan")));
    }

    /// The TOML examples of `docs/PROVIDERS.md` load and resolve.
    #[test]
    fn the_providers_page_examples_load() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROVIDERS.md");
        let page = std::fs::read_to_string(&path).expect("docs/PROVIDERS.md");
        let mut blocks = 0;
        let mut rest = page.as_str();
        while let Some(start) = rest.find("```toml\n") {
            let body = &rest[start + "```toml\n".len()..];
            let end = body.find("```").expect("a closed block");
            let text = &body[..end];
            let s = settings(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            Catalogue::from_settings(&s).unwrap_or_else(|e| panic!("{e}\n{text}"));
            blocks += 1;
            rest = &body[end + 3..];
        }
        assert!(blocks >= 2, "{blocks} examples");
        for name in NAMES {
            assert!(
                page.contains(&format!("| `{name}` |")),
                "{name} in the table"
            );
        }
    }
}
