//! The disconnect rule: which of a user's links a disconnect removes, and
//! when it may not. The api runs it on the links it read under the user's
//! lock ([`crate::store::StoreTx::lock_active_user`]), so two disconnects
//! of one user are decided one after the other.

use crate::types::SocialAccount;

/// Why a disconnect removes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user has no such link (none of the provider's, or not this id,
    /// or this id is another provider's).
    NotFound,
    /// It would remove the user's last link: their last way to sign in.
    LastLogin,
}

/// The links of `links` (all of one user's) that disconnecting `provider`
/// removes: every link of the provider, or the one `association_id` names.
/// Refused when nothing matches, or when nothing would be left to sign in
/// with: socialauth users sign in only through their links, and only
/// through those of a provider that is configured (`signs_in`) — a link of
/// a provider removed from the configuration is no way in.
pub fn links_to_remove<'a>(
    links: &'a [SocialAccount],
    provider: &str,
    association_id: Option<i64>,
    signs_in: impl Fn(&str) -> bool,
) -> Result<Vec<&'a SocialAccount>, Refused> {
    let removed: Vec<&SocialAccount> = links
        .iter()
        .filter(|l| l.provider == provider && association_id.is_none_or(|id| l.id == id))
        .collect();
    if removed.is_empty() {
        return Err(Refused::NotFound);
    }
    let ways_in_left = links
        .iter()
        .filter(|l| !removed.iter().any(|r| r.id == l.id) && signs_in(&l.provider))
        .count();
    if ways_in_left == 0 {
        return Err(Refused::LastLogin);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::UserId;

    fn link(id: i64, provider: &str) -> SocialAccount {
        SocialAccount {
            id,
            user_id: UserId(1),
            provider: provider.into(),
            uid: format!("u{id}"),
            email: None,
            expires_at: None,
            needs_reauth: false,
            created_at: 0,
            last_login_at: 0,
        }
    }

    fn any(_: &str) -> bool {
        true
    }

    fn ids(r: Result<Vec<&SocialAccount>, Refused>) -> Result<Vec<i64>, Refused> {
        r.map(|v| v.iter().map(|l| l.id).collect())
    }

    #[test]
    fn the_last_way_in_is_never_removed() {
        let links = [link(1, "corp"), link(2, "corp"), link(3, "github")];
        assert_eq!(
            ids(links_to_remove(&links, "corp", None, any)),
            Ok(vec![1, 2])
        );
        assert_eq!(
            ids(links_to_remove(&links, "corp", Some(2), any)),
            Ok(vec![2])
        );
        assert_eq!(
            ids(links_to_remove(&links, "github", None, any)),
            Ok(vec![3])
        );
        // Another provider's id, an unknown id, an unknown provider.
        assert_eq!(
            ids(links_to_remove(&links, "github", Some(1), any)),
            Err(Refused::NotFound)
        );
        assert_eq!(
            ids(links_to_remove(&links, "corp", Some(9), any)),
            Err(Refused::NotFound)
        );
        assert_eq!(
            ids(links_to_remove(&links, "x", None, any)),
            Err(Refused::NotFound)
        );
        let one = [link(1, "corp")];
        assert_eq!(
            ids(links_to_remove(&one, "corp", None, any)),
            Err(Refused::LastLogin)
        );
        assert_eq!(
            ids(links_to_remove(&one, "corp", Some(1), any)),
            Err(Refused::LastLogin)
        );
        let same = [link(1, "corp"), link(2, "corp")];
        assert_eq!(
            ids(links_to_remove(&same, "corp", None, any)),
            Err(Refused::LastLogin)
        );
        assert_eq!(
            ids(links_to_remove(&same, "corp", Some(1), any)),
            Ok(vec![1])
        );
        // A link of a provider no longer configured is no way in: it does
        // not keep the last configured one, and can itself be removed.
        let stale = [link(1, "gone"), link(2, "corp")];
        let configured = |p: &str| p == "corp";
        assert_eq!(
            ids(links_to_remove(&stale, "corp", None, configured)),
            Err(Refused::LastLogin)
        );
        assert_eq!(
            ids(links_to_remove(&stale, "gone", None, configured)),
            Ok(vec![1])
        );
    }
}
