//! Planner statistics for the generation tables a runner fills.
//!
//! A new generation's table has none, and without them PostgreSQL takes `projection = $1 and
//! generation = $2`, which every row of the table matches, for a selective condition (a
//! default selectivity of 1/200 each): it plans the runner's lookups and deletes by key
//! (`by_key.rs`) as a walk of the whole primary key that filters by key, so every batch reads
//! the whole generation. Autovacuum analyzes a table only after about a minute; a 12 s burst of
//! typed records spent about 70% of PostgreSQL's CPU in those walks. So the runner analyzes each
//! table it writes once it has written 1,000 rows to it, and again at 10,000, 100,000 and so
//! on. It analyzes only the columns those statements name: a whole analysis (with the
//! statistics of the data, the arrays and the search text that readers' filters use) took 60
//! to 140 ms at 30,000 rows. A partial analysis leaves autovacuum's count of changed rows
//! alone, so autovacuum still analyzes the whole table when that is due. (That was measured
//! while the primary key led with `projection` and `generation`; since
//! `…_projection_row_keys.sql` it is the key alone, and whether lookups by key still need the
//! statistics has not been measured again.)

use sqlx::PgConnection;
use tracing::debug;

use super::generations;

/// The rows a runner writes to a table before its first analysis of it.
const FIRST_ANALYSIS_ROWS: u64 = 1000;

/// What a runner has written to one generation's table since it started, and when it next
/// analyzes the table.
#[derive(Debug)]
pub(super) struct Statistics {
    written: u64,
    next_analysis: u64,
}

impl Default for Statistics {
    fn default() -> Self {
        Self {
            written: 0,
            next_analysis: FIRST_ANALYSIS_ROWS,
        }
    }
}

impl Statistics {
    /// Takes note of a committed batch that wrote or deleted `rows` rows of generation
    /// `generation` of `name`, and analyzes its table when that is due. Skips the analysis if
    /// autovacuum holds the table (which is then vacuuming or analyzing it itself).
    pub(super) async fn wrote(
        &mut self,
        connection: &mut PgConnection,
        name: &str,
        generation: u64,
        rows: usize,
    ) -> Result<(), sqlx::Error> {
        if !self.note(rows) {
            return Ok(());
        }
        let table = generations::table(name, generation);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "analyze (skip_locked) {table} (projection, generation, key, status, sort_key)"
        )))
        .execute(connection)
        .await?;
        debug!(
            generation,
            written = self.written,
            "analyzed the generation's table"
        );
        self.analyzed();
        Ok(())
    }

    /// Takes note of `rows` more written: whether an analysis is due.
    fn note(&mut self, rows: usize) -> bool {
        self.written += rows as u64;
        self.written >= self.next_analysis
    }

    fn analyzed(&mut self) {
        self.next_analysis = self.written * 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyses_come_at_1000_rows_then_each_time_the_rows_written_grow_tenfold() {
        let mut statistics = Statistics::default();
        let mut due = Vec::new();
        for _ in 0..500 {
            if statistics.note(250) {
                due.push(statistics.written);
                statistics.analyzed();
            }
        }
        assert_eq!(due, [1000, 10_000, 100_000]);
        assert!(!statistics.note(0));
    }
}
