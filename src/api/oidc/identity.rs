//! Who a signed-in person is for borne: the user whose `login` matches
//! their `user_claim`, else what their groups map to (`oidc.groups`), else
//! nobody. Pure: evaluated at sign-in and again on every request against
//! the configuration in force, so a reload that removes or re-scopes a
//! person takes effect on their very next request.

use std::collections::BTreeSet;

use crate::config::oidc::Oidc;
use crate::config::{Config, Role, User};

fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Teacher => 1,
        Role::Admin => 2,
    }
}

/// The borne user for this person, or `None` when nothing matches.
///
/// A `users[]` entry with this `login` wins over any group. Among matching
/// groups, the highest role wins (admin, then teacher, then viewer) and the
/// person gets the union of that role's mappings' scopes. The user's name
/// (what the audit log shows) is the login.
pub fn resolve(config: &Config, oidc: &Oidc, login: &str, groups: &[String]) -> Option<User> {
    if let Some(u) = config.users.iter().find(|u| u.login.as_deref() == Some(login)) {
        return Some(u.clone());
    }
    let matching: Vec<_> = oidc.groups.iter().filter(|m| groups.contains(&m.group)).collect();
    let role = matching.iter().map(|m| m.role).max_by_key(|r| rank(*r))?;
    let mut scope: Option<BTreeSet<_>> = Some(BTreeSet::new());
    for m in matching.iter().filter(|m| m.role == role) {
        match (&mut scope, &m.scope) {
            (Some(all), Some(more)) => all.extend(more.iter().cloned()),
            // One mapping without a scope: every classroom.
            (_, None) => scope = None,
            (None, Some(_)) => {}
        }
    }
    Some(User {
        name: login.to_owned(),
        role,
        token_sha256: None,
        login: Some(login.to_owned()),
        demo_token: None,
        scope,
        schools: Vec::new(),
        classrooms: Vec::new(),
        expires: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
public_url: http://127.0.0.1:8080
schedules:
  open: { default_mode: available, rules: [{ at: "0 0 1 1 *", mode: available }] }
schools:
  - id: jules-ferry
    schedule: open
    classrooms:
      - id: jf-cm1a
        access_points: [{ id: ap-1, sim: {} }]
      - id: jf-cm2
        access_points: [{ id: ap-2, sim: {} }]
  - id: pasteur
    schedule: open
    classrooms:
      - id: pa-cp
        access_points: [{ id: ap-3, sim: {} }]
users:
  - name: mme-martin
    login: c.martin
    role: teacher
    classrooms: [jf-cm1a]
oidc:
  issuer: http://127.0.0.1:9
  client_id: borne
  roles_claim: groups
  groups:
    - { group: jf-enseignants, role: teacher, schools: [jules-ferry] }
    - { group: pasteur-enseignants, role: teacher, schools: [pasteur] }
    - { group: dsi, role: admin }
    - { group: inspection, role: viewer }
"#;

    fn config() -> Config {
        crate::config::from_str(YAML, "test.yaml", None).expect("valid").config
    }

    fn resolved(login: &str, groups: &[&str]) -> Option<User> {
        let c = config();
        let oidc = c.oidc.clone().expect("oidc");
        let groups: Vec<String> = groups.iter().map(|s| (*s).to_owned()).collect();
        resolve(&c, &oidc, login, &groups)
    }

    fn scope(u: &User) -> Option<Vec<String>> {
        u.scope.as_ref().map(|s| s.iter().map(|c| c.to_string()).collect())
    }

    #[test]
    fn a_login_match_wins_over_groups() {
        let u = resolved("c.martin", &["dsi"]).expect("matched");
        assert_eq!(u.name, "mme-martin");
        assert_eq!(u.role, Role::Teacher);
        assert_eq!(scope(&u), Some(vec!["jf-cm1a".into()]));
    }

    #[test]
    fn teacher_groups_add_up_their_schools() {
        let u = resolved("x.y", &["jf-enseignants", "pasteur-enseignants", "other"]).expect("matched");
        assert_eq!(u.name, "x.y");
        assert_eq!(u.role, Role::Teacher);
        assert_eq!(scope(&u), Some(vec!["jf-cm1a".into(), "jf-cm2".into(), "pa-cp".into()]));
        assert!(u.token_sha256.is_none());
    }

    #[test]
    fn the_highest_role_wins_and_an_unscoped_admin_sees_everything() {
        let u = resolved("boss", &["inspection", "dsi", "jf-enseignants"]).expect("matched");
        assert_eq!(u.role, Role::Admin);
        assert_eq!(scope(&u), None);
    }

    #[test]
    fn a_person_matching_nothing_is_nobody() {
        assert!(resolved("p.inconnu", &["parents"]).is_none());
        assert!(resolved("p.inconnu", &[]).is_none());
    }
}
