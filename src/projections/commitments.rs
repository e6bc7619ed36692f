//! The `commitments` projection (being written).

use super::{Fact, Model, Row};

#[derive(Debug, Default)]
pub struct Commitments;

impl Model for Commitments {
    const NAME: &'static str = "commitments";
    const VERSION: i32 = 1;

    fn apply(&mut self, _fact: &Fact) -> Vec<String> {
        Vec::new()
    }

    fn row(&self, _key: &str) -> Option<Row> {
        None
    }

    fn rows(&self) -> Vec<Row> {
        Vec::new()
    }

    fn from_rows(_rows: Vec<Row>) -> Result<Self, String> {
        Ok(Self)
    }
}
