//! `GET /api/openapi.json`: the OpenAPI 3 description of the API. A test
//! (`tests/api.rs`) walks every operation listed here against the router,
//! and every route of the router against this list, so the two agree.

use axum::Json;
use serde_json::{Value, json};

/// Every operation: (method, path as OpenAPI writes it).
pub const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/summary"),
    ("get", "/api/v1/classrooms"),
    ("get", "/api/v1/classrooms/{id}"),
    ("post", "/api/v1/classrooms/{id}/wifi"),
    ("put", "/api/v1/classrooms/{id}/override"),
    ("delete", "/api/v1/classrooms/{id}/override"),
    ("post", "/api/v1/overrides"),
    ("delete", "/api/v1/overrides"),
    ("get", "/api/v1/access-points"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/report"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/cluster"),
    ("get", "/api/v1/events"),
];

fn error_responses(codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        m.insert((*c).to_owned(), json!({"$ref": format!("#/components/responses/E{c}")}));
    }
    Value::Object(m)
}

fn op(summary: &str, ok: Value, errors: &[&str]) -> Value {
    let mut responses = error_responses(errors);
    responses["200"] = ok;
    json!({"summary": summary, "responses": responses})
}

fn ok_ref(schema: &str) -> Value {
    json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn body_ref(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The document.
pub fn document() -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"}}]);
    let auth = ["401", "403", "429"];
    let with =
        |extra: &[&'static str]| -> Vec<&'static str> { auth.iter().copied().chain(extra.iter().copied()).collect() };
    let mut wifi = op(
        "A teacher's on/off request",
        ok_ref("Status"),
        &with(&["400", "404", "409", "413", "415", "503"]),
    );
    wifi["requestBody"] = body_ref("WifiRequest");
    wifi["parameters"] = id.clone();
    let mut put_override = op(
        "Set an IT override on a classroom",
        ok_ref("Status"),
        &with(&["400", "404", "413", "415", "422", "503"]),
    );
    put_override["requestBody"] = body_ref("OverrideRequest");
    put_override["parameters"] = id.clone();
    let mut del_override = op(
        "Clear a classroom's override in force, or with from= cancel the one planned to start then",
        ok_ref("Status"),
        &with(&["400", "404", "503"]),
    );
    let mut del_params = id.clone();
    if let Some(list) = del_params.as_array_mut() {
        list.push(json!({"name": "from", "in": "query", "description": "start of the planned override to cancel (RFC 3339)", "schema": {"type": "string", "format": "date-time"}}));
    }
    del_override["parameters"] = del_params;
    let mut get_one = op("One classroom", ok_ref("Status"), &with(&["400", "404"]));
    get_one["parameters"] = id;
    let mut bulk = op(
        "Override a school or the whole city, atomically",
        ok_ref("BulkResult"),
        &with(&["400", "404", "413", "415", "422", "503"]),
    );
    bulk["requestBody"] = body_ref("BulkOverrideRequest");
    let mut clear = op(
        "Clear the overrides of a school, or all; with from= cancel the ones planned to start then",
        ok_ref("BulkResult"),
        &with(&["400", "404", "503"]),
    );
    clear["parameters"] = json!([
        {"name": "school", "in": "query", "schema": {"type": "string"}},
        {"name": "from", "in": "query", "description": "start of the planned overrides to cancel (RFC 3339)", "schema": {"type": "string", "format": "date-time"}}
    ]);
    let mut audit = op(
        "The audit log, newest first (JSON, or CSV with Accept: text/csv or format=csv)",
        ok_ref("AuditPage"),
        &with(&["400", "404"]),
    );
    audit["parameters"] = json!([
        {"name": "action", "in": "query", "description": "action prefix; repeatable", "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true},
        {"name": "school", "in": "query", "schema": {"type": "string"}},
        {"name": "ap", "in": "query", "schema": {"type": "string"}},
        {"name": "result", "in": "query", "description": "result prefix: accepted, refused, ok, error", "schema": {"type": "string"}},
        {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
        {"name": "sep", "in": "query", "schema": {"type": "string", "enum": ["comma", "semicolon"]}},
        {"name": "classroom", "in": "query", "schema": {"type": "string"}},
        {"name": "user", "in": "query", "schema": {"type": "string"}},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100000}},
        {"name": "cursor", "in": "query", "schema": {"type": "integer"}}
    ]);
    let mut report = op(
        "The usage report: observed on-time by cause, sessions, overrides, refusals (JSON, or CSV with Accept: text/csv or format=csv)",
        json!({"description": "OK", "content": {"application/json": {"schema": {"type": "object", "required": ["from", "to", "group", "period", "rows"]}}, "text/csv": {}}}),
        &with(&["400", "503"]),
    );
    report["parameters"] = json!([
        {"name": "from", "in": "query", "required": true, "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "required": true, "description": "inclusive; at most 400 days after from", "schema": {"type": "string", "format": "date"}},
        {"name": "group", "in": "query", "schema": {"type": "string", "enum": ["classroom", "school", "city"]}},
        {"name": "period", "in": "query", "schema": {"type": "string", "enum": ["day", "week", "month"]}},
        {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
        {"name": "sep", "in": "query", "schema": {"type": "string", "enum": ["comma", "semicolon"]}}
    ]);
    let time = json!({"type": "string", "format": "date-time"});
    let time_or_null = json!({"type": ["string", "null"], "format": "date-time"});
    let error_response = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "borne API", "version": "1", "description": "Classroom Wi-Fi access points: teacher requests, IT overrides, status, audit and live events. Every /api/v1 route needs `Authorization: Bearer TOKEN`."},
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "Process alive", "security": [], "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Configuration loaded and store open", "security": [], "responses": {"200": {"description": "ready"}, "503": error_response("not ready")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (any token, or none with metrics_public)", "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}, "401": error_response("no token")}}},
            "/api/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/api/v1/me": {"get": op("Who the token belongs to", ok_ref("Me"), &auth)},
            "/api/v1/summary": {"get": op("Counts over the visible classrooms and their access points", ok_ref("Summary"), &auth)},
            "/api/v1/classrooms": {"get": op("The classrooms the token may see", ok_ref("ClassroomList"), &auth)},
            "/api/v1/classrooms/{id}": {"get": get_one},
            "/api/v1/classrooms/{id}/wifi": {"post": wifi},
            "/api/v1/classrooms/{id}/override": {"put": put_override, "delete": del_override},
            "/api/v1/overrides": {"post": bulk, "delete": clear},
            "/api/v1/access-points": {"get": op("Every access point, unreachable first (admin, viewer)", ok_ref("AccessPointList"), &auth)},
            "/api/v1/audit": {"get": audit},
            "/api/v1/report": {"get": report},
            "/api/v1/users": {"get": op("The users the admin may see, with scope, expiry and last use (admin)", ok_ref("UserList"), &auth)},
            "/api/v1/cluster": {"get": op("The instances sharing the database, which one leads, their configuration hashes (admin, viewer)", ok_ref("Cluster"), &auth)},
            "/api/v1/events": {"get": {"summary": "Server-Sent Events: one `status` event (data: Status) per change", "responses": {"200": {"description": "event stream", "content": {"text/event-stream": {}}}, "401": error_response("no token")}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "E400": error_response("Bad request (body, query, id, minutes out of range)"),
                "E401": error_response("Missing or unknown token"),
                "E403": error_response("Not allowed for this token's role or scope"),
                "E404": error_response("Unknown or invisible classroom or school"),
                "E409": error_response("Refused by the policy: locked or overridden (with until)"),
                "E413": error_response("Body larger than 16 KiB"),
                "E415": error_response("Body is not JSON"),
                "E422": error_response("Well-formed but unacceptable (empty reason, until in the past)"),
                "E429": error_response("Too many failed authentications; see Retry-After"),
                "E503": error_response("The state database cannot be written; nothing was changed")
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "until": time_or_null}},
                "Wifi": {"type": "string", "enum": ["on", "off"]},
                "Mode": {"type": "string", "enum": ["locked", "available", "on"]},
                "WifiRequest": {"type": "object", "required": ["wifi"], "additionalProperties": false, "properties": {"wifi": {"$ref": "#/components/schemas/Wifi"}, "minutes": {"type": "integer", "minimum": 1}}},
                "OverrideRequest": {"type": "object", "required": ["wifi", "reason"], "additionalProperties": false, "properties": {"wifi": {"$ref": "#/components/schemas/Wifi"}, "from": time_or_null, "until": time_or_null, "reason": {"type": "string", "minLength": 1}}},
                "BulkOverrideRequest": {"type": "object", "required": ["scope", "wifi", "reason"], "additionalProperties": false, "properties": {
                    "scope": {"oneOf": [{"type": "object", "required": ["school"], "properties": {"school": {"type": "string"}}}, {"type": "object", "required": ["all"], "properties": {"all": {"const": true}}}]},
                    "wifi": {"$ref": "#/components/schemas/Wifi"}, "from": time_or_null, "until": time_or_null, "reason": {"type": "string", "minLength": 1}}},
                "BulkResult": {"type": "object", "properties": {"classrooms": {"type": "array", "items": {"type": "string"}}, "count": {"type": "integer"}}},
                "Summary": {"type": "object", "properties": {
                    "classrooms": {"type": "integer"}, "classrooms_on": {"type": "integer"}, "access_points": {"type": "integer"},
                    "observed_on": {"type": "integer"}, "observed_off": {"type": "integer"}, "observed_unknown": {"type": "integer"},
                    "unreachable": {"type": "integer"}, "in_sync": {"type": "integer"}}},
                "Cluster": {"type": "object", "properties": {
                    "instances": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"},
                        "role": {"type": "string", "enum": ["leader", "follower"]},
                        "config_sha256": {"type": "string"},
                        "last_heartbeat": {"type": "string", "format": "date-time"},
                        "up": {"type": "boolean"}
                    }}},
                    "self": {"type": "string"},
                    "shared": {"type": "boolean"},
                    "config_differs": {"type": "boolean"}
                }},
                "UserList": {"type": "object", "properties": {"users": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "role": {"type": "string", "enum": ["teacher", "viewer", "admin"]},
                    "scope": {"type": ["object", "null"], "properties": {"schools": {"type": "array", "items": {"type": "string"}}, "classrooms": {"type": "array", "items": {"type": "string"}}}},
                    "expires": {"type": ["string", "null"], "format": "date"}, "expired": {"type": "boolean"}, "last_used": time_or_null}}}}},
                "Me": {"type": "object", "properties": {"name": {"type": "string"}, "role": {"type": "string", "enum": ["teacher", "viewer", "admin"]}, "classrooms": {"type": ["array", "null"], "items": {"type": "string"}}}},
                "AccessPoint": {"type": "object", "properties": {
                    "id": {"type": "string"}, "driver": {"type": "string", "enum": ["ssh", "mqtt", "sim"]},
                    "observed": {"type": "string", "enum": ["on", "off", "unknown"]}, "reachable": {"type": "boolean"},
                    "last_error": {"type": ["string", "null"]}, "clients": {"type": ["integer", "null"]}, "since": time_or_null,
                    "assumed": {"type": "boolean"}, "last_contact": time_or_null, "consecutive_failures": {"type": "integer"},
                    "lease_held": {"type": "boolean"}, "lease_until": time_or_null}},
                "Status": {"type": "object", "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "school": {"type": "string"}, "school_name": {"type": "string"},
                    "wifi": {"$ref": "#/components/schemas/Wifi"}, "reason": {"type": "string", "enum": ["override", "locked", "teacher", "schedule"]},
                    "until": time_or_null, "mode": {"$ref": "#/components/schemas/Mode"}, "closed_day": {"type": "boolean"},
                    "next_change": {"type": ["object", "null"], "properties": {"at": time, "mode": {"$ref": "#/components/schemas/Mode"}}},
                    "override": {"type": ["object", "null"], "properties": {"wifi": {"$ref": "#/components/schemas/Wifi"}, "until": time_or_null, "reason": {"type": "string"}, "by": {"type": "string"}}},
                    "planned_overrides": {"type": "array", "items": {"type": "object", "properties": {"from": time, "until": time_or_null, "wifi": {"$ref": "#/components/schemas/Wifi"}, "reason": {"type": "string"}, "by": {"type": "string"}}}},
                    "session": {"type": ["object", "null"], "properties": {"wifi": {"$ref": "#/components/schemas/Wifi"}, "until": time, "by": {"type": "string"}}},
                    "access_points": {"type": "array", "items": {"$ref": "#/components/schemas/AccessPoint"}},
                    "timezone": {"type": "string"},
                    "session_minutes": {"type": "object", "properties": {"default": {"type": "integer"}, "max": {"type": "integer"}}},
                    "idle_off": time_or_null}},
                "ClassroomList": {"type": "object", "properties": {"classrooms": {"type": "array", "items": {"$ref": "#/components/schemas/Status"}}}},
                "AccessPointList": {"type": "object", "properties": {"access_points": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/AccessPoint"}, {"type": "object", "properties": {"classroom": {"type": "string"}, "school": {"type": "string"}, "desired": {"$ref": "#/components/schemas/Wifi"}}}]}}}},
                "AuditPage": {"type": "object", "properties": {"next_cursor": {"type": ["integer", "null"]}, "entries": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "at": time, "actor": {"type": "string"}, "role": {"type": ["string", "null"]}, "classroom": {"type": ["string", "null"]},
                    "access_point": {"type": ["string", "null"]}, "action": {"type": "string"}, "detail": {"type": "string"}, "result": {"type": "string"}, "source": {"type": ["string", "null"]}}}}}}
            }
        }
    })
}

/// Serves the document.
pub async fn serve() -> Json<Value> {
    Json(document())
}
