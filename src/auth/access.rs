//! The one table of which role each gRPC method and dashboard page needs. A method that is not
//! in it is denied: a new RPC must be added here before anyone can call it.
//!
//! One check is finer than a path: a projection read with `as_of` set needs `auditor`. The
//! service checks that itself, where the request is decoded ([`require`]).

use tonic::Status;

use super::{Principal, Role};

/// What a method or page needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with no credential at all: health checks.
    Public,
    /// A principal holding this role.
    Role(Role),
    /// Nobody: a path we do not serve.
    Denied,
}

/// The access a gRPC method (`/package.Service/Method`) needs.
pub fn required_access(path: &str) -> Access {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Access::Denied;
    };
    use Access::{Public, Role as R};
    match (service, method) {
        ("grpc.health.v1.Health", _) => Public,
        ("grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection", _) => {
            R(Role::Reader)
        }
        (
            "diplog.v1.EventLog",
            "ReadStream" | "ReadAll" | "ReadStreamBatches" | "ReadAllBatches" | "GetHead"
            | "Subscribe",
        ) => R(Role::Reader),
        ("diplog.v1.EventLog", "Append" | "AppendMany") => R(Role::Writer),
        ("diplog.v1.Diplomacy", "Record" | "RecordMany" | "ReadRecordingInputs") => R(Role::Writer),
        ("diplog.v1.Diplomacy", "ReadEvents" | "GetEvent") => R(Role::Reader),
        ("diplog.v1.Projections", "Rebuild") => R(Role::Admin),
        // Reads; `as_of` additionally needs auditor, checked in the service.
        (
            "diplog.v1.Projections",
            "ListChannels" | "GetChannel" | "ListSummits" | "GetSummit" | "ListCommitments"
            | "GetCommitment" | "GetTimeline" | "ListRelations" | "GetRelations"
            | "ListDivergences" | "GetDivergence" | "GetStatus" | "WatchProjection" | "Search",
        ) => R(Role::Reader),
        ("diplog.v1.Audit", _) => R(Role::Auditor),
        ("diplog.v1.Admin", _) => R(Role::Admin),
        _ => Access::Denied,
    }
}

/// The access a dashboard path needs, before looking at `?as_of=` (auditor, checked by the
/// middleware on the query string).
pub fn required_page_access(path: &str) -> Access {
    match path {
        "/healthz" | "/login" | "/logout" => Access::Public,
        // The stylesheet and script are the same for everyone and reveal nothing.
        p if p.starts_with("/assets/") => Access::Public,
        // The events themselves (tlog-tiles entry bundles): reading the log.
        p if p.starts_with("/tile/entries/") => Access::Role(Role::Reader),
        // The signed tree head and the tree's hashes reveal no event, only the log's size and
        // hashes of events (whose random ids make them unguessable); witnesses and monitors
        // fetch them without a credential, as from any public transparency log.
        "/checkpoint" => Access::Public,
        p if p.starts_with("/tile/") => Access::Public,
        _ => Access::Role(Role::Reader),
    }
}

/// The principal of a request the auth layer let through, or UNAUTHENTICATED if there is none
/// (a service reached without the layer fails closed).
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated("no authenticated principal"))
}

/// PERMISSION_DENIED unless the request's principal holds `needed`; `what` names the thing
/// asked for.
pub fn require<T>(request: &tonic::Request<T>, needed: Role, what: &str) -> Result<(), Status> {
    let principal = principal(request)?;
    if principal.may(needed) {
        Ok(())
    } else {
        Err(denied(principal, needed, what))
    }
}

/// The PERMISSION_DENIED answer: the role needed and the roles held.
pub fn denied(principal: &Principal, needed: Role, what: &str) -> Status {
    Status::permission_denied(denied_message(principal, needed, what))
}

pub fn denied_message(principal: &Principal, needed: Role, what: &str) -> String {
    let held = if principal.roles.is_empty() {
        "no role".to_owned()
    } else {
        principal
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{what} needs role {needed}; {:?} holds {held}",
        principal.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_needs_its_role_and_unknown_ones_are_denied() {
        let cases = [
            ("/grpc.health.v1.Health/Check", Access::Public),
            ("/grpc.health.v1.Health/Watch", Access::Public),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Access::Role(Role::Reader),
            ),
            ("/diplog.v1.EventLog/ReadAll", Access::Role(Role::Reader)),
            (
                "/diplog.v1.EventLog/ReadAllBatches",
                Access::Role(Role::Reader),
            ),
            (
                "/diplog.v1.EventLog/ReadStreamBatches",
                Access::Role(Role::Reader),
            ),
            ("/diplog.v1.EventLog/Subscribe", Access::Role(Role::Reader)),
            ("/diplog.v1.EventLog/GetHead", Access::Role(Role::Reader)),
            ("/diplog.v1.EventLog/Append", Access::Role(Role::Writer)),
            ("/diplog.v1.Diplomacy/Record", Access::Role(Role::Writer)),
            ("/diplog.v1.EventLog/AppendMany", Access::Role(Role::Writer)),
            (
                "/diplog.v1.Diplomacy/RecordMany",
                Access::Role(Role::Writer),
            ),
            ("/diplog.v1.Diplomacy/GetEvent", Access::Role(Role::Reader)),
            (
                "/diplog.v1.Diplomacy/ReadRecordingInputs",
                Access::Role(Role::Writer),
            ),
            (
                "/diplog.v1.Projections/ListChannels",
                Access::Role(Role::Reader),
            ),
            (
                "/diplog.v1.Projections/WatchProjection",
                Access::Role(Role::Reader),
            ),
            ("/diplog.v1.Projections/Search", Access::Role(Role::Reader)),
            ("/diplog.v1.Projections/Rebuild", Access::Role(Role::Admin)),
            ("/diplog.v1.Audit/GetTreeHead", Access::Role(Role::Auditor)),
            ("/diplog.v1.Admin/CreateToken", Access::Role(Role::Admin)),
            ("/diplog.v1.EventLog/Truncate", Access::Denied),
            ("/diplog.v1.Projections/DropAll", Access::Denied),
            ("/other.Service/Method", Access::Denied),
            ("", Access::Denied),
            ("/", Access::Denied),
        ];
        for (path, access) in cases {
            assert_eq!(required_access(path), access, "{path}");
        }
    }

    #[test]
    fn pages_need_reader_but_health_assets_checkpoint_and_hash_tiles() {
        assert_eq!(required_page_access("/healthz"), Access::Public);
        assert_eq!(
            required_page_access("/assets/dashboard.css"),
            Access::Public
        );
        assert_eq!(required_page_access("/checkpoint"), Access::Public);
        assert_eq!(required_page_access("/tile/0/000.p/3"), Access::Public);
        assert_eq!(
            required_page_access("/tile/entries/000"),
            Access::Role(Role::Reader)
        );
        for page in [
            "/",
            "/channels",
            "/live",
            "/relations/RUS/USA",
            "/streams",
            "/streams/occurrence-1/2",
            "/log/7",
            "/network/RUS",
            "/lifecycle",
            "/nope",
        ] {
            assert_eq!(
                required_page_access(page),
                Access::Role(Role::Reader),
                "{page}"
            );
        }
    }
}
