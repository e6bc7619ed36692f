//! C2SP `tlog-tiles` addressing: which tile a path names and which path a tile has. Tiles are
//! 8 levels high: a hash tile at level L holds the hashes of the tree's nodes at level 8·L, 256
//! of them when full; an entry bundle holds 256 entries (the leaves' data) when full.

/// Tile height: log2 of a full tile's width.
pub const HEIGHT: u32 = 8;
/// Hashes (or entries) in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;
/// The highest tile level whose bottom row is a tree level (8·L ≤ 63).
pub const MAX_LEVEL: u8 = 7;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// Node hashes at tree level 8·L.
    Hashes { level: u8 },
    /// Entry bundles: the leaves' data.
    Entries,
}

/// A tile: the `index`th of its kind, full (`width` 256) or partial (1–255).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub kind: TileKind,
    pub index: u64,
    pub width: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path: {0}")]
pub struct TilePathError(String);

impl Tile {
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == WIDTH
    }

    /// The first item (node at the tile's bottom level, or entry) the tile holds.
    pub fn first(&self) -> u64 {
        self.index * WIDTH
    }

    /// Parses the path after `/tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, where N is
    /// in 3-digit groups, all but the last prefixed with `x` (`x001/x234/067`).
    pub fn parse(path: &str) -> Result<Self, TilePathError> {
        let bad = || TilePathError(path.to_owned());
        let (kind, rest) = path.split_once('/').ok_or_else(bad)?;
        let kind = match kind {
            "entries" => TileKind::Entries,
            level => {
                let level = canonical_number(level, 1)
                    .filter(|&l| l <= u64::from(MAX_LEVEL))
                    .ok_or_else(bad)?;
                TileKind::Hashes { level: level as u8 }
            }
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = canonical_number(width, 3)
                    .filter(|w| (1..WIDTH).contains(w))
                    .ok_or_else(bad)?;
                (index, width as u16)
            }
            None => (rest, WIDTH as u16),
        };
        // A tile's first item (index · 256) must be a number too.
        let index = parse_index(index)
            .filter(|&i| i <= u64::MAX >> HEIGHT)
            .ok_or_else(bad)?;
        Ok(Self { kind, index, width })
    }

    /// The path after `/tile/`.
    pub fn path(&self) -> String {
        let kind = match self.kind {
            TileKind::Entries => "entries".to_owned(),
            TileKind::Hashes { level } => level.to_string(),
        };
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("{kind}/{}{partial}", index_path(self.index))
    }
}

/// `N` as groups of 3 digits, most significant first, all but the last prefixed with `x`.
pub fn index_path(index: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn parse_index(path: &str) -> Option<u64> {
    let groups: Vec<&str> = path.split('/').collect();
    let (last, leading) = groups.split_last()?;
    let mut index: u64 = 0;
    for (position, group) in leading.iter().enumerate() {
        let digits = group.strip_prefix('x')?;
        let value = three_digits(digits)?;
        // No leading zero groups: each number has one path.
        if position == 0 && value == 0 {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(value)?;
    }
    index.checked_mul(1000)?.checked_add(three_digits(last)?)
}

fn three_digits(group: &str) -> Option<u64> {
    (group.len() == 3 && group.bytes().all(|b| b.is_ascii_digit()))
        .then(|| group.parse().ok())
        .flatten()
}

/// A decimal number of at most `max_digits` digits without leading zeros.
fn canonical_number(text: &str, max_digits: usize) -> Option<u64> {
    let well_formed = !text.is_empty()
        && text.len() <= max_digits
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    well_formed.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_written_in_x_prefixed_groups_of_three_digits() {
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(67), "067");
        assert_eq!(index_path(1000), "x001/000");
        assert_eq!(index_path(1234067), "x001/x234/067");
    }

    #[test]
    fn tile_paths_read_back_as_the_tiles_they_name() {
        let cases = [
            ("0/000", TileKind::Hashes { level: 0 }, 0, 256),
            (
                "1/x001/x234/067",
                TileKind::Hashes { level: 1 },
                1234067,
                256,
            ),
            ("0/005.p/17", TileKind::Hashes { level: 0 }, 5, 17),
            ("entries/x002/001.p/255", TileKind::Entries, 2001, 255),
            ("entries/000", TileKind::Entries, 0, 256),
        ];
        for (path, kind, index, width) in cases {
            let tile = Tile::parse(path).unwrap();
            assert_eq!(tile, Tile { kind, index, width }, "{path}");
            assert_eq!(tile.path(), path);
        }
    }

    #[test]
    fn paths_that_are_not_the_one_spelling_of_a_tile_are_refused() {
        for bad in [
            "",
            "0",
            "8/000",
            "01/000",
            "0/1",
            "0/0000",
            "0/x000/001",
            "0/001/002",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "data/000",
            "0/x1/000",
            "0/-01",
            "entries/000.p/",
            "0/000/",
            // u64::MAX: no tile's first item is that far.
            "0/x018/x446/x744/x073/x709/x551/615",
        ] {
            assert!(Tile::parse(bad).is_err(), "{bad:?}");
        }
    }
}
