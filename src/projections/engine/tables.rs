//! The names of a projection's tables (`migrations/…_projection_generations.sql`,
//! `…_projection_versions.sql`): a generation's rows, and the versions its commits replaced.

/// The table of generation `generation` of `name`'s rows, quoted as an identifier (as
/// `diplog_projection_table` names it).
pub(crate) fn rows_table(name: &str, generation: u64) -> String {
    quote(&format!("projection_rows_{name}_{generation}"))
}

/// The table of the versions of generation `generation` of `name`'s rows that later commits
/// replaced or removed, quoted.
pub(crate) fn history_table(name: &str, generation: u64) -> String {
    quote(&history_name(name, generation))
}

/// What the names of `name`'s history tables start with (the generation follows).
pub(crate) fn history_prefix(name: &str) -> String {
    format!("projection_history_{name}_")
}

/// [`history_table`], unquoted.
fn history_name(name: &str, generation: u64) -> String {
    format!("{}{generation}", history_prefix(name))
}

/// `identifier` quoted for SQL.
pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_as_the_migrations_name_them() {
        assert_eq!(rows_table("channels", 3), "\"projection_rows_channels_3\"");
        assert_eq!(
            history_table("divergence", 12),
            "\"projection_history_divergence_12\""
        );
    }

    #[test]
    fn every_projection_name_makes_a_plain_table_name() {
        for name in crate::projections::NAMES {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            // PostgreSQL's limit on identifiers (63 bytes), with room for a generation and
            // an index suffix.
            assert!(format!("projection_history_{name}_{}_status", u32::MAX).len() <= 63);
        }
    }
}
