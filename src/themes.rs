//! Built-in storefront themes.
//!
//! A theme is a folder under `themes/` with `config.json` (id, name, settings with
//! defaults), `style.css`, `preview.svg` and `templates/*.html` (minijinja, autoescaped).
//! The files are embedded in the binary so `souk` runs from anywhere. Each theme gets its
//! own minijinja environment with a fuel limit, so a runaway template cannot hang a worker.
//!
//! Uploaded zips are validated by [`Theme::from_zip`] (structure, compile, an
//! empty-context smoke render) and, on upload only, by [`Theme::check_render`] with the
//! storefront's sample pages, so a template that breaks on real data is refused with
//! the template named.

use minijinja::Environment;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, RwLock};

/// One declared setting of a theme (`config.json` → `settings[]`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThemeSetting {
    pub id: String,
    /// `color` (`#rrggbb`), `font` (CSS font-family stack), `text` or `image_url`.
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
    pub default: String,
}

/// A theme's manifest (`config.json`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThemeManifest {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: String,
    pub settings: Vec<ThemeSetting>,
}

/// A loaded theme.
pub struct Theme {
    pub manifest: ThemeManifest,
    pub stylesheet: Cow<'static, str>,
    pub preview_svg: Cow<'static, str>,
    /// Embedded in the binary (cannot be replaced by an upload).
    pub builtin: bool,
    env: Environment<'static>,
}

impl Theme {
    /// Renders `template` (e.g. `home.html`) with `ctx`. Errors carry minijinja's message.
    pub fn render(
        &self,
        template: &str,
        ctx: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(template)?.render(ctx)
    }

    /// Default settings as a JSON object `{id: default}`.
    pub fn default_settings(&self) -> serde_json::Map<String, serde_json::Value> {
        self.manifest
            .settings
            .iter()
            .map(|s| (s.id.clone(), serde_json::Value::String(s.default.clone())))
            .collect()
    }

    /// Merges stored settings over the defaults; unknown keys are dropped, values are strings.
    pub fn effective_settings(&self, stored: &str) -> BTreeMap<String, String> {
        let stored: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(stored).unwrap_or_default();
        self.manifest
            .settings
            .iter()
            .map(|s| {
                let v = stored
                    .get(&s.id)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| s.default.clone());
                (s.id.clone(), v)
            })
            .collect()
    }

    /// The per-tenant branding stylesheet: one CSS custom property per color/font
    /// setting (`color_primary` → `--color-primary`). Values are filtered to a safe
    /// character set so a setting cannot break out of the declaration.
    pub fn branding_css(&self, stored: &str) -> String {
        let settings = self.effective_settings(stored);
        let mut css = String::from(":root {\n");
        for s in &self.manifest.settings {
            if s.kind != "color" && s.kind != "font" {
                continue;
            }
            let value = settings
                .get(&s.id)
                .map(String::as_str)
                .unwrap_or(&s.default);
            let safe: String = value
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || " #,'-_.()%".contains(*c))
                .collect();
            css.push_str(&format!("  --{}: {};\n", s.id.replace('_', "-"), safe));
        }
        css.push_str("}\n");
        css
    }
}

macro_rules! embed_theme {
    ($dir:literal) => {
        (
            include_str!(concat!("../themes/", $dir, "/config.json")),
            include_str!(concat!("../themes/", $dir, "/style.css")),
            include_str!(concat!("../themes/", $dir, "/preview.svg")),
            [
                (
                    "layout.html",
                    include_str!(concat!("../themes/", $dir, "/templates/layout.html")),
                ),
                (
                    "home.html",
                    include_str!(concat!("../themes/", $dir, "/templates/home.html")),
                ),
                (
                    "catalog.html",
                    include_str!(concat!("../themes/", $dir, "/templates/catalog.html")),
                ),
                (
                    "product.html",
                    include_str!(concat!("../themes/", $dir, "/templates/product.html")),
                ),
                (
                    "not_found.html",
                    include_str!(concat!("../themes/", $dir, "/templates/not_found.html")),
                ),
                (
                    "unavailable.html",
                    include_str!(concat!("../themes/", $dir, "/templates/unavailable.html")),
                ),
                (
                    "cart.html",
                    include_str!(concat!("../themes/", $dir, "/templates/cart.html")),
                ),
                (
                    "checkout.html",
                    include_str!(concat!("../themes/", $dir, "/templates/checkout.html")),
                ),
                (
                    "order.html",
                    include_str!(concat!("../themes/", $dir, "/templates/order.html")),
                ),
                (
                    "account.html",
                    include_str!(concat!("../themes/", $dir, "/templates/account.html")),
                ),
            ],
        )
    };
}

/// The templates every theme must provide (the ones the built-in themes have).
pub const REQUIRED_TEMPLATES: &[&str] = &[
    "layout.html",
    "home.html",
    "catalog.html",
    "product.html",
    "not_found.html",
    "unavailable.html",
    "cart.html",
    "checkout.html",
    "order.html",
    "account.html",
];

/// A storefront page to render when checking a theme ([`Theme::check_render`]): a
/// template and a context built the way the storefront builds the real one.
pub struct SamplePage {
    /// One of [`REQUIRED_TEMPLATES`].
    pub template: &'static str,
    /// What the sample shows, for the refusal message (e.g. `a product with 3 variants`).
    pub label: &'static str,
    pub context: minijinja::Value,
}

/// Upper bounds for an uploaded theme archive (zip bombs, runaway uploads).
const MAX_ENTRIES: usize = 200;
const MAX_FILE_BYTES: u64 = 1024 * 1024;
const MAX_TOTAL_BYTES: u64 = 8 * 1024 * 1024;

/// A theme's listing entry: the manifest plus its state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThemeInfo {
    #[serde(flatten)]
    pub manifest: ThemeManifest,
    /// Offered at activation (disabled themes keep serving the stores already using them).
    pub enabled: bool,
    /// Embedded in the binary; uploaded themes are `false`.
    pub builtin: bool,
    /// Templates the theme provides.
    pub templates: Vec<String>,
}

/// A fuel-limited, autoescaping environment with `templates`, plus the reason of every
/// template that did not compile (those are left out).
fn build_env(
    manifest_id: &str,
    templates: Vec<(String, String)>,
) -> (Environment<'static>, Vec<String>) {
    let mut env = Environment::new();
    env.set_fuel(Some(200_000));
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let mut errors = vec![];
    for (name, src) in templates {
        if let Err(e) = env.add_template_owned(name.clone(), src) {
            errors.push(format!(
                "theme {manifest_id}: template {name} does not compile: {e}"
            ));
        }
    }
    (env, errors)
}

impl Theme {
    /// Builds a theme from an uploaded zip archive: `config.json` (the [`ThemeManifest`]
    /// shape), `style.css`, `preview.svg` and `templates/*.html` with at least
    /// [`REQUIRED_TEMPLATES`]. Files may sit under one top-level folder. Errors: every
    /// problem found (not only the first), as human-readable reasons.
    pub fn from_zip(bytes: &[u8]) -> Result<Theme, Vec<String>> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| vec![format!("the file is not a readable zip archive: {e}")])?;
        if archive.len() > MAX_ENTRIES {
            return Err(vec![format!(
                "the archive has {} entries; at most {MAX_ENTRIES} are allowed",
                archive.len()
            )]);
        }
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        let mut errors = vec![];
        let mut total = 0u64;
        for i in 0..archive.len() {
            let mut f = match archive.by_index(i) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(format!("entry {i} cannot be read: {e}"));
                    continue;
                }
            };
            if f.is_dir() {
                continue;
            }
            let name = match f.name() {
                Ok(n) => n.replace('\\', "/"),
                Err(e) => {
                    errors.push(format!("entry {i} has an unreadable name: {e}"));
                    continue;
                }
            };
            let mut buf = Vec::new();
            let read = (&mut f)
                .take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut buf)
                .map_err(|e| e.to_string());
            match read {
                Err(e) => errors.push(format!("{name}: cannot be decompressed: {e}")),
                Ok(n) if n as u64 > MAX_FILE_BYTES => {
                    errors.push(format!("{name}: larger than {MAX_FILE_BYTES} bytes"))
                }
                Ok(n) => {
                    total += n as u64;
                    if total > MAX_TOTAL_BYTES {
                        return Err(vec![format!(
                            "the archive unpacks to more than {MAX_TOTAL_BYTES} bytes"
                        )]);
                    }
                    match String::from_utf8(buf) {
                        Ok(text) => drop(files.insert(name, text)),
                        Err(_) => errors.push(format!("{name}: not UTF-8 text")),
                    }
                }
            }
        }
        // Accept a single top-level folder (`mytheme/config.json`).
        if !files.contains_key("config.json")
            && let Some(prefix) = files
                .keys()
                .find(|k| k.ends_with("/config.json") && k.matches('/').count() == 1)
                .map(|k| k.trim_end_matches("config.json").to_string())
        {
            files = files
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v)))
                .collect();
        }
        let manifest = match files.get("config.json") {
            None => {
                errors.push("config.json is missing".into());
                None
            }
            Some(c) => match serde_json::from_str::<ThemeManifest>(c) {
                Ok(m) => {
                    let id_ok = (2..=40).contains(&m.id.len())
                        && m.id
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !m.id.starts_with('-');
                    if !id_ok {
                        errors.push(format!(
                            "config.json: id '{}' must be 2–40 characters of a-z, 0-9 and '-'",
                            m.id
                        ));
                    }
                    if m.name.trim().is_empty() {
                        errors.push("config.json: name must not be empty".into());
                    }
                    for s in &m.settings {
                        if !["color", "font", "text", "image_url"].contains(&s.kind.as_str()) {
                            errors.push(format!(
                                "config.json: setting '{}' has unknown type '{}' (color, font, text or image_url)",
                                s.id, s.kind
                            ));
                        }
                    }
                    Some(m)
                }
                Err(e) => {
                    errors.push(format!("config.json is not a valid theme manifest: {e}"));
                    None
                }
            },
        };
        for needed in ["style.css", "preview.svg"] {
            if !files.contains_key(needed) {
                errors.push(format!("{needed} is missing"));
            }
        }
        for t in REQUIRED_TEMPLATES {
            if !files.contains_key(&format!("templates/{t}")) {
                errors.push(format!("templates/{t} is missing"));
            }
        }
        let templates: Vec<(String, String)> = files
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("templates/")
                    .filter(|n| n.ends_with(".html") && !n.contains('/'))
                    .map(|n| (n.to_string(), v.clone()))
            })
            .collect();
        let id = manifest
            .as_ref()
            .map(|m| m.id.clone())
            .unwrap_or_else(|| "upload".into());
        let (env, mut compile_errors) = build_env(&id, templates);
        errors.append(&mut compile_errors);
        // A smoke render with an empty context catches what compiling cannot: unknown
        // filters, tests, functions and missing extended/included templates (on the
        // paths an empty store takes).
        for name in REQUIRED_TEMPLATES {
            if let Ok(t) = env.get_template(name)
                && let Err(e) = t.render(minijinja::context! {})
                && matches!(
                    e.kind(),
                    minijinja::ErrorKind::UnknownFilter
                        | minijinja::ErrorKind::UnknownTest
                        | minijinja::ErrorKind::UnknownFunction
                        | minijinja::ErrorKind::UnknownMethod
                        | minijinja::ErrorKind::TemplateNotFound
                )
            {
                errors.push(format!("template {name} does not render: {e}"));
            }
        }
        match manifest {
            Some(manifest) if errors.is_empty() => Ok(Theme {
                manifest,
                stylesheet: Cow::Owned(files.remove("style.css").unwrap_or_default()),
                preview_svg: Cow::Owned(files.remove("preview.svg").unwrap_or_default()),
                builtin: false,
                env,
            }),
            _ => Err(errors),
        }
    }

    /// Renders each sample page as the storefront would, to refuse an upload that would
    /// break on real data. The theme's own environment renders them (same templates,
    /// same fuel limit) with undefined values semi-strict: printing, iterating or
    /// passing to a filter a value the context does not have fails, while
    /// `{% if x %}` on a missing `x` stays allowed. The sample contexts carry every field
    /// the storefront provides, so such a value is a name the storefront never sets.
    /// Returns one reason per failing page: the template, the sample and minijinja's
    /// error (with the line).
    pub fn check_render(&self, pages: &[SamplePage]) -> Vec<String> {
        let mut env = self.env.clone();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        let mut errors = vec![];
        for page in pages {
            let result = env
                .get_template(page.template)
                .and_then(|t| t.render(page.context.clone()));
            if let Err(e) = result {
                errors.push(format!(
                    "template {} does not render with sample data ({}): {e}",
                    page.template, page.label
                ));
            }
        }
        errors
    }

    /// Names of the theme's templates.
    pub fn template_names(&self) -> Vec<String> {
        self.env.templates().map(|(n, _)| n.to_string()).collect()
    }
}

struct Registry {
    themes: BTreeMap<String, Arc<Theme>>,
    disabled: BTreeSet<String>,
}

/// The registry of themes by id: the built-in ones plus uploaded ones, updatable at
/// runtime (uploads, enable/disable) behind a lock held only for map operations.
pub struct Themes {
    inner: RwLock<Registry>,
    /// [`DEFAULT_THEME`], checked present at load.
    default: Arc<Theme>,
}

/// The theme used when none is chosen.
pub const DEFAULT_THEME: &str = "classic";

impl Themes {
    /// Loads the embedded themes. Errors if a manifest or template does not parse
    /// (a build defect, caught by the test suite).
    pub fn builtin() -> Result<Self, String> {
        let mut themes = BTreeMap::new();
        for (config, css, svg, templates) in [embed_theme!("classic"), embed_theme!("midnight")] {
            let manifest: ThemeManifest =
                serde_json::from_str(config).map_err(|e| format!("theme config.json: {e}"))?;
            let (env, errors) = build_env(
                &manifest.id,
                templates
                    .iter()
                    .map(|(n, s)| (n.to_string(), s.to_string()))
                    .collect(),
            );
            if !errors.is_empty() {
                return Err(errors.join("; "));
            }
            themes.insert(
                manifest.id.clone(),
                Arc::new(Theme {
                    manifest,
                    stylesheet: Cow::Borrowed(css),
                    preview_svg: Cow::Borrowed(svg),
                    builtin: true,
                    env,
                }),
            );
        }
        let default = themes
            .get(DEFAULT_THEME)
            .cloned()
            .ok_or_else(|| format!("default theme '{DEFAULT_THEME}' is not embedded"))?;
        Ok(Self {
            inner: RwLock::new(Registry {
                themes,
                disabled: BTreeSet::new(),
            }),
            default,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Any known theme, enabled or not (stores already on a disabled theme keep it).
    pub fn get(&self, id: &str) -> Option<Arc<Theme>> {
        self.read().themes.get(id).cloned()
    }

    /// A theme that may be chosen for a new activation: known and enabled.
    pub fn get_enabled(&self, id: &str) -> Option<Arc<Theme>> {
        let r = self.read();
        if r.disabled.contains(id) {
            return None;
        }
        r.themes.get(id).cloned()
    }

    /// Is `id` known but disabled?
    pub fn is_disabled(&self, id: &str) -> bool {
        let r = self.read();
        r.themes.contains_key(id) && r.disabled.contains(id)
    }

    /// The theme for `id`, falling back to the default theme.
    pub fn get_or_default(&self, id: Option<&str>) -> Arc<Theme> {
        id.and_then(|i| self.get(i))
            .unwrap_or_else(|| self.default.clone())
    }

    /// Manifests of every theme, enabled or not, by id.
    pub fn list(&self) -> Vec<ThemeManifest> {
        self.read()
            .themes
            .values()
            .map(|t| t.manifest.clone())
            .collect()
    }

    /// Every theme with its state, by id.
    pub fn infos(&self) -> Vec<ThemeInfo> {
        let r = self.read();
        r.themes
            .values()
            .map(|t| ThemeInfo {
                manifest: t.manifest.clone(),
                enabled: !r.disabled.contains(&t.manifest.id),
                builtin: t.builtin,
                templates: t.template_names(),
            })
            .collect()
    }

    /// Enables or disables a known theme. Returns false for an unknown id.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        let mut w = self.write();
        if !w.themes.contains_key(id) {
            return false;
        }
        if enabled {
            w.disabled.remove(id);
        } else {
            w.disabled.insert(id.to_string());
        }
        true
    }

    /// Adds (or replaces) an uploaded theme. Errors: the id of a built-in theme.
    pub fn install(&self, theme: Theme) -> Result<(), String> {
        let mut w = self.write();
        let id = theme.manifest.id.clone();
        if w.themes.get(&id).is_some_and(|t| t.builtin) {
            return Err(format!(
                "config.json: id '{id}' is a built-in theme and cannot be replaced"
            ));
        }
        w.themes.insert(id, Arc::new(theme));
        Ok(())
    }
}
