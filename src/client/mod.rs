//! What clients of the gRPC API share, whichever program they are part of: the many-event
//! reads with their fallback on older servers (`reads`), and the export's event lines
//! (`export`). The CLI and the benchmark use them, so the benchmark measures what users run.

pub mod export;
pub mod reads;
