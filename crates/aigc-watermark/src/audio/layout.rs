//! The keyed assignment of a block's cells to the sync pattern and to the coded chips.

use super::{BANDS, BLOCK_FRAMES};
use crate::codec::CODED_BITS;
use crate::key::WatermarkKey;

/// Marks a sync cell in [`Cell::chip`].
pub(crate) const SYNC: u16 = u16::MAX;
/// Share of cells that carry the sync pattern (1 in this many).
const SYNC_EVERY: usize = 4;

/// One time-frequency cell of a block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    /// ±1: the keyed sign (sync value, or the chip's spreading sign).
    pub sign: f32,
    /// The chip carried, or [`SYNC`].
    pub chip: u16,
}

/// All cells of a block, indexed `frame * BANDS + band`.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub cells: Vec<Cell>,
    /// Indices of the sync cells.
    pub sync: Vec<u32>,
}

impl Layout {
    /// The layout under `key`.
    pub fn new(key: &WatermarkKey) -> Self {
        let n = BLOCK_FRAMES * BANDS;
        let perm = key.rng("aigc-mark/wm/audio/cells/v2").permutation(n);
        let signs = key.rng("aigc-mark/wm/audio/signs/v2").bipolar(n);
        let n_sync = n / SYNC_EVERY;
        let mut cells = vec![
            Cell {
                sign: 1.0,
                chip: SYNC
            };
            n
        ];
        let mut sync = Vec::with_capacity(n_sync);
        for (i, &c) in perm.iter().enumerate() {
            let chip = if i < n_sync {
                sync.push(c as u32);
                SYNC
            } else {
                ((i - n_sync) % CODED_BITS) as u16
            };
            cells[c] = Cell {
                sign: signs[c],
                chip,
            };
        }
        sync.sort_unstable();
        Self { cells, sync }
    }
}
