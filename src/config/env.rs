//! COCREATE_* environment variables, applied to the TOML tree key by key
//! before it is read, each value taking the type the default has there.

use std::collections::{BTreeMap, HashSet};

use super::*;

/// Applies COCREATE_SECTION_KEY=value to the tree. Known keys are those of the
/// built-in default and of the file itself, so an override can set a key the
/// file leaves out. Values take the type the default has there.
/// Returns the dotted keys that were overridden, each with its variable.
pub(super) fn apply_env_overrides(
    tree: &mut toml::Table,
    env: &[(String, String)],
) -> Result<Overridden, ConfigError> {
    let mut overridden = Overridden::default();
    let default: toml::Table = EMBEDDED_DEFAULT
        .parse()
        .expect("the built-in config is valid TOML");
    let mut known = BTreeMap::new();
    flatten_keys(&default, &mut Vec::new(), &mut known);
    flatten_keys(tree, &mut Vec::new(), &mut known);

    // Variables that the config names as holding secrets are not settings.
    let mut secret_vars = HashSet::new();
    collect_secret_vars(&default, &mut secret_vars);
    collect_secret_vars(tree, &mut secret_vars);

    for (var, value) in env {
        let Some(name) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var.starts_with(ENV_TEST_PREFIX) || var == ENV_CONFIG_PATH || secret_vars.contains(var) {
            continue;
        }
        let Some((path, example)) = known.get(name) else {
            return Err(ConfigError::UnknownVariable { var: var.clone() });
        };
        let parsed = env_value(value, example).map_err(|problem| ConfigError::Invalid {
            origin: format!("environment variable {var}"),
            key: path.join("."),
            problem,
        })?;
        set_path(tree, path, parsed);
        overridden.0.insert(path.join("."), var.clone());
    }
    Ok(overridden)
}

/// The settings a COCREATE_* variable set: dotted key → variable name.
#[derive(Debug, Default)]
pub(super) struct Overridden(std::collections::HashMap<String, String>);

impl Overridden {
    pub(super) fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Where a bad value of `key` came from: its variable if one set it,
    /// otherwise `file` (the config file or the built-in default).
    pub(super) fn origin(&self, key: &str, file: &str) -> String {
        match self.0.get(key) {
            Some(var) => format!("environment variable {var}"),
            None => file.to_string(),
        }
    }
}

fn flatten_keys(
    table: &toml::Table,
    prefix: &mut Vec<String>,
    out: &mut BTreeMap<String, (Vec<String>, toml::Value)>,
) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            toml::Value::Table(t) => flatten_keys(t, prefix, out),
            // Lists of tables (policy areas) are only set in the file.
            toml::Value::Array(a) if a.iter().any(toml::Value::is_table) => {}
            _ => {
                let name = prefix.join("_").to_ascii_uppercase();
                out.insert(name, (prefix.clone(), value.clone()));
            }
        }
        prefix.pop();
    }
}

fn collect_secret_vars(table: &toml::Table, out: &mut HashSet<String>) {
    for (key, value) in table {
        match value {
            toml::Value::Table(t) => collect_secret_vars(t, out),
            toml::Value::String(s) if key.ends_with("_env") => {
                out.insert(s.clone());
            }
            _ => {}
        }
    }
}

fn env_value(raw: &str, example: &toml::Value) -> Result<toml::Value, String> {
    let raw = raw.trim();
    match example {
        toml::Value::Integer(_) => raw
            .parse()
            .map(toml::Value::Integer)
            .map_err(|_| format!("must be a whole number, not '{raw}'")),
        toml::Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("must be true or false, not '{raw}'")),
        },
        toml::Value::Float(_) => raw
            .parse()
            .map(toml::Value::Float)
            .map_err(|_| format!("must be a number, not '{raw}'")),
        toml::Value::Array(_) => {
            // A list is written as in TOML (`["a", "b"]`) or comma-separated.
            let doc = format!("v = {raw}");
            match doc.parse::<toml::Table>() {
                Ok(mut t) if t.get("v").is_some_and(toml::Value::is_array) => {
                    Ok(t.remove("v").expect("checked above"))
                }
                _ => Ok(toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                )),
            }
        }
        _ => Ok(toml::Value::String(raw.to_string())),
    }
}

fn set_path(tree: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("a key path is never empty");
    let mut table = tree;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        table = entry.as_table_mut().expect("made a table above");
    }
    table.insert(last.clone(), value);
}
