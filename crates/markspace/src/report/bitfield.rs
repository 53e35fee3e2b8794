//! The bit map as a WaveDrom bit-field document (`{"reg": [...], "config": {...}}`, what the
//! WaveDrom editor and the `bit-field` renderer draw), for design documents.
//!
//! One register of 64 bits in two lanes: the first lane is the packet mark (bits 0-31), the
//! second the connmark (its bits 0-31 at 32-63). Runs of adjacent bits with the same readers
//! and writers are one field, named after their owners (`calico+tailscale`), with the
//! readers and writers in `attr`; unused runs are gaps. `type` colours them: 2 one owner,
//! 4 shared by several, 5 in conflict (bits of an error or warning finding).

use serde_json::{json, Value};

use crate::analysis::{BitUse, Severity};
use crate::model::Field;

use super::Report;

/// The WaveDrom document of a report's bit map.
pub fn render(report: &Report) -> Value {
    let mut reg = Vec::new();
    for (field, bits) in [
        (Field::Mark, &report.bitmap.mark),
        (Field::CtMark, &report.bitmap.ctmark),
    ] {
        let conflicts = report
            .findings
            .iter()
            .filter(|f| f.field == field && f.severity != Severity::Info && f.owners.len() > 1)
            .fold(0u32, |a, f| a | f.bits);
        let key = |b: &BitUse| {
            (
                b.readers.clone(),
                b.writers.clone(),
                conflicts & (1 << b.bit) != 0,
            )
        };
        let mut i = 0;
        while i < bits.len() {
            let k = key(&bits[i]);
            let mut n = 1;
            while i + n < bits.len() && key(&bits[i + n]) == k {
                n += 1;
            }
            let (readers, writers, conflict) = k;
            let mut owners: Vec<&String> = readers.iter().chain(writers.iter()).collect();
            owners.sort();
            owners.dedup();
            if owners.is_empty() {
                reg.push(json!({"bits": n}));
            } else {
                let mut attr = vec![Value::from(field.as_str())];
                if !readers.is_empty() {
                    attr.push(format!("R: {}", readers.join(", ")).into());
                }
                if !writers.is_empty() {
                    attr.push(format!("W: {}", writers.join(", ")).into());
                }
                let kind = if conflict {
                    5
                } else if owners.len() > 1 {
                    4
                } else {
                    2
                };
                reg.push(json!({
                    "bits": n,
                    "name": owners.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("+"),
                    "attr": attr,
                    "type": kind,
                }));
            }
            i += n;
        }
    }
    json!({"reg": reg, "config": {"bits": 64, "lanes": 2, "hspace": 1200}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::registry::Registry;
    use crate::snapshot::NodeLoader;

    #[test]
    fn runs_of_equal_bits_are_one_field_and_the_lanes_cover_64_bits() {
        let mut loader = NodeLoader::new();
        loader
            .add_text(
                "iptables-save.txt",
                b"*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-MARK-MASQ - [0:0]\n\
                  -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n\
                  -A PREROUTING -m mark --mark 0x300/0x300 -j ACCEPT\n\
                  -A PREROUTING -j KUBE-MARK-MASQ\nCOMMIT\n"
                    .to_vec(),
                true,
            )
            .expect("reads");
        let node = loader.finish();
        let reg = Registry::embedded().expect("registry");
        let report = Report::new(&node, &analyze(&node, &reg));
        let doc = render(&report);
        let fields = doc["reg"].as_array().expect("reg");
        let total: u64 = fields
            .iter()
            .map(|f| f["bits"].as_u64().expect("bits"))
            .sum();
        assert_eq!(total, 64);
        // Bits 8-9 are read by one owner: one field of 2 bits after a gap of 8.
        assert_eq!(fields[0], json!({"bits": 8}));
        assert_eq!(fields[1]["bits"], 2);
        assert_eq!(
            fields[1]["attr"][1].as_str().map(|s| s.starts_with("R: ")),
            Some(true)
        );
        let masq = fields
            .iter()
            .find(|f| f["name"] == "kube-proxy")
            .expect("kube-proxy's bit");
        assert_eq!(masq["bits"], 1);
        assert_eq!(masq["type"], 2);
        assert_eq!(doc["config"]["lanes"], 2);
    }
}
