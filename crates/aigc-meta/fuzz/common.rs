//! What every carrier fuzz target checks: reading never panics, and whenever writing succeeds
//! the output reads back with exactly the label written.

use aigc_core::{AigcRecord, Format, Label};

pub fn exercise(format: Format, data: &[u8]) {
    let Some(carrier) = aigc_meta::carrier_for(format) else { return };
    let _ = carrier.read(data);
    let record = AigcRecord::new(Label::Generated, "001191440300708461136T1XGW3", "fuzz");
    if let Ok(rewrite) = carrier.write(data, &record) {
        let out = rewrite.to_vec(data);
        let found = carrier.read(&out).expect("our own output must parse");
        assert_eq!(found.len(), 1, "exactly one label after writing");
        assert_eq!(found[0].parsed.record.as_ref(), Some(&record));
    }
}
