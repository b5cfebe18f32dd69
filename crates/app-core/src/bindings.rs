//! Generates `ui/bindings.js`, the one module through which the page talks to Rust: a JSDoc
//! type for every value in [`crate::types`] (from their JSON Schemas), a function per command
//! and a listener per event.
//!
//! Why generated: the command names, argument names and shapes then come from the Rust types
//! alone; `cargo run -p app-core --bin gen-bindings` rewrites the file, and a test fails when the
//! committed file differs from what the types say (stale bindings).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use crate::types::*;

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One command the shell implements: `invoke(name, { args })`.
pub struct CommandSpec {
    /// The Rust (snake_case) name; the JS function is its camelCase.
    pub name: &'static str,
    pub doc: &'static str,
    args: Option<SchemaFn>,
    returns: SchemaFn,
}

/// One event the core emits, with its payload type.
pub struct EventSpec {
    pub name: &'static str,
    pub doc: &'static str,
    payload: SchemaFn,
}

fn cmd<R: JsonSchema>(name: &'static str, doc: &'static str) -> CommandSpec {
    CommandSpec {
        name,
        doc,
        args: None,
        returns: schema::<R>,
    }
}

fn cmd_with<A: JsonSchema, R: JsonSchema>(name: &'static str, doc: &'static str) -> CommandSpec {
    CommandSpec {
        name,
        doc,
        args: Some(schema::<A>),
        returns: schema::<R>,
    }
}

/// Every command, in the order the file lists them.
pub fn commands() -> Vec<CommandSpec> {
    vec![
        cmd::<AppInfo>(
            "app_info",
            "What the start screen shows: built-in server, demo accounts.",
        ),
        cmd_with::<SignInArgs, SessionInfo>("sign_in", "Signs in to a classroom server."),
        cmd_with::<GuestArgs, SessionInfo>("join_as_guest", "Joins a live room as a guest."),
        cmd::<SessionInfo>("record_offline", "Records without a server; uploads wait."),
        cmd::<()>(
            "sign_out",
            "Leaves the room (saving a recording) and signs out.",
        ),
        cmd::<Vec<LiveRoomView>>("live_rooms", "The live rooms this user may enter."),
        cmd_with::<EnterArgs, RoomView>("enter_breakout_room", "Enters a breakout room."),
        cmd::<RoomView>("refresh_room", "The room as the server sees it now."),
        cmd_with::<PermissionArgs, RoomView>(
            "set_participants_may_record",
            "Moderators: lets participants record, or not.",
        ),
        cmd_with::<StartArgs, RecordingStarted>(
            "start_recording",
            "Starts recording the stage; a first_frame event follows.",
        ),
        cmd::<RecordingSaved>("stop_recording", "Stops and saves the recording."),
        cmd::<Option<RecordingSaved>>(
            "leave_room",
            "Leaves the breakout room, stopping and saving a recording first.",
        ),
        cmd::<Vec<LocalRecording>>("recordings", "The recordings panel's list."),
        cmd_with::<RecordingArgs, Vec<LocalRecording>>("retry_upload", "Tries an upload again."),
        cmd_with::<RecordingArgs, Vec<LocalRecording>>(
            "upload_to_current_room",
            "Queues an offline recording for the current breakout room.",
        ),
        cmd_with::<RecordingArgs, ()>("open_folder", "Opens the folder holding a recording."),
        cmd::<()>("quit", "Stops and saves a recording, then closes the app."),
    ]
}

/// Every event.
pub fn events() -> Vec<EventSpec> {
    vec![
        EventSpec {
            name: "recording",
            doc: "While recording: first frame, status, warnings, stopped.",
            payload: schema::<RecordingEvent>,
        },
        EventSpec {
            name: "room",
            doc: "The room's role or permission changed.",
            payload: schema::<RoomView>,
        },
        EventSpec {
            name: "recordings",
            doc: "The recordings panel's list changed (upload progress).",
            payload: schema::<Vec<LocalRecording>>,
        },
        EventSpec {
            name: "close-requested",
            doc: "The window is closing while recording: ask the user.",
            payload: schema::<CloseRequested>,
        },
    ]
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSDoc type expression for a JSON Schema.
fn js_type(v: &Value) -> String {
    let Some(o) = v.as_object() else {
        return if v == &Value::Bool(false) {
            "never"
        } else {
            "any"
        }
        .into();
    };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or("any").to_owned();
    }
    if let Some(c) = o.get("const") {
        return c.to_string();
    }
    if let Some(e) = o.get("enum").and_then(Value::as_array) {
        return e.iter().map(Value::to_string).collect::<Vec<_>>().join("|");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = o.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = alts.iter().map(js_type).collect();
            return format!("({})", parts.join("|"));
        }
    }
    match o.get("type") {
        Some(Value::Array(types)) => {
            let parts: Vec<String> = types
                .iter()
                .map(|t| {
                    let mut one = o.clone();
                    one.insert("type".into(), t.clone());
                    js_type(&Value::Object(one))
                })
                .collect();
            format!("({})", parts.join("|"))
        }
        Some(Value::String(t)) => match t.as_str() {
            "string" => "string".into(),
            "integer" | "number" => "number".into(),
            "boolean" => "boolean".into(),
            "null" => "null".into(),
            "array" => format!("Array<{}>", o.get("items").map_or("any".into(), js_type)),
            "object" => object_type(o),
            _ => "any".into(),
        },
        _ => "any".into(),
    }
}

fn object_type(o: &serde_json::Map<String, Value>) -> String {
    let required: Vec<&str> = o
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match o.get("properties").and_then(Value::as_object) {
        Some(props) => {
            let fields: Vec<String> = props
                .iter()
                .map(|(k, v)| {
                    let opt = if required.contains(&k.as_str()) {
                        ""
                    } else {
                        "?"
                    };
                    format!("{k}{opt}: {}", js_type(v))
                })
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        None => match o.get("additionalProperties") {
            Some(v) if v.is_object() => format!("Record<string, {}>", js_type(v)),
            _ => "object".into(),
        },
    }
}

fn doc_lines(text: &str, indent: &str) -> String {
    text.lines()
        .map(|l| format!("{indent} * {l}").trim_end().to_owned() + "\n")
        .collect()
}

/// One `@typedef` per named type.
fn typedef(name: &str, v: &Value) -> String {
    let mut out = String::from("/**\n");
    if let Some(d) = v.get("description").and_then(Value::as_str) {
        out += &doc_lines(d, "");
    }
    let props = v.get("properties").and_then(Value::as_object);
    match props {
        Some(props) if v.get("type") == Some(&Value::String("object".into())) => {
            let required: Vec<&str> = v
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out += &format!(" * @typedef {{object}} {name}\n");
            for (k, p) in props {
                let ty = js_type(p);
                let key = if required.contains(&k.as_str()) {
                    k.clone()
                } else {
                    format!("[{k}]")
                };
                let desc = p
                    .get("description")
                    .and_then(Value::as_str)
                    .map(|d| format!(" - {}", d.replace('\n', " ")))
                    .unwrap_or_default();
                out += &format!(" * @property {{{ty}}} {key}{desc}\n");
            }
        }
        _ => out += &format!(" * @typedef {{{}}} {name}\n", js_type(v)),
    }
    out + " */\n"
}

/// The whole `ui/bindings.js`.
pub fn render() -> String {
    let mut g = SchemaSettings::draft2020_12().into_generator();
    let cmds = commands();
    let evs = events();
    let cmd_types: Vec<(Option<String>, String)> = cmds
        .iter()
        .map(|c| {
            (
                c.args.map(|a| js_type(a(&mut g).as_value())),
                js_type((c.returns)(&mut g).as_value()),
            )
        })
        .collect();
    let ev_types: Vec<String> = evs
        .iter()
        .map(|e| js_type((e.payload)(&mut g).as_value()))
        .collect();

    let mut out = String::from(
        "// GENERATED by `cargo run -p app-core --bin gen-bindings` from crates/app-core/src/types.rs.\n\
         // Do not edit: change the Rust types and regenerate (a test fails when this file is stale).\n\
         //\n\
         // The page's only door to Rust: one function per command, one listener per event.\n\
         // Commands reject with a UiError ({ kind, message }).\n\n",
    );
    out += "/** @param {string} cmd @param {object} [args] */\n\
            const invoke = (cmd, args) => window.__TAURI__.core.invoke(cmd, args);\n\
            /** @param {string} name @param {(e: { payload: any }) => void} f */\n\
            const listen = (name, f) => window.__TAURI__.event.listen(name, f);\n\n";
    for (name, def) in g.definitions() {
        out += &typedef(name, def);
        out += "\n";
    }
    for (c, (args, ret)) in cmds.iter().zip(&cmd_types) {
        out += &format!("/**\n * {}\n", c.doc);
        match args {
            Some(a) => {
                out += &format!(" * @param {{{a}}} args\n * @returns {{Promise<{ret}>}}\n */\n");
                out += &format!(
                    "export const {} = (args) => invoke(\"{}\", {{ args }});\n\n",
                    camel(c.name),
                    c.name
                );
            }
            None => {
                out += &format!(" * @returns {{Promise<{ret}>}}\n */\n");
                out += &format!(
                    "export const {} = () => invoke(\"{}\");\n\n",
                    camel(c.name),
                    c.name
                );
            }
        }
    }
    for (e, ty) in evs.iter().zip(&ev_types) {
        let f = camel(&format!("on_{}", e.name));
        out += &format!(
            "/**\n * {}\n * @param {{(payload: {ty}) => void}} handler\n * @returns {{Promise<() => void>}} stops listening\n */\n",
            e.doc
        );
        out += &format!(
            "export const {f} = (handler) => listen(\"{}\", (e) => handler(e.payload));\n\n",
            e.name
        );
    }
    out.trim_end().to_owned() + "\n"
}

/// Where the bindings live, from this crate's directory.
pub fn default_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/bindings.js")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn committed_bindings_match_the_rust_types() {
        let want = render();
        let have = std::fs::read_to_string(default_path()).unwrap_or_default();
        assert!(
            have == want,
            "ui/bindings.js is stale: run `cargo run -p app-core --bin gen-bindings`"
        );
    }

    #[test]
    fn every_command_is_permitted_to_the_window_and_nothing_else() {
        // The shell's capability must list exactly the app's commands (narrow permissions).
        let cap = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../src-tauri/capabilities/default.json"),
        )
        .unwrap();
        let cap: Value = serde_json::from_str(&cap).unwrap();
        let mut allowed: Vec<String> = cap["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|p| p.strip_prefix("allow-"))
            .map(|p| p.replace('-', "_"))
            .collect();
        allowed.sort();
        let mut names: Vec<String> = commands().iter().map(|c| c.name.to_owned()).collect();
        names.sort();
        assert_eq!(allowed, names);
    }

    #[test]
    fn schema_shapes_become_jsdoc_types() {
        let cases = [
            (r#"{"type":"string"}"#, "string"),
            (r#"{"type":["string","null"]}"#, "(string|null)"),
            (r##"{"$ref":"#/$defs/RoomView"}"##, "RoomView"),
            (
                r#"{"type":"array","items":{"type":"integer"}}"#,
                "Array<number>",
            ),
            (r#"{"enum":["a","b"]}"#, r#""a"|"b""#),
            (r#"{"const":"first_frame"}"#, r#""first_frame""#),
            (
                r#"{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"number"}},"required":["a"]}"#,
                "{ a: boolean, b?: number }",
            ),
            (
                r##"{"anyOf":[{"$ref":"#/$defs/X"},{"type":"null"}]}"##,
                "(X|null)",
            ),
            ("true", "any"),
        ];
        for (schema, want) in cases {
            let v: Value = serde_json::from_str(schema).unwrap();
            assert_eq!(js_type(&v), want, "{schema}");
        }
        assert_eq!(
            camel("set_participants_may_record"),
            "setParticipantsMayRecord"
        );
        assert_eq!(camel("on_close-requested"), "onCloseRequested");
    }
}
