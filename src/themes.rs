//! Built-in storefront themes.
//!
//! A theme is a folder under `themes/` with `config.json` (id, name, settings with
//! defaults), `style.css`, `preview.svg` and `templates/*.html` (minijinja, autoescaped).
//! The files are embedded in the binary so `souk` runs from anywhere. Each theme gets its
//! own minijinja environment with a fuel limit, so a runaway template cannot hang a worker.

use minijinja::Environment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

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
    pub stylesheet: &'static str,
    pub preview_svg: &'static str,
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
            ],
        )
    };
}

/// The registry of built-in themes, by id.
pub struct Themes {
    themes: BTreeMap<String, Arc<Theme>>,
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
            let mut env = Environment::new();
            env.set_fuel(Some(200_000));
            env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
            for (name, src) in templates {
                env.add_template(name, src)
                    .map_err(|e| format!("theme {}: template {name}: {e}", manifest.id))?;
            }
            themes.insert(
                manifest.id.clone(),
                Arc::new(Theme {
                    manifest,
                    stylesheet: css,
                    preview_svg: svg,
                    env,
                }),
            );
        }
        let default = themes
            .get(DEFAULT_THEME)
            .cloned()
            .ok_or_else(|| format!("default theme '{DEFAULT_THEME}' is not embedded"))?;
        Ok(Self { themes, default })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Theme>> {
        self.themes.get(id).cloned()
    }

    /// The theme for `id`, falling back to the default theme.
    pub fn get_or_default(&self, id: Option<&str>) -> Arc<Theme> {
        id.and_then(|i| self.get(i))
            .unwrap_or_else(|| self.default.clone())
    }

    pub fn list(&self) -> Vec<ThemeManifest> {
        self.themes.values().map(|t| t.manifest.clone()).collect()
    }
}
