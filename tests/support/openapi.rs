//! The committed OpenAPI document (openapi.json), and validation of response bodies against
//! the schema it gives for a route, method and status. Used by integration::openapi (the router
//! natively) and e2e::openapi (the Worker under wrangler dev).

use jsonschema::Registry;
use serde_json::{json, Value};

/// The URI the document is registered under, so that its `#/components/...` refs resolve.
const DOC_URI: &str = "urn:token-manager:openapi";

/// Every HTTP method OpenAPI can describe, lowercase as path items name them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The parsed document.
pub struct Spec {
    pub doc: Value,
    registry: Registry<'static>,
}

impl Spec {
    /// Parses `openapi.json` as the Worker serves it.
    pub fn load() -> Self {
        let doc: Value = serde_json::from_str(token_manager::http::OPENAPI_JSON)
            .expect("openapi.json is valid JSON");
        let registry = Registry::new()
            .add(DOC_URI, doc.clone())
            .expect("openapi.json registers as a schema resource")
            .prepare()
            .expect("every $ref in openapi.json resolves");
        Self { doc, registry }
    }

    /// Documented path templates with their methods (lowercase), in document order.
    pub fn operations(&self) -> Vec<(String, Vec<String>)> {
        self.doc["paths"]
            .as_object()
            .expect("paths is an object")
            .iter()
            .map(|(path, item)| {
                let methods = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .map(|m| m.to_string())
                    .collect();
                (path.clone(), methods)
            })
            .collect()
    }

    /// The documented template a concrete path (without query) falls under, if any. A
    /// trailing slash is ignored, as the Worker ignores it.
    pub fn template_for(&self, path: &str) -> Option<String> {
        let trimmed = path.trim_end_matches('/');
        let path = if trimmed.is_empty() { "/" } else { trimmed };
        self.operations()
            .into_iter()
            .map(|(template, _)| template)
            .find(|template| matches_template(template, path))
    }

    /// The operation object of `template` and `method`.
    pub fn operation(&self, template: &str, method: &str) -> Option<&Value> {
        self.doc["paths"]
            .get(template)?
            .get(method.to_ascii_lowercase())
    }

    /// JSON pointer (into the document) of the schema of the response `status` of
    /// `method template`, following a `$ref` to `#/components/responses/...`. A 405 to a method
    /// the path does not document takes the 405 any of the path's operations documents.
    pub fn response_schema_pointer(
        &self,
        template: &str,
        method: &str,
        status: u16,
    ) -> Result<String, String> {
        let method = method.to_ascii_lowercase();
        let op_pointer = if self.operation(template, &method).is_some() {
            format!("/paths/{}/{method}", escape(template))
        } else if status == 405 {
            let (_, methods) = self
                .operations()
                .into_iter()
                .find(|(t, _)| t == template)
                .ok_or_else(|| format!("{template} is not documented"))?;
            format!("/paths/{}/{}", escape(template), methods[0])
        } else {
            return Err(format!(
                "{} {template} is not documented",
                method.to_uppercase()
            ));
        };
        let mut pointer = format!("{op_pointer}/responses/{status}");
        let mut response = self.doc.pointer(&pointer).ok_or_else(|| {
            format!(
                "{} {template} does not document status {status}",
                method.to_uppercase()
            )
        })?;
        if let Some(target) = response.get("$ref").and_then(Value::as_str) {
            pointer = target
                .strip_prefix('#')
                .ok_or_else(|| format!("response $ref {target} is not local"))?
                .to_string();
            response = self
                .doc
                .pointer(&pointer)
                .ok_or_else(|| format!("response $ref {target} does not resolve"))?;
        }
        response
            .pointer("/content/application~1json/schema")
            .ok_or_else(|| format!("{pointer} has no application/json schema"))?;
        Ok(format!("{pointer}/content/application~1json/schema"))
    }

    /// Validates `body` against the schema at `pointer` (formats such as date-time and uuid
    /// included); the error lists every violation with where it is.
    pub fn validate_at(&self, pointer: &str, body: &Value) -> Result<(), String> {
        let schema = json!({ "$ref": format!("{DOC_URI}#{}", fragment(pointer)) });
        let validator = jsonschema::options()
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("schema at {pointer} does not compile: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "body does not match {pointer}:\n  {}\nbody: {body}",
                errors.join("\n  ")
            ))
        }
    }

    /// Validates the body a request got against the documented response for its route,
    /// method and status. `path` is the concrete path (no query).
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let template = self
            .template_for(path)
            .ok_or_else(|| format!("{path} matches no documented path"))?;
        let pointer = self.response_schema_pointer(&template, method, status)?;
        self.validate_at(&pointer, body)
            .map_err(|e| format!("{method} {path} → {status}: {e}"))
    }
}

/// Whether a concrete path matches a template whose `{name}` segments match any one segment.
pub fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// A JSON pointer token: `~` → `~0`, `/` → `~1`.
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a URI fragment: characters a fragment cannot hold are percent-encoded.
fn fragment(pointer: &str) -> String {
    pointer
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            b'-' | b'.' | b'_' | b'~' | b'/' | b':' | b'@' | b'!' | b'$' | b'&' | b'\'' => {
                (b as char).to_string()
            }
            b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b'?' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
