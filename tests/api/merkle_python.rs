//! The Merkle tree heads and proofs of `diplog::domain::merkle`, checked by an independent
//! verifier written from the RFCs in Python (`tests/verify_merkle.py`), so that the Rust
//! generator and the Rust verifier cannot pass on one shared misreading of RFC 9162.
//! Without python3 these tests say SKIPPED on stderr and pass.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diplog::domain::merkle::{Frontier, Hash, consistency_proof, inclusion_proof, leaf_hash};
use serde_json::{Value, json};

const LEAVES: u64 = 37;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn repository_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs the Python verifier on `document`: whether it succeeded, and what it printed.
/// `None` when python3 is not installed.
fn python_verifier(document: &Value) -> Option<(bool, String)> {
    let spawned = Command::new("python3")
        .arg(repository_file("tests/verify_merkle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            // Straight to stderr, not eprintln!, which the test harness captures on success.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: python3 is not installed, so the Python Merkle verifier did not run"
            );
            return None;
        }
        Err(error) => panic!("could not start python3: {error}"),
    };
    // The script reads all of stdin before it prints, so writing first cannot deadlock.
    let mut stdin = child.stdin.take().expect("a piped stdin");
    stdin
        .write_all(&serde_json::to_vec(document).unwrap())
        .expect("python3 reads the document");
    drop(stdin);
    let output = child.wait_with_output().expect("python3 runs to the end");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), printed))
}

/// A log of 37 leaves as the server builds it (the roots from `Frontier`, the proofs from the
/// nodes `Frontier::push` reports), with every inclusion proof for every tree size and every
/// consistency proof between two sizes.
fn document_for_37_leaves() -> Value {
    // The first leaf is empty, as in the CT test tree; the others differ in length too.
    let inputs: Vec<Vec<u8>> = (0..LEAVES)
        .map(|i| match i {
            0 => Vec::new(),
            _ => format!("event {i};")
                .repeat(i as usize % 3 + 1)
                .into_bytes(),
        })
        .collect();
    let leaves: Vec<Hash> = inputs.iter().map(|input| leaf_hash(input)).collect();
    let mut frontier = Frontier::new();
    let mut nodes = HashMap::new();
    let mut roots = vec![frontier.root()];
    for leaf in &leaves {
        for (level, index, hash) in frontier.push(*leaf) {
            nodes.insert((level, index), hash);
        }
        roots.push(frontier.root());
    }

    let mut inclusion = Vec::new();
    for size in 1..=LEAVES {
        for index in 0..size {
            let proof = inclusion_proof(index, size, &nodes).unwrap();
            inclusion.push(json!({
                "index": index,
                "size": size,
                "leaf_hash": hex(&leaves[index as usize]),
                "proof": proof.iter().map(|hash| hex(hash)).collect::<Vec<_>>(),
                "root": hex(&roots[size as usize]),
            }));
        }
    }
    let mut consistency = Vec::new();
    for new_size in 0..=LEAVES {
        for old_size in 0..=new_size {
            let proof = consistency_proof(old_size, new_size, &nodes).unwrap();
            consistency.push(json!({
                "old_size": old_size,
                "new_size": new_size,
                "old_root": hex(&roots[old_size as usize]),
                "new_root": hex(&roots[new_size as usize]),
                "proof": proof.iter().map(|hash| hex(hash)).collect::<Vec<_>>(),
            }));
        }
    }
    json!({
        "leaves": inputs.iter().map(|input| hex(input)).collect::<Vec<_>>(),
        "roots": roots.iter().map(|root| hex(root)).collect::<Vec<_>>(),
        "inclusion": inclusion,
        "consistency": consistency,
    })
}

/// Flips one bit of the hex hash at `hash`.
fn flip_hex(hash: &mut Value) {
    let text = hash.as_str().unwrap();
    let first = u8::from_str_radix(&text[..2], 16).unwrap() ^ 0x08;
    *hash = Value::String(format!("{first:02x}{}", &text[2..]));
}

/// The positions of the inclusion proof of leaf 13 in 37 and the consistency proof from 20 to
/// 37 in `document_for_37_leaves`.
fn tampering_targets(document: &Value) -> (usize, usize) {
    let inclusion = document["inclusion"]
        .as_array()
        .unwrap()
        .iter()
        .position(|item| item["index"] == 13 && item["size"] == 37)
        .unwrap();
    let consistency = document["consistency"]
        .as_array()
        .unwrap()
        .iter()
        .position(|item| item["old_size"] == 20 && item["new_size"] == 37)
        .unwrap();
    (inclusion, consistency)
}

#[test]
fn the_python_verifier_accepts_every_proof_over_37_leaves() {
    let document = document_for_37_leaves();
    assert_eq!(document["inclusion"].as_array().unwrap().len(), 703);
    assert_eq!(document["consistency"].as_array().unwrap().len(), 741);
    let Some((succeeded, printed)) = python_verifier(&document) else {
        return;
    };
    assert!(
        succeeded,
        "the Python verifier rejected diplog's proofs:\n{printed}"
    );
    assert!(
        printed.contains("1482 of 1482 items as expected"),
        "{printed}"
    );
}

#[test]
fn the_python_verifier_rejects_tampered_proofs_and_roots() {
    let mut document = document_for_37_leaves();
    let (inclusion, consistency) = tampering_targets(&document);
    flip_hex(&mut document["inclusion"][inclusion]["proof"][1]);
    flip_hex(&mut document["consistency"][consistency]["proof"][0]);
    flip_hex(&mut document["roots"][30]);

    let Some((succeeded, printed)) = python_verifier(&document) else {
        return;
    };
    assert!(!succeeded, "tampered proofs passed:\n{printed}");
    for failed in [
        format!("FAILED inclusion[{inclusion}] (index 13, size 37)"),
        format!("FAILED consistency[{consistency}] (20 to 37)"),
        "FAILED roots[30]".to_string(),
    ] {
        assert!(
            printed.contains(&failed),
            "{failed:?} not reported:\n{printed}"
        );
    }
    assert!(
        printed.contains("1479 of 1482 items as expected"),
        "{printed}"
    );
}

#[test]
fn tampered_proofs_marked_invalid_are_expected_to_fail() {
    let mut document = document_for_37_leaves();
    let (inclusion, consistency) = tampering_targets(&document);
    flip_hex(&mut document["inclusion"][inclusion]["proof"][1]);
    document["inclusion"][inclusion]["valid"] = json!(false);
    flip_hex(&mut document["consistency"][consistency]["proof"][0]);
    document["consistency"][consistency]["valid"] = json!(false);
    // And an untouched proof marked invalid is reported, because it verifies.
    let mut untouched = document.clone();
    untouched["inclusion"][0]["valid"] = json!(false);

    let Some((succeeded, printed)) = python_verifier(&document) else {
        return;
    };
    assert!(succeeded, "{printed}");
    let Some((succeeded, printed)) = python_verifier(&untouched) else {
        return;
    };
    assert!(!succeeded, "{printed}");
    assert!(
        printed
            .contains("FAILED inclusion[0] (index 0, size 1): verified, but it is marked invalid"),
        "{printed}"
    );
}

#[test]
fn the_python_verifier_accepts_the_published_ct_vectors() {
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(repository_file(
            "tests/fixtures/merkle/rfc6962_vectors.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let Some((succeeded, printed)) = python_verifier(&document) else {
        return;
    };
    assert!(succeeded, "{printed}");
    assert!(printed.contains("20 of 20 items as expected"), "{printed}");
}
